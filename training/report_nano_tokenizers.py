#!/usr/bin/env python
"""Held-out report for the bundled nano tokenizers: PSNR / SSIM against same-budget bilinear baselines.

    .venv/bin/python training/report_nano_tokenizers.py [--clips 32] [--frames 17] [--out outputs/nano_tokenizer_report.json]

Clips: physics-world scenes with seeds 900000+ (training draws its seeds from a different stream), all 8 scenes,
views 0-3, 64x64. Baselines keep one frame per latent frame (every 4th, held until the next) and shrink it
bilinearly so that the stored budget equals the tokenizer's:
- CV4x8x8 keeps 16 float channels per 4x8x8 block, i.e. 16/768 of the pixel values -> spatial factor 8*sqrt(3/16);
- DV4x8x8 keeps one 64,000-way token (~16 bits) per 4x8x8 block against 24-bit pixels -> spatial factor 8*sqrt(24/16).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from cosmos_hf import sim
from cosmos_hf.demo import NANO_TOKENIZERS, bilinear_baseline, reconstruct
from cosmos_hf.evaluation.video_metrics import psnr, ssim_per_frame
from cosmos_hf.tokenizers import load_tokenizer

BASELINES = {"bilinear (CV budget)": 8 * (3 / 16) ** 0.5, "bilinear (DV budget)": 8 * (24 / 16) ** 0.5}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--out", default="outputs/nano_tokenizer_report.json")
    args = parser.parse_args()

    models = {name: load_tokenizer(path).eval() for name, path in NANO_TOKENIZERS.items()}
    scores = {name: {"psnr": [], "ssim": []} for name in [*models, *BASELINES]}
    for i in range(args.clips):
        scene = sim.SCENES[i % len(sim.SCENES)]
        frames = sim.simulate(scene, seed=900_000 + i, num_frames=args.frames, height=64, width=64, view=i % 4).video
        outputs = {name: reconstruct(model, frames) for name, model in models.items()}
        outputs.update({name: bilinear_baseline(frames, 4, factor) for name, factor in BASELINES.items()})
        for name, recon in outputs.items():
            scores[name]["psnr"].append(psnr(frames, recon))
            scores[name]["ssim"].append(float(np.mean(ssim_per_frame(frames, recon))))
    report = {name: {"psnr_db": round(float(np.mean(v["psnr"])), 2), "ssim": round(float(np.mean(v["ssim"])), 4)}
              for name, v in scores.items()}
    report["setup"] = f"{args.clips} held-out physics clips (seeds 900000+), {args.frames}x64x64, TokenBench PSNR"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
