#!/usr/bin/env python
"""Held-out report for post-trained nano world models (camera control, robot actions, multi-view) as JSON.

    .venv/bin/python training/report_post_trained.py --camera OUT/camera/pipeline --action OUT/action/pipeline \
        --multiview OUT/multiview/pipeline [--base pipelines/cosmos-nano-video2world] [--clips 16] [--steps 35] \
        [--out report.json]

Every model is asked to continue clips of the built-in world that it never saw (simulator seeds 0..clips-1; the nano
post-training configs train on seeds 10000+), from their first frame, and scored by PSNR (dB, uint8 frames, one MSE
per clip over the predicted frames, averaged over clips) against the simulator's ground truth, next to:
* `copy_last_frame`: the conditioning frame repeated (the baseline every nano world model is measured against);
* `base_video2world`: the Video2World model it was post-trained from, given the same frame and caption but not the
  condition (camera, actions, rig), so the gain is what the condition adds;
* a control with the condition made uninformative: a still camera (`static_camera`), actions that hold the gripper
  still (`hold_actions`), a rig that stands still (`static_rig`, a zero trajectory). A model that uses its condition
  scores higher with the true one.
Camera: 17 frames along orbit / dolly / pan paths. Actions: a rollout of 32 actions (33 frames, two 16-frame chunks;
`window_1` / `window_2` score each chunk; `--push_views` picks the camera views, default all four). Multi-view:
the model's saved frame count (`default_num_frames`) of every camera of the rig (all views pooled). Camera and
multi-view prompts follow `--captions` (the simulator's caption, or `scene`: what is seen, not how it moves).
Pipelines run with their saved defaults and `disable_safety_checker=True` (the guardrail's face pixelation would
change frames the metric compares; nothing here is shown to anyone).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

from cosmos_hf.data.post_training_datasets import PUSH_VIEWS, CameraClips, MultiViewClips, PushActionClips
from cosmos_hf.sim import HELD_OUT_SEEDS, check_held_out_clip_count


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """[..., H, W, 3] in [0, 1] -> uint8."""
    return np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)


def clip_psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    from cosmos_hf.evaluation.video_metrics import psnr

    value = psnr(prediction.reshape(-1, *prediction.shape[-3:]), target.reshape(-1, *target.shape[-3:]))
    return min(value, 100.0)  # identical clips (inf) would swamp the mean


def moving_psnr(prediction: np.ndarray, target: np.ndarray, first: np.ndarray, threshold: int = 25) -> float:
    """PSNR over the pixels that change in the ground truth (|target_t - first frame| > threshold in any channel):
    the gripper and the objects it moves, or what a camera move reveals. Whole-frame PSNR is dominated by the still
    background, which a model that ignores its condition also gets right."""
    moving = (np.abs(target.astype(np.int16) - first.astype(np.int16)) > threshold).any(-1)
    if not moving.any():
        return 100.0
    error = (prediction.astype(np.float64) - target.astype(np.float64))[moving]
    mse = float(np.mean(error ** 2))
    return min(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)), 100.0)


def summary(scores: dict[str, list[float]]) -> dict:
    return {name: round(float(np.mean(values)), 3) for name, values in scores.items()}


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def load(cls, folder):
    pipe = cls.from_pretrained(folder, disable_safety_checker=True).to(DEVICE)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def frames_tensor(video_uint8: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> [1, 3, T, H, W] in [-1, 1]."""
    return torch.from_numpy(video_uint8).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0


@torch.no_grad()
def report_camera(folder, base, clips: int, steps: int, workers, captions: str = "full") -> dict:
    from cosmos_hf.pipelines import CosmosCameraControlPipeline

    pipe = load(CosmosCameraControlPipeline, folder)
    num_frames, size = pipe.config.default_num_frames, pipe.config.default_height
    data = CameraClips(clips, num_frames=num_frames, height=size, width=size, fps=pipe.config.default_fps,
                       seed_offset=0, workers=workers, captions=captions)
    scores = {"model": [], "static_camera": [], "base_video2world": [], "copy_last_frame": []}
    for index, clip in enumerate(data.clips):
        truth, caption = clip["video"], data[index]["caption"]
        condition = frames_tensor(truth[:1])
        common = dict(video=condition, prompt=caption, num_inference_steps=steps, output_type="np",
                      intrinsics=clip["intrinsics"])
        runs = {"model": clip["cam_to_world"],
                "static_camera": np.repeat(clip["cam_to_world"][:1], num_frames, axis=0)}
        for name, poses in runs.items():
            frames = pipe(cam_to_world=poses, generator=torch.Generator().manual_seed(index), **common).frames[0]
            scores[name].append(clip_psnr(to_uint8(frames[1:]), truth[1:]))
        if base is not None:
            frames = base(video=condition, prompt=caption, num_inference_steps=steps, output_type="np",
                          generator=torch.Generator().manual_seed(index)).frames[0]
            scores["base_video2world"].append(clip_psnr(to_uint8(frames[1:]), truth[1:]))
        scores["copy_last_frame"].append(clip_psnr(np.repeat(truth[:1], num_frames - 1, 0), truth[1:]))
    return {"pipeline": str(folder), "clips": clips, "frames": num_frames, "captions": captions, "psnr": summary(
        {k: v for k, v in scores.items() if v})}


@torch.no_grad()
def report_action(folder, base, clips: int, steps: int, workers, rollout_frames: int = 33, views=None) -> dict:
    from cosmos_hf.pipelines import CosmosActionConditionedPipeline

    pipe = load(CosmosActionConditionedPipeline, folder)
    window, size = pipe.transformer.config.num_action_frames + 1, pipe.config.default_height
    views = list(range(PUSH_VIEWS)) if views is None else [int(view) for view in views]
    data = PushActionClips(clips, num_frames=rollout_frames, height=size, width=size, fps=pipe.config.default_fps,
                           seed_offset=0, views=views, workers=workers)
    scores = {name: [] for name in ("model", "hold_actions", "base_video2world", "copy_last_frame")}
    windows = {"model": {}, "copy_last_frame": {}}
    moving = {name: [] for name in ("model", "hold_actions", "copy_last_frame")}
    for index, clip in enumerate(data.clips):
        truth, actions = clip["video"], clip["actions"]
        condition = frames_tensor(truth[:1])
        hold = CosmosActionConditionedPipeline.hold_actions(torch.from_numpy(actions[:1]), len(actions))[0]
        predictions = {}
        for name, run_actions in (("model", actions), ("hold_actions", hold)):
            frames = pipe(video=condition, actions=run_actions, num_inference_steps=steps, output_type="np",
                          generator=torch.Generator().manual_seed(index)).frames[0]
            predictions[name] = to_uint8(frames)
            scores[name].append(clip_psnr(predictions[name][1:], truth[1:]))
            moving[name].append(moving_psnr(predictions[name][1:], truth[1:], truth[0]))
        copy = np.repeat(truth[:1], len(truth), 0)
        scores["copy_last_frame"].append(clip_psnr(copy[1:], truth[1:]))
        moving["copy_last_frame"].append(moving_psnr(copy[1:], truth[1:], truth[0]))
        for start in range(1, len(truth), window - 1):  # the rollout's chunks
            span = slice(start, min(start + window - 1, len(truth)))
            key = f"window_{(start - 1) // (window - 1) + 1}"
            windows["model"].setdefault(key, []).append(clip_psnr(predictions["model"][span], truth[span]))
            windows["copy_last_frame"].setdefault(key, []).append(clip_psnr(copy[span], truth[span]))
        if base is not None:  # the base model cannot take actions: its first window only
            from cosmos_hf.data.post_training_datasets import ACTION_PROMPT

            frames = base(video=condition, prompt=ACTION_PROMPT, num_frames=window, num_inference_steps=steps,
                          output_type="np", generator=torch.Generator().manual_seed(index)).frames[0]
            scores["base_video2world"].append(clip_psnr(to_uint8(frames[1:]), truth[1:window]))
    result = {"pipeline": str(folder), "clips": clips, "views": views, "frames": rollout_frames, "window": window,
              "psnr": summary({k: v for k, v in scores.items() if v}),
              "psnr_moving_pixels": summary(moving),
              "psnr_per_window": {name: summary(values) for name, values in windows.items()}}
    if base is not None:
        result["note"] = "base_video2world is scored on the first window only (frames 1..window-1)"
    return result


@torch.no_grad()
def report_multiview(folder, base, clips: int, steps: int, workers, captions: str = "full") -> dict:
    from cosmos_hf.pipelines import CosmosMultiViewPipeline

    pipe = load(CosmosMultiViewPipeline, folder)
    num_frames, size, views = pipe.config.default_num_frames, pipe.config.default_height, pipe.num_views
    data = MultiViewClips(clips, num_views=views, num_frames=num_frames, height=size, width=size,
                          fps=pipe.config.default_fps, seed_offset=0, workers=workers, captions=captions)
    scores = {"model": [], "static_rig": [], "base_video2world": [], "copy_last_frame": []}
    for index in range(len(data)):
        item, truth = data[index], data.clips[index]["video"]  # truth: uint8 [V, T, H, W, 3]
        condition = item["video"][:, :, :1]  # [V, 3, 1, H, W]
        trajectory = item["trajectory"] if pipe.transformer.config.get("trajectory_dim") else None
        frames = pipe(prompt=item["caption"], video=condition, trajectory=trajectory, num_inference_steps=steps,
                      output_type="np", generator=torch.Generator().manual_seed(index)).frames[0]
        scores["model"].append(clip_psnr(to_uint8(frames[:, 1:]), truth[:, 1:]))
        if trajectory is not None:  # the rig standing still at its first position
            frames = pipe(prompt=item["caption"], video=condition, trajectory=torch.zeros_like(trajectory),
                          num_inference_steps=steps, output_type="np",
                          generator=torch.Generator().manual_seed(index)).frames[0]
            scores["static_rig"].append(clip_psnr(to_uint8(frames[:, 1:]), truth[:, 1:]))
        if base is not None:  # every view on its own, same frame and caption
            frames = base(video=condition, prompt=item["caption"], num_frames=num_frames, num_inference_steps=steps,
                          output_type="np", generator=torch.Generator().manual_seed(index)).frames
            scores["base_video2world"].append(clip_psnr(to_uint8(frames[:, 1:]), truth[:, 1:]))
        scores["copy_last_frame"].append(clip_psnr(np.repeat(truth[:, :1], num_frames - 1, 1), truth[:, 1:]))
    return {"pipeline": str(folder), "clips": clips, "views": views, "frames": num_frames, "captions": captions,
            "psnr": summary({k: v for k, v in scores.items() if v})}


def main(argv=None) -> int:
    global DEVICE  # the device every pipeline of the report runs on
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", help="a CosmosCameraControlPipeline folder")
    parser.add_argument("--action", help="a CosmosActionConditionedPipeline folder")
    parser.add_argument("--multiview", help="a CosmosMultiViewPipeline folder")
    parser.add_argument("--base", default="pipelines/cosmos-nano-video2world",
                        help="the Video2World pipeline they were post-trained from ('none' to skip)")
    parser.add_argument("--clips", type=int, default=16, help="held-out clips per model (simulator seeds 0..N-1)")
    parser.add_argument("--steps", type=int, default=35, help="num_inference_steps of every sample")
    parser.add_argument("--push_views", type=int, nargs="+", default=None,
                        help="camera views of the action clips (default all, 0..3, cycled over the clips)")
    parser.add_argument("--captions", choices=["full", "scene"], default="full",
                        help="camera / multi-view prompts: the simulator's caption, which says how the camera or rig "
                             "moves ('full'), or what is seen only ('scene'); use the style the model was trained on")
    parser.add_argument("--sim_workers", type=int, default=None, help="simulation processes (default: all cores)")
    parser.add_argument("--device", default=DEVICE, help="cuda when available, else cpu")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    DEVICE = args.device
    if not (args.camera or args.action or args.multiview):
        parser.error("give at least one of --camera, --action, --multiview")
    if args.clips < 1 or args.steps < 1:
        parser.error("--clips and --steps must be >= 1")
    try:
        check_held_out_clip_count(args.clips, HELD_OUT_SEEDS["post_training"])
    except ValueError as error:
        parser.error(str(error))

    base = None
    if args.base and args.base.lower() != "none":
        from cosmos_hf.pipelines import CosmosVideo2WorldPipeline

        base = load(CosmosVideo2WorldPipeline, args.base)
    report = {"held_out_seeds": f"0..{args.clips - 1}", "num_inference_steps": args.steps, "device": DEVICE,
              "base": None if base is None else args.base, "metric": "PSNR dB (uint8, predicted frames only)"}
    action = functools.partial(report_action, views=args.push_views)
    camera = functools.partial(report_camera, captions=args.captions)
    multiview = functools.partial(report_multiview, captions=args.captions)
    for name, folder, fn in (("camera", args.camera, camera), ("action", args.action, action),
                             ("multiview", args.multiview, multiview)):
        if folder:
            start = time.perf_counter()
            report[name] = fn(Path(folder), base, args.clips, args.steps, args.sim_workers)
            report[name]["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        from cosmos_hf.utils import atomic_path

        with atomic_path(Path(args.out)) as tmp:
            Path(tmp).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
