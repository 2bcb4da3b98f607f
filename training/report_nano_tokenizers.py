#!/usr/bin/env python
"""Held-out report for the bundled nano tokenizers: PSNR / SSIM against same-budget bilinear baselines.

    .venv/bin/python training/report_nano_tokenizers.py [--clips 32] [--frames 17] [--out outputs/nano_tokenizer_report.json]
    .venv/bin/python training/report_nano_tokenizers.py --cv outputs/tokenizer_nano_cv4x8x8/model --dv ...  # candidates
    .venv/bin/python training/report_nano_tokenizers.py --cv4x4x4 outputs/tokenizer_nano_cv4x4x4/model

Clips: physics-world scenes with seeds 900000+ (training draws its seeds from a different stream), all 8 scenes,
views 0-3, 64x64. Baselines keep one frame per latent frame (every 4th, held until the next) and shrink it
bilinearly so that the stored budget equals the tokenizer's:
- CV4x8x8 keeps 16 float channels per 4x8x8 block, i.e. 16/768 of the pixel values -> spatial factor 8*sqrt(3/16);
- CV4x4x4 keeps 16 float channels per 4x4x4 block, i.e. 16/192 of the pixel values -> spatial factor 4*sqrt(3/16);
- DV4x8x8 keeps one token per 4x8x8 block, log2(codebook size) bits (16 for the reference's 64,000 codes, ~10 for
  the nano's 1,000) against 24-bit pixels -> spatial factor 8*sqrt(24/bits).
Colour: `chroma_error` is the mean |(pixel - its RGB mean) of the reconstruction - the same of the input| on [-1, 1]
video; a grey reconstruction scores about the input's own chroma (~0.06 on these clips), so PSNR cannot hide it.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from cosmos_hf import sim
from cosmos_hf.data import frames_to_tensor
from cosmos_hf.demo import NANO_TOKENIZERS, bilinear_baseline, reconstruct
from cosmos_hf.evaluation.video_metrics import psnr, ssim_per_frame
from cosmos_hf.tokenizers import load_tokenizer
from cosmos_hf.tokenizers.losses import chroma_l1_loss


def chroma_error(frames: np.ndarray, recon: np.ndarray) -> float:
    return chroma_l1_loss(frames_to_tensor(recon), frames_to_tensor(frames)).item()


def dv_bits(model) -> float:
    return float(np.log2(np.prod(model.config.levels)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--out", default="outputs/nano_tokenizer_report.json")
    parser.add_argument("--cv", default=str(NANO_TOKENIZERS["CV4x8x8"]), help="CV4x8x8 tokenizer folder")
    parser.add_argument("--dv", default=str(NANO_TOKENIZERS["DV4x8x8"]), help="DV4x8x8 tokenizer folder")
    parser.add_argument("--cv4x4x4", default=str(NANO_TOKENIZERS["CV4x4x4"]), help="CV4x4x4 tokenizer folder")
    args = parser.parse_args()
    torch.set_num_threads(1)

    models = {"CV4x8x8": load_tokenizer(args.cv).eval(), "DV4x8x8": load_tokenizer(args.dv).eval(),
              "CV4x4x4": load_tokenizer(args.cv4x4x4).eval()}
    bits = dv_bits(models["DV4x8x8"])
    baselines = {"bilinear (CV budget)": 8 * (3 / 16) ** 0.5, f"bilinear (DV budget, {bits:.1f} bits)": 8 * (24 / bits) ** 0.5,
                 "bilinear (CV4x4x4 budget)": 4 * (3 / 16) ** 0.5}
    scores = {name: {"psnr": [], "ssim": [], "chroma_error": []} for name in [*models, *baselines]}
    grey_errors = []
    for i in range(args.clips):
        scene = sim.SCENES[i % len(sim.SCENES)]
        frames = sim.simulate(scene, seed=900_000 + i, num_frames=args.frames, height=64, width=64, view=i % 4).video
        grey_errors.append(chroma_error(frames, np.repeat(frames.mean(-1, keepdims=True), 3, -1).round().astype(np.uint8)))
        outputs = {name: reconstruct(model, frames) for name, model in models.items()}
        outputs.update({name: bilinear_baseline(frames, 4, factor) for name, factor in baselines.items()})
        for name, recon in outputs.items():
            scores[name]["psnr"].append(psnr(frames, recon))
            scores[name]["ssim"].append(float(np.mean(ssim_per_frame(frames, recon))))
            scores[name]["chroma_error"].append(chroma_error(frames, recon))
    report = {name: {"psnr_db": round(float(np.mean(v["psnr"])), 2), "ssim": round(float(np.mean(v["ssim"])), 4),
                     "chroma_error": round(float(np.mean(v["chroma_error"])), 4)}
              for name, v in scores.items()}
    report["grey (each pixel's RGB mean)"] = {"chroma_error": round(float(np.mean(grey_errors)), 4)}
    report["setup"] = f"{args.clips} held-out physics clips (seeds 900000+), {args.frames}x64x64, TokenBench PSNR"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
