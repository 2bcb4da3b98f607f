"""`make demo`: the platform's main job, end to end on a laptop CPU.

Today it simulates held-out clips of the built-in physics world, tokenizes and reconstructs them with the bundled
nano CV4x8x8 and DV4x8x8 tokenizers (pipelines/), and writes `tokenizers.mp4` (input | CV | DV, one clip per row)
plus `metrics.json` (TokenBench PSNR / SSIM of each tokenizer and of a same-size bilinear baseline).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
NANO_TOKENIZERS = {
    "CV4x8x8": REPO_ROOT / "pipelines" / "cosmos-nano-tokenizer-cv4x8x8",
    "DV4x8x8": REPO_ROOT / "pipelines" / "cosmos-nano-tokenizer-dv4x8x8",
}
DEMO_CLIPS = [("dominoes", 0), ("free_fall", 2), ("seesaw", 1), ("unstable_stack", 3)]


def bilinear_baseline(frames: np.ndarray, temporal: int, spatial: float) -> np.ndarray:
    """A non-learned codec with the same number of stored values: keep frame 0 and every `temporal`-th frame,
    shrink each by `spatial` with bilinear filtering; decode by bilinear upsampling and holding each kept frame."""
    import torch.nn.functional as F

    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    height, width = video.shape[-2:]
    kept = video[::temporal]
    small = F.interpolate(kept, size=(max(1, round(height / spatial)), max(1, round(width / spatial))),
                          mode="bilinear", antialias=True, align_corners=False)
    restored = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    # causal hold: frame t shows the last kept frame at or before t
    index = torch.arange(len(video)) // temporal
    out = restored[index].round().clamp(0, 255).byte()
    return out.permute(0, 2, 3, 1).numpy()


def reconstruct(model, frames: np.ndarray) -> np.ndarray:
    from .data import frames_to_tensor, tensor_to_frames

    video = frames_to_tensor(frames)
    with torch.no_grad():
        if hasattr(model, "tokenize"):
            recon = model.detokenize(model.tokenize(video))
        else:
            recon = model.decode(model.encode(video).latent_dist.mode()).sample
    return tensor_to_frames(recon)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="outputs/demo")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)

    from . import sim
    from .data import write_video
    from .evaluation.video_metrics import psnr, ssim_per_frame
    from .tokenizers import load_tokenizer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    missing = [str(path) for path in NANO_TOKENIZERS.values() if not (path / "config.json").is_file()]
    if missing:
        raise SystemExit(f"bundled nano tokenizers not found: {missing} (train them with training/train_tokenizer.py)")
    tokenizers = {name: load_tokenizer(path).eval() for name, path in NANO_TOKENIZERS.items()}

    start = time.time()
    rows, metrics = [], {name: {"psnr": [], "ssim": []} for name in [*tokenizers, "bilinear_baseline"]}
    for scene, seed in DEMO_CLIPS:
        # seeds far from the training stream's: these clips were never seen in training
        record = sim.simulate(scene, seed=900_000 + seed, num_frames=args.frames, height=args.size, width=args.size)
        frames = record.video
        outputs = {name: reconstruct(model, frames) for name, model in tokenizers.items()}
        # same stored values as CV4x8x8's 16-channel latent: 16 / (4 * 8 * 8) of the pixels' 3 channels
        outputs["bilinear_baseline"] = bilinear_baseline(frames, temporal=4, spatial=8 * (3 / 16) ** 0.5)
        for name, recon in outputs.items():
            metrics[name]["psnr"].append(psnr(frames, recon))
            metrics[name]["ssim"].append(float(np.mean(ssim_per_frame(frames, recon))))
        rows.append(np.concatenate([frames, outputs["CV4x8x8"], outputs["DV4x8x8"]], axis=2))
        print(f"{scene:>15}: " + ", ".join(f"{name} {metrics[name]['psnr'][-1]:.2f} dB" for name in outputs))

    write_video(out / "tokenizers.mp4", np.concatenate(rows, axis=1), fps=12)
    summary = {name: {"psnr_db": round(float(np.mean(v["psnr"])), 3), "ssim": round(float(np.mean(v["ssim"])), 4)}
               for name, v in metrics.items()}
    summary["clips"] = [f"{scene}/seed{900_000 + seed}" for scene, seed in DEMO_CLIPS]
    summary["seconds"] = round(time.time() - start, 1)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print(f"wrote {out / 'tokenizers.mp4'} (input | CV4x8x8 | DV4x8x8) and {out / 'metrics.json'}")


if __name__ == "__main__":
    main()
