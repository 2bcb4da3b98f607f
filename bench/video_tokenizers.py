"""Tokenizer benchmark: our DV / CV against diffusers' AutoencoderKLCosmos and AutoencoderKLCogVideoX, same input, same run.

Prints one JSON object with
- `throughput`: encode / decode seconds and frames per second (encode+decode) for each model on one clip
  (default 9x128x128, random weights: speed does not depend on them), and the ratios the project tracks;
- `bf16`: our CV in bfloat16 on the CPU (diffusers' fails: avg_pool3d has no bf16 CPU kernel), its speed against
  diffusers' fp32, and the PSNR change of its reconstructions against our fp32 ones on physics-world clips using the
  bundled nano CV tokenizer (trained weights make the PSNR meaningful);
- `streaming_memory`: peak resident memory of encode+decode, whole clip vs streaming, at 9, 33 and 121 frames
  (each measurement in a fresh subprocess; RSS above the post-load baseline);
- `nano_training`: optimizer steps per second of the nano tokenizer configs (training/configs/tokenizer_nano_*);
- `cpu`: whether this CPU has AVX512-BF16 / AMX (without them bf16 matmuls are emulated and slower than fp32).

    .venv/bin/python bench/video_tokenizers.py [--size 128] [--frames 9] [--repeats 2] [--threads 2] [--sections ...]
"""

import sys
from pathlib import Path


import argparse
import json
import platform
import resource
import subprocess

import torch
from timing import best_of

REPO = Path(__file__).resolve().parents[1]


def cpu_flags():
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        flags = set()
    return {"avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags, "avx2": "avx2" in flags,
            "mkldnn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()), "processor": platform.processor()}


def timed(fn, repeats):
    return best_of(fn, repeats, warmup=True)


def enc_dec_times(encode, decode, video, repeats):
    with torch.no_grad():
        latent = encode(video)
        return timed(lambda: encode(video), repeats), timed(lambda: decode(latent), repeats)


def throughput(args):
    from diffusers import AutoencoderKLCogVideoX, AutoencoderKLCosmos

    from cosmos_hf.tokenizers import from_config_name

    torch.manual_seed(0)
    video = torch.rand(1, 3, args.frames, args.size, args.size) * 2 - 1
    results = {}

    cv = from_config_name("CV8x8x8").eval()
    plain = AutoencoderKLCosmos(**{k: v for k, v in cv.config.items() if not k.startswith("_") and k != "legacy_mode"})
    plain.load_state_dict(cv.state_dict())
    plain.eval()
    dv = from_config_name("DV8x8x8").eval()
    cog = AutoencoderKLCogVideoX().eval()  # CogVideoX-2b VAE configuration, the paper's baseline

    def vae_pair(model):
        return (lambda x: model.encode(x).latent_dist.mode()), (lambda z: model.decode(z).sample)

    candidates = {
        "ours_cv8x8x8_fp32": vae_pair(cv),
        "ours_dv8x8x8_fp32": ((lambda x: dv.tokenize(x)), (lambda t: dv.detokenize(t))),
        "diffusers_cosmos_cv8x8x8_fp32": vae_pair(plain),
        "diffusers_cogvideox_fp32": vae_pair(cog),
    }
    for name, (encode, decode) in candidates.items():
        enc, dec = enc_dec_times(encode, decode, video, args.repeats)
        results[name] = {"encode_s": round(enc, 4), "decode_s": round(dec, 4),
                         "frames_per_s": round(args.frames / (enc + dec), 3)}
    cv_bf16 = from_config_name("CV8x8x8").eval()
    cv_bf16.load_state_dict(cv.state_dict())
    cv_bf16 = cv_bf16.to(torch.bfloat16)
    enc, dec = enc_dec_times(*vae_pair(cv_bf16), video.bfloat16(), args.repeats)
    results["ours_cv8x8x8_bf16"] = {"encode_s": round(enc, 4), "decode_s": round(dec, 4),
                                    "frames_per_s": round(args.frames / (enc + dec), 3)}
    try:
        with torch.no_grad():
            plain.to(torch.bfloat16).encode(video.bfloat16())
        results["diffusers_cosmos_cv8x8x8_bf16"] = "ran"
    except RuntimeError as err:
        results["diffusers_cosmos_cv8x8x8_bf16"] = f"fails: {str(err).splitlines()[0][:120]}"

    def ratio(a, b, key):
        return round(results[b][key] / results[a][key], 3)

    results["ratios"] = {
        "ours_cv_vs_cogvideox_encode": ratio("ours_cv8x8x8_fp32", "diffusers_cogvideox_fp32", "encode_s"),
        "ours_cv_vs_cogvideox_decode": ratio("ours_cv8x8x8_fp32", "diffusers_cogvideox_fp32", "decode_s"),
        "ours_dv_vs_cogvideox_encode": ratio("ours_dv8x8x8_fp32", "diffusers_cogvideox_fp32", "encode_s"),
        "ours_dv_vs_cogvideox_decode": ratio("ours_dv8x8x8_fp32", "diffusers_cogvideox_fp32", "decode_s"),
        "ours_cv_vs_diffusers_cv_encode": ratio("ours_cv8x8x8_fp32", "diffusers_cosmos_cv8x8x8_fp32", "encode_s"),
        "ours_cv_vs_diffusers_cv_decode": ratio("ours_cv8x8x8_fp32", "diffusers_cosmos_cv8x8x8_fp32", "decode_s"),
        "ours_bf16_vs_diffusers_fp32_encode": ratio("ours_cv8x8x8_bf16", "diffusers_cosmos_cv8x8x8_fp32", "encode_s"),
        "ours_bf16_vs_diffusers_fp32_decode": ratio("ours_cv8x8x8_bf16", "diffusers_cosmos_cv8x8x8_fp32", "decode_s"),
    }
    results["input"] = f"1x3x{args.frames}x{args.size}x{args.size}, random weights, best of {args.repeats}"
    return results


def bf16_quality():
    """PSNR of the nano CV tokenizer's reconstructions, fp32 vs bf16, on held-out physics clips."""
    from cosmos_hf import sim
    from cosmos_hf.demo import NANO_TOKENIZERS, reconstruct
    from cosmos_hf.evaluation.video_metrics import psnr
    from cosmos_hf.tokenizers import load_tokenizer

    folder = NANO_TOKENIZERS["CV4x8x8"]
    if not (folder / "config.json").is_file():
        return {"skipped": f"{folder} not found"}
    fp32 = load_tokenizer(folder).eval()
    bf16 = load_tokenizer(folder, torch_dtype=torch.bfloat16).eval()
    rows = []
    for i, scene in enumerate(sim.SCENES):
        frames = sim.simulate(scene, seed=800_000 + i, num_frames=17, height=64, width=64).video
        rows.append((psnr(frames, reconstruct(fp32, frames)), psnr(frames, reconstruct(bf16, frames))))
    mean_fp32 = sum(r[0] for r in rows) / len(rows)
    mean_bf16 = sum(r[1] for r in rows) / len(rows)
    return {"model": str(folder.relative_to(REPO)), "clips": len(rows), "psnr_fp32_db": round(mean_fp32, 3),
            "psnr_bf16_db": round(mean_bf16, 3), "psnr_change_db": round(mean_bf16 - mean_fp32, 3)}


_MEMORY_CHILD = """
import resource, sys, torch
from cosmos_hf.tokenizers import from_config_name
torch.set_num_threads(1)
frames, size, stream = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "stream"
# Build on the meta device and fill with zeros: random initialisation's transient allocations would otherwise set
# the RSS high-water mark before the measurement starts (speed and memory do not depend on the values).
with torch.device("meta"):
    model = from_config_name("CV8x8x8").eval()
model = model.to_empty(device="cpu")
with torch.no_grad():
    for tensor in model.parameters():
        tensor.zero_()
if stream:
    model.enable_streaming(1)
video = torch.zeros(1, 3, frames, size, size)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.no_grad():
    model.decode(model.encode(video).latent_dist.mode())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) / 1024)
"""


def streaming_memory(size):
    results = {}
    for frames in (9, 33, 121):
        for mode in ("whole", "stream"):
            out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(frames), str(size), mode],
                                 capture_output=True, text=True, cwd=REPO)
            if out.returncode != 0:
                results[f"{mode}_{frames}_frames_mib"] = f"failed: {out.stderr.strip().splitlines()[-1][:120]}"
                continue
            results[f"{mode}_{frames}_frames_mib"] = round(float(out.stdout.strip().splitlines()[-1]), 1)
    results["note"] = (f"CV8x8x8 encode+decode at {size}x{size}, streaming in chunks of 1 latent frame (8 frames); "
                       "peak RSS above the RSS after building the model and the input (includes the output video)")
    return results


def training_speed(steps: int = 3):
    """Optimizer steps per second of the nano tokenizer configs (batch 4 of 9x64x64 clips, L1 loss)."""
    import yaml

    from cosmos_hf.tokenizers import from_config_name

    results = {}
    for kind in ("cv", "dv"):
        config = yaml.safe_load((REPO / "training" / "configs" / f"tokenizer_nano_{kind}4x8x8.yaml").read_text())
        model = from_config_name(config["model"]["config_name"], **config["model"]["overrides"])
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        video = torch.rand(4, 3, 9, 64, 64) * 2 - 1

        def step():
            recon = model(video).sample
            loss = (recon - video).abs().mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        seconds = timed(step, steps)
        results[f"nano_{kind}4x8x8"] = {"parameters": sum(p.numel() for p in model.parameters()),
                                        "seconds_per_step": round(seconds, 3), "steps_per_s": round(1 / seconds, 3)}
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-size", type=int, default=128)
    parser.add_argument("--sections", default="throughput,bf16,training,memory",
                        help="comma-separated subset of throughput,bf16,training,memory")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    torch.set_num_threads(args.threads)
    report = {"benchmark": "tokenizers", "torch": torch.__version__, "threads": args.threads, "cpu": cpu_flags()}
    if "throughput" in sections:
        report["throughput"] = throughput(args)
    if "bf16" in sections:
        report["bf16_quality"] = bf16_quality()
    if "training" in sections:
        report["nano_training"] = training_speed()
    if "memory" in sections:
        report["streaming_memory"] = streaming_memory(args.memory_size)
    report["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
