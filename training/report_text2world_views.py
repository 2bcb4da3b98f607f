#!/usr/bin/env python
"""Held-out denoising error of Text2World pipelines per camera view, as JSON.

    .venv/bin/python training/report_text2world_views.py pipelines/cosmos-nano-text2world [OTHER_PIPELINE ...] \
        [--clips 16] [--views 0 1 2 3] [--out bench/results/report_text2world_views.json]

A caption fixes no pixels, so a Text2World sample has no ground truth to score. What can be scored is the denoiser
the sampler runs: for held-out physics-world clips (simulator seeds 0..clips-1, the 8 scenes in turn; the nano
configs train on seeds from 1000 on) rendered from each camera view, the clip's latents are noised at fixed levels
(sigma 0.2, 1 and 5; the same noise for every pipeline) and the model, given the clip's caption, predicts the clean
latents. The score is the mean squared error of that prediction in the normalised latent space (the diffusion
target), per view and sigma, lower is better. A model that never saw a view scores worse on it than one trained on it;
the high noise levels are where the sampler decides the layout of the scene.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

SIGMAS = (0.2, 1.0, 5.0)


def held_out_clips(num_clips: int, views, num_frames: int, size: int, fps: float) -> list[dict]:
    """Simulator clips for seeds 0..num_clips-1 (scene = seed mod 8), each rendered from every view in `views`."""
    from cosmos_hf import sim

    clips = []
    for index in range(num_clips):
        scene = sim.SCENES[index % len(sim.SCENES)]
        for view in views:
            record = sim.simulate(scene, seed=index, num_frames=num_frames, height=size, width=size, fps=fps,
                                  view=view)
            clips.append({"seed": index, "view": int(view), "video": np.asarray(record.video),
                          "caption": record.caption})
    return clips


@torch.no_grad()
def denoising_errors(folder: str, clips: list[dict], fps: int, sigmas=SIGMAS) -> dict:
    """{"view_<v>": {"sigma_<s>": mean squared x0 error}} of the Text2World pipeline in `folder` on `clips`.

    A clip's noise comes from a generator seeded with its (seed, view), so every pipeline sees the same noisy latents
    (given the same tokenizer), whichever other clips are scored."""
    from cosmos_hf.data import frames_to_tensor
    from cosmos_hf.diffusion.edm import denoise
    from cosmos_hf.pipelines import load_pipeline

    pipe = load_pipeline(folder, trust_remote_code=True)
    pipe.transformer.eval()
    sigma_data = pipe.scheduler.config.sigma_data
    errors: dict[int, dict[float, list[float]]] = {}
    for clip in clips:
        video = frames_to_tensor(clip["video"]).to(pipe.vae.dtype)
        latents = pipe.normalize_latents(pipe.vae.encode(video).latent_dist.mode().float())
        text = pipe._get_t5_prompt_embeds([clip["caption"]], pipe.config.max_sequence_length, dtype=torch.float32)
        noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(4 * clip["seed"] + clip["view"]))
        per_sigma = errors.setdefault(clip["view"], {sigma: [] for sigma in sigmas})
        for sigma in sigmas:
            x0 = denoise(pipe.transformer, latents + sigma * noise, sigma, text, sigma_data=sigma_data, fps=fps)
            per_sigma[sigma].append(float((x0 - latents).square().mean()))
    return {f"view_{view}": {f"sigma_{sigma:g}": round(float(np.mean(values)), 6) for sigma, values in per_sigma.items()}
            for view, per_sigma in sorted(errors.items())}


def main(argv=None) -> int:
    from cosmos_hf import sim

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pipelines", nargs="+", help="Text2World pipeline folders to compare")
    parser.add_argument("--clips", type=int, default=16, help="held-out clips per view (simulator seeds 0..N-1)")
    parser.add_argument("--views", type=int, nargs="+", default=[0, 1, 2, 3], help="camera views (0..3)")
    parser.add_argument("--num_frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--fps", type=int, default=12)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.clips < 1:
        parser.error(f"--clips must be >= 1, got {args.clips}")
    try:
        sim.check_held_out_clip_count(args.clips, sim.HELD_OUT_SEEDS["physics"])
    except ValueError as error:
        parser.error(str(error))
    if any(not 0 <= view <= 3 for view in args.views):
        parser.error(f"--views must be camera views in 0..3, got {args.views}")
    missing = [folder for folder in args.pipelines if not Path(folder, "model_index.json").is_file()]
    if missing:
        parser.error(f"not a pipeline folder (no model_index.json): {missing}")
    torch.manual_seed(0)
    clips = held_out_clips(args.clips, args.views, args.num_frames, args.size, args.fps)
    report = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + (sys.argv[1:] if argv is None else argv)),
        "clips_per_view": args.clips, "sigmas": list(SIGMAS),
        "metric": "mean squared error of the denoised latents (normalised latent space), lower is better",
        "pipelines": {folder: denoising_errors(folder, clips, args.fps) for folder in args.pipelines},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        from cosmos_hf.utils import atomic_path

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.out) as tmp:
            Path(tmp).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
