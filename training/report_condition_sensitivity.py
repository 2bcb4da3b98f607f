#!/usr/bin/env python
"""Does a post-trained world model use its condition? Held-out denoising error with the true, an uninformative and
another clip's condition, as JSON.

    .venv/bin/python training/report_condition_sensitivity.py --camera pipelines/cosmos-nano-camera-control \
        [--action PIPE] [--multiview PIPE] [--clips 16] [--captions full|scene] [--out report.json]

Sampled videos (`training/report_post_trained.py`) mix two questions: is the model good, and does it follow its
condition. This report asks the second one directly, on the denoiser the sampler runs. For held-out clips of the
model's task (simulator seeds 0..clips-1; the nano configs train on 10000+), the clip's latents are noised at fixed
levels (the same noise for every variant), the first latent frame of every view is given (Video2World, augmentation
sigma 0.001 as the pipelines), and the model predicts the clean latents with:
* `true`: the clip's own camera path / actions / rig trajectory;
* `uninformative`: a still camera at the first pose / hold-still actions / a rig standing still (zero trajectory);
* `shuffled`: the next clip's condition (clip i takes clip i+1's, cyclically): plausible, but wrong for this clip.
Scores are the mean squared error of the prediction on the predicted (non-conditioning) latent frames, in the
normalised latent space (the diffusion target), over all latents and over the "moving" latents (channel-mean
difference from the conditioning frame above 0.1, the training objective's foreground rule). A model that ignores
its condition scores the same in all three; one that uses it scores lowest with `true`. `gap_*` is the relative
increase of the error over `true` (0.05 = 5% worse without the true condition).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
from cosmos_hf.sim import HELD_OUT_SEEDS, check_held_out_clip_count

SIGMAS = (0.2, 1.0, 5.0)
AUGMENT_SIGMA = 0.001  # the Video2World pipelines' default conditioning-frame augmentation
MOVING_THRESHOLD = 0.1  # EDMConfig.foreground_threshold
VARIANTS = ("true", "uninformative", "shuffled")


def held_out_dataset(condition: str, pipe, clips: int, workers, captions: str, push_views):
    """The task's clips for simulator seeds 0..clips-1, at the pipeline's resolution, frame rate and window (push
    clips from `push_views`, cycled)."""
    from cosmos_hf.data.post_training_datasets import CameraClips, MultiViewClips, PushActionClips

    size, fps = pipe.config.default_height, pipe.config.default_fps
    if condition == "camera":
        return CameraClips(clips, num_frames=pipe.config.default_num_frames, height=size, width=size, fps=fps,
                           workers=workers, captions=captions)
    if condition == "action":  # the action pipeline prompts with one fixed caption (prompt=None)
        return PushActionClips(clips, num_frames=pipe.transformer.config.num_action_frames + 1, height=size,
                               width=size, fps=fps, workers=workers, captions=False, views=push_views)
    return MultiViewClips(clips, num_views=pipe.num_views, num_frames=pipe.config.default_num_frames, height=size,
                          width=size, fps=fps, workers=workers, captions=captions)


def condition_variants(condition: str, batch: dict) -> dict[str, dict]:
    """{variant: batch} with the condition field replaced (the clips, captions and frames stay the same)."""
    from cosmos_hf.pipelines import CosmosActionConditionedPipeline

    field = {"camera": "cam_to_world", "action": "actions", "multiview": "trajectory"}[condition]
    value = batch[field]
    if condition == "camera":  # the first pose held for every frame
        uninformative = value[:, :1].expand_as(value).clone()
    elif condition == "action":
        uninformative = CosmosActionConditionedPipeline.hold_actions(value[:, :1], value.shape[1])[:, 0]
    else:
        uninformative = torch.zeros_like(value)
    shuffled = value.roll(-1, dims=0)
    return {name: {**batch, field: replaced}
            for name, replaced in (("true", value), ("uninformative", uninformative), ("shuffled", shuffled))}


@torch.no_grad()
def sensitivity(condition: str, folder, clips: int, workers, captions: str = "full", sigmas=SIGMAS,
                push_views=None) -> dict:
    from cosmos_hf.data.post_training_datasets import PUSH_VIEWS, collate_post_training
    from cosmos_hf.diffusion.edm import denoise, video_condition_from_frames
    from cosmos_hf.diffusion.post_training import extra_transformer_inputs, multiview_condition, post_training_inputs
    from cosmos_hf.pipelines import (
        CosmosActionConditionedPipeline,
        CosmosCameraControlPipeline,
        CosmosMultiViewPipeline,
    )

    if clips < 2:
        raise ValueError(f"--clips must be >= 2 (the shuffled variant gives each clip another one's condition), "
                         f"got {clips}")
    push_views = sorted({int(view) for view in (range(PUSH_VIEWS) if push_views is None else push_views)})
    cls = {"camera": CosmosCameraControlPipeline, "action": CosmosActionConditionedPipeline,
           "multiview": CosmosMultiViewPipeline}[condition]
    pipe = cls.from_pretrained(folder, disable_safety_checker=True)
    pipe.transformer.eval()
    data = held_out_dataset(condition, pipe, clips, workers, captions, push_views)
    batch = collate_post_training([data[i] for i in range(len(data))])
    variants = condition_variants(condition, batch)
    views = pipe.num_views if condition == "multiview" else 1
    torch.manual_seed(0)  # the posterior sample of the latents, the same for every variant
    state = torch.get_rng_state()
    inputs = {}
    for name, variant in variants.items():
        torch.set_rng_state(state)
        inputs[name] = post_training_inputs(pipe, variant, condition, pipe.config.max_sequence_length, "cpu")
    latents, text = inputs["true"][0], inputs["true"][1]
    for name in VARIANTS[1:]:  # same clips and captions: only the condition may differ
        torch.testing.assert_close(inputs[name][0], latents)
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(1))
    augment_noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(2))
    if condition == "multiview":
        video_condition = multiview_condition(latents, views, 1, AUGMENT_SIGMA, noise=augment_noise)
    else:
        video_condition = dataclasses.replace(video_condition_from_frames(latents, 1, AUGMENT_SIGMA),
                                              augment_noise=augment_noise)
    predicted = 1.0 - video_condition.indicator  # [B, 1, T, 1, 1]
    moving = ((latents - video_condition.last_frame_reference()).abs().mean(1, keepdim=True) > MOVING_THRESHOLD)
    moving = moving.float() * predicted
    options = dict(sigma_data=pipe.scheduler.config.sigma_data, fps=pipe.config.default_fps,
                   condition_frame_channels=pipe.config.condition_frame_channels,
                   residual_from_last_condition_frame=pipe.config.residual_from_last_condition_frame)
    errors = {}
    for sigma in sigmas:
        per_variant = {}
        for name in VARIANTS:
            with extra_transformer_inputs(pipe.transformer, **inputs[name][2]):
                x0 = denoise(pipe.transformer, latents + sigma * noise, sigma, text, condition=video_condition,
                             **options)
            squared = (x0 - latents).square().mean(1, keepdim=True)  # [B, 1, T, h, w]
            all_latents = float((squared * predicted).sum() / (predicted.expand_as(squared).sum()))
            moving_latents = float((squared * moving).sum() / moving.sum().clamp(min=1))
            per_variant[name] = {"mse": round(all_latents, 6), "mse_moving": round(moving_latents, 6)}
        for name in VARIANTS[1:]:
            for key in ("mse", "mse_moving"):
                gap = per_variant[name][key] / max(per_variant["true"][key], 1e-12) - 1.0
                per_variant[f"gap_{name}"] = {**per_variant.get(f"gap_{name}", {}), key: round(gap, 4)}
        errors[f"sigma_{sigma:g}"] = per_variant
    result = {"pipeline": str(folder), "clips": clips, "views": views,
              "captions": captions if condition != "action" else "one fixed prompt"}
    if condition == "action":
        result["push_views"] = push_views
    moving_fraction = moving.sum() / predicted.expand_as(moving).sum()
    return {**result, "moving_fraction": round(float(moving_fraction), 4), "errors": errors}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--camera", help="a CosmosCameraControlPipeline folder")
    parser.add_argument("--action", help="a CosmosActionConditionedPipeline folder")
    parser.add_argument("--multiview", help="a CosmosMultiViewPipeline folder")
    parser.add_argument("--clips", type=int, default=16, help="held-out clips per model (simulator seeds 0..N-1)")
    parser.add_argument("--captions", choices=["full", "scene"], default="full",
                        help="camera / multi-view prompts: the simulator's caption ('full') or what is seen only "
                             "('scene'); use the style the model was trained on")
    parser.add_argument("--push_views", type=int, nargs="+", default=None,
                        help="camera views of the action clips (default all, 0..3, cycled over the clips)")
    parser.add_argument("--sim_workers", type=int, default=None, help="simulation processes (default: all cores)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    if not (args.camera or args.action or args.multiview):
        parser.error("give at least one of --camera, --action, --multiview")
    if args.clips < 2:
        parser.error(f"--clips must be >= 2 (the shuffled variant needs another clip), got {args.clips}")
    try:
        check_held_out_clip_count(args.clips, HELD_OUT_SEEDS["post_training"])
    except ValueError as error:
        parser.error(str(error))
    for folder in (args.camera, args.action, args.multiview):
        if folder and not Path(folder, "model_index.json").is_file():
            parser.error(f"not a pipeline folder (no model_index.json): {folder}")
    report = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + (sys.argv[1:] if argv is None else argv)),
        "held_out_seeds": f"0..{args.clips - 1}", "sigmas": list(SIGMAS),
        "metric": "mean squared error of the denoised latents on the predicted frames (normalised latent space), "
                  "lower is better; gap = error / error with the true condition - 1",
    }
    for name, folder in (("camera", args.camera), ("action", args.action), ("multiview", args.multiview)):
        if folder:
            start = time.perf_counter()
            report[name] = sensitivity(name, folder, args.clips, args.sim_workers, args.captions,
                                       push_views=args.push_views)
            report[name]["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:  # written whole or not at all
        from cosmos_hf.evaluation.report import write_text

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
