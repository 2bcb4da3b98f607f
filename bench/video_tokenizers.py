"""Tokenizer benchmark: our DV / CV against diffusers' AutoencoderKLCosmos and AutoencoderKLCogVideoX, same input, same run.

Prints one JSON object with
- `throughput`: encode / decode seconds (median, min, max, IQR over `--repeats` interleaved runs after a warm-up) of
  each model on one clip (default 9x128x128; `--quick`: 9x64x64; random weights: speed does not depend on them), the
  ratios of medians the project tracks, and the largest difference of our CV's latent and reconstruction from
  diffusers' on the same weights;
- `bf16_quality`: our CV in bfloat16 on the CPU (diffusers' fails: avg_pool3d has no bf16 CPU kernel): the PSNR
  change of its reconstructions against our fp32 ones on physics-world clips using the bundled nano CV tokenizer
  (trained weights make the PSNR meaningful);
- `streaming_memory`: peak resident memory of encode+decode, whole clip vs streaming, at 9, 33 and 121 frames
  (each measurement in a fresh subprocess; RSS above the post-load baseline);
- `bf16_on_avx2`: ours fp32 vs ours bf16 with oneDNN and ATen limited to AVX2 (a child process with
  ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2): what a CPU without native bf16 gets;
- `nano_training`: optimizer steps per second of the nano tokenizer configs (training/configs/tokenizer_nano_*);
- `machine`: CPU model and flags (bf16 runs natively only with AVX512-BF16 / AMX), torch threads, load average.

    .venv/bin/python bench/video_tokenizers.py [--quick] [--size 128] [--frames 9] [--repeats 5] [--threads 2]
        [--sections throughput,avx2,bf16,training,memory] [--skip-cogvideox]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch
from timing import finish_report, interleaved, machine_header, positive_repeats, speedup

REPO = Path(__file__).resolve().parents[1]


def same_weight_cv8x8x8():
    """A random CV8x8x8 as (ours fp32, diffusers' AutoencoderKLCosmos with the same weights, ours bf16): the
    candidates every tokenizer comparison here times against each other."""
    from diffusers import AutoencoderKLCosmos

    from cosmos_hf.tokenizers import from_config_name

    ours = from_config_name("CV8x8x8").eval()
    plain = AutoencoderKLCosmos(**{k: v for k, v in ours.config.items() if not k.startswith("_") and k != "legacy_mode"})
    plain.load_state_dict(ours.state_dict())
    ours_bf16 = from_config_name("CV8x8x8").eval()
    ours_bf16.load_state_dict(ours.state_dict())
    return ours, plain.eval(), ours_bf16.to(torch.bfloat16)


def throughput(args):
    """Encode and decode of every model, all interleaved in one loop (so load changes hit them alike)."""
    from diffusers import AutoencoderKLCogVideoX

    from cosmos_hf.tokenizers import from_config_name

    torch.manual_seed(0)
    video = torch.rand(1, 3, args.frames, args.size, args.size) * 2 - 1

    cv, plain, cv_bf16 = same_weight_cv8x8x8()
    dv = from_config_name("DV8x8x8").eval()

    def vae_pair(model, dtype=torch.float32):
        return (lambda x: model.encode(x.to(dtype)).latent_dist.mode()), (lambda z: model.decode(z.to(dtype)).sample)

    models = {
        "ours_cv8x8x8_fp32": vae_pair(cv),
        "diffusers_cosmos_cv8x8x8_fp32": vae_pair(plain),
        "ours_cv8x8x8_bf16": vae_pair(cv_bf16, torch.bfloat16),
        "ours_dv8x8x8_fp32": ((lambda x: dv.tokenize(x)), (lambda t: dv.detokenize(t))),
    }
    if not args.skip_cogvideox:
        # the CogVideoX-2b VAE configuration, the paper's baseline
        models["diffusers_cogvideox_fp32"] = vae_pair(AutoencoderKLCogVideoX().eval())
    candidates = {}
    with torch.no_grad():
        for name, (encode, decode) in models.items():
            latent = encode(video)
            candidates[f"{name}/encode"] = lambda encode=encode: encode(video)
            candidates[f"{name}/decode"] = lambda decode=decode, latent=latent: decode(latent)
        ours_latent = models["ours_cv8x8x8_fp32"][0](video)
        plain_latent = models["diffusers_cosmos_cv8x8x8_fp32"][0](video)
        parity = {"latent_max_abs_diff": float((ours_latent - plain_latent).abs().max()),
                  "reconstruction_max_abs_diff": float((models["ours_cv8x8x8_fp32"][1](ours_latent)
                                                        - models["diffusers_cosmos_cv8x8x8_fp32"][1](ours_latent))
                                                       .abs().max())}
        timings = interleaved(candidates, repeats=args.repeats)
    results = {"input": f"1x3x{args.frames}x{args.size}x{args.size}",
               "weights": "random (speed does not depend on them)",
               "repeats": args.repeats, "statistic": "median over repeats; every encode and decode interleaved",
               "models": {}}
    for name in models:
        encode, decode = timings[f"{name}/encode"], timings[f"{name}/decode"]
        results["models"][name] = {"encode": encode, "decode": decode,
                                   "frames_per_s": round(args.frames / (encode["median_s"] + decode["median_s"]), 3)}
    try:
        with torch.no_grad():
            plain.to(torch.bfloat16).encode(video.bfloat16())
        results["diffusers_cosmos_cv8x8x8_bf16"] = "ran"
    except RuntimeError as err:
        results["diffusers_cosmos_cv8x8x8_bf16"] = f"fails: {str(err).splitlines()[0][:120]}"

    def ratio(baseline, candidate):
        pair = {}
        for step in ("encode", "decode"):
            pair[step] = speedup(results["models"][baseline][step], results["models"][candidate][step])
        return pair

    results["speedups"] = {  # baseline median / candidate median: > 1 means the candidate is faster
        "ours_cv_vs_diffusers_cv": ratio("diffusers_cosmos_cv8x8x8_fp32", "ours_cv8x8x8_fp32"),
        "ours_bf16_vs_diffusers_cv_fp32": ratio("diffusers_cosmos_cv8x8x8_fp32", "ours_cv8x8x8_bf16"),
        "ours_bf16_vs_ours_fp32": ratio("ours_cv8x8x8_fp32", "ours_cv8x8x8_bf16"),
    }
    if not args.skip_cogvideox:
        results["speedups"]["ours_cv_vs_cogvideox"] = ratio("diffusers_cogvideox_fp32", "ours_cv8x8x8_fp32")
        results["speedups"]["ours_dv_vs_cogvideox"] = ratio("diffusers_cogvideox_fp32", "ours_dv8x8x8_fp32")
    results["ours_cv_vs_diffusers_cv_parity"] = parity
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


# Peak resident memory of the calling process in MiB. VmHWM belongs to the process's memory map, which exec
# replaced; ru_maxrss carries the parent's peak over fork + exec (Linux), so a child of this (large) benchmark process
# would measure nothing with it.
PEAK_RSS_FUNCTION = """
def peak_rss_mib():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

_MEMORY_CHILD = PEAK_RSS_FUNCTION + """
import sys, torch
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
base = peak_rss_mib()
with torch.no_grad():
    model.decode(model.encode(video).latent_dist.mode())
print(peak_rss_mib() - base)
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


_AVX2_CHILD = """
import json, sys, torch
sys.path.insert(0, sys.argv[4])
from timing import interleaved
from cosmos_hf.tokenizers import causal_video, from_config_name
torch.set_num_threads(int(sys.argv[3]))
frames, size = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
video = torch.rand(1, 3, frames, size, size) * 2 - 1
fp32 = from_config_name("CV8x8x8").eval()
bf16 = from_config_name("CV8x8x8").eval()
bf16.load_state_dict(fp32.state_dict())
bf16 = bf16.to(torch.bfloat16)
with torch.no_grad():
    latent = fp32.encode(video).latent_dist.mode()
    timings = interleaved({"fp32/encode": lambda: fp32.encode(video),
                           "bf16/encode": lambda: bf16.encode(video.bfloat16()),
                           "fp32/decode": lambda: fp32.decode(latent),
                           "bf16/decode": lambda: bf16.decode(latent.bfloat16())}, repeats=int(sys.argv[5]))
print(json.dumps({"native_bf16_conv": causal_video.NATIVE_BF16_CONV,
                  "cpu_capability": torch.backends.cpu.get_cpu_capability(), "timings": timings}))
"""


def bf16_on_avx2(args):
    """Ours fp32 vs ours bf16 with oneDNN and ATen limited to AVX2 (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY): what an
    AVX2-only CPU (no native bf16) gets, measured in a child process on this one."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", _AVX2_CHILD, str(args.frames), str(args.size), str(args.threads),
                          str(Path(__file__).resolve().parent), str(args.repeats)],
                         capture_output=True, text=True, cwd=REPO, env=env)
    if out.returncode != 0:
        return {"failed": out.stderr.strip().splitlines()[-1][:200]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    timings = result.pop("timings")
    result.update(input=f"1x3x{args.frames}x{args.size}x{args.size}", emulation="ONEDNN_MAX_CPU_ISA=AVX2 "
                  "ATEN_CPU_CAPABILITY=avx2", models={
                      "ours_cv8x8x8_fp32": {"encode": timings["fp32/encode"], "decode": timings["fp32/decode"]},
                      "ours_cv8x8x8_bf16": {"encode": timings["bf16/encode"], "decode": timings["bf16/decode"]}},
                  speedups={"ours_bf16_vs_ours_fp32": {step: speedup(timings[f"fp32/{step}"], timings[f"bf16/{step}"])
                                                       for step in ("encode", "decode")}})
    return result


def training_speed(repeats: int):
    """Optimizer steps per second of the nano tokenizer configs (batch 4 of 9x64x64 clips, L1 loss), CV and DV
    steps interleaved."""
    import yaml

    from cosmos_hf.tokenizers import from_config_name

    steps, parameters = {}, {}
    video = torch.rand(4, 3, 9, 64, 64) * 2 - 1
    for kind in ("cv", "dv"):
        config = yaml.safe_load((REPO / "training" / "configs" / f"tokenizer_nano_{kind}4x8x8.yaml").read_text())
        model = from_config_name(config["model"]["config_name"], **config["model"]["overrides"])
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step(model=model, optimizer=optimizer):
            recon = model(video).sample
            loss = (recon - video).abs().mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        name = f"nano_{kind}4x8x8"
        steps[name], parameters[name] = step, sum(p.numel() for p in model.parameters())
    timings = interleaved(steps, repeats=repeats)
    return {name: {"parameters": parameters[name], "step": timing,
                   "steps_per_s": round(1 / timing["median_s"], 3)} for name, timing in timings.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="9x64x64 clips for the timings (what `make bench` runs); memory stays at 128x128")
    parser.add_argument("--size", type=int, default=None, help="clip height = width (default 128, --quick 64)")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed runs after one warm-up (>= 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-size", type=int, default=128,
                        help="memory section size (below 128 the activations stay under the RSS left by building "
                             "the model, and the section measures nothing)")
    parser.add_argument("--skip-cogvideox", action="store_true", help="leave out CogVideoX (the slowest candidate)")
    parser.add_argument("--sections", default="throughput,avx2,bf16,training,memory",
                        help="comma-separated subset of throughput,avx2,bf16,training,memory")
    args = parser.parse_args()
    positive_repeats(parser, args.repeats)
    sections = set(args.sections.split(","))
    unknown = sections - {"throughput", "avx2", "bf16", "training", "memory"}
    if unknown:
        parser.error(f"--sections: unknown {sorted(unknown)}; choose from throughput, avx2, bf16, training, memory")
    args.size = args.size or (64 if args.quick else 128)
    if args.size % 8 or args.frames < 1 or (args.frames - 1) % 8:
        parser.error(f"--size must be a multiple of 8 and --frames 1 + 8k (CV8x8x8), got {args.size}, {args.frames}")
    torch.set_num_threads(args.threads)
    report = {"benchmark": "video_tokenizers", "command": " ".join(["bench/video_tokenizers.py", *sys.argv[1:]]),
              "machine": machine_header()}
    if "throughput" in sections:
        report["throughput"] = throughput(args)
    if "avx2" in sections:
        report["bf16_on_avx2"] = bf16_on_avx2(args)
    if "bf16" in sections:
        report["bf16_quality"] = bf16_quality()
    if "training" in sections:
        report["nano_training"] = training_speed(args.repeats)
    if "memory" in sections:
        report["streaming_memory"] = streaming_memory(args.memory_size)
    report["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(finish_report(report), indent=2))


if __name__ == "__main__":
    main()
