#!/usr/bin/env python
"""Camera-control geometry report: the camera path recovered from generated videos against the requested one.

    OMP_NUM_THREADS=1 .venv/bin/python training/report_camera_control.py \
        [--pipeline pipelines/cosmos-nano-camera-control] [--base pipelines/cosmos-nano-video2world] \
        [--clips_per_trajectory 8] [--steps 35] [--ceiling_sizes 128 256] [--captions full|scene] \
        [--out bench/results/report_camera_control_geometry.json]

Held-out camera-task clips of the built-in world (simulator seeds 0..N-1 for each trajectory kind: orbit, dolly =
the camera moving forward or back, pan = the camera turning in place; the nano post-training data are seeds 10000+)
are continued from their first frame, and every predicted video is scored with `cosmos_hf.evaluation.camera`
(the metric of `cosmos-hf eval camera`: SIFT matches and relative poses between consecutive frames, rotation error
in degrees, translation error as a fraction of the requested path's extent, and the rate of frame pairs whose pose
could not be recovered), always against the clip's requested (true) path:
* `true_video`: the simulator's rendering of the requested path, the metric's ceiling (what it recovers from
  correct frames);
* `copy_first_frame`: the first frame repeated (a still camera), the floor;
* `model`: the camera-control pipeline given the true path;
* `model_still_camera`: the same pipeline given a still camera (the control: a model that follows its camera input
  scores worse here than with the true path);
* `base_video2world`: the Video2World pipeline it was post-trained from (no camera input).
Prompts are the simulator's captions (`--captions full`, which name the motion: "The camera orbits around ...") or
what is seen only (`--captions scene`); use the style the model was trained on.
A pair whose pose is not recovered counts as "no motion" (the metric's convention), so a video the metric cannot
read scores exactly like the still floor. Whether the ceiling recovers anything at the pipeline's resolution is
therefore checked first-hand: `ceiling_by_resolution` scores the true path rendered at larger sizes too (same
scenes, same paths). Everything is scored twice, under "sift" (the metric's default matcher) and "klt" (corner
tracking, which still finds correspondences in 64x64 frames of flat-coloured objects). A pan keeps the camera
centre fixed, so its translation error is undefined (null).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from cosmos_hf.evaluation.camera import MATCHERS, camera_control_errors
from cosmos_hf.sim import HELD_OUT_SEEDS, TRAJECTORIES, check_held_out_clip_count
from cosmos_hf.sim.camera_task import simulate_camera

PREDICTORS = ("true_video", "copy_first_frame", "model", "model_still_camera", "base_video2world")


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """[..., H, W, 3] in [0, 1] -> uint8."""
    return np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)


def frames_tensor(video_uint8: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> [1, 3, T, H, W] in [-1, 1]."""
    return torch.from_numpy(video_uint8).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0


def score(video: np.ndarray, clip, matcher: str) -> dict:
    errors = camera_control_errors(video, clip.cam_to_world, clip.intrinsics, matcher=matcher)
    return {"rotation_error_deg": errors["rotation_error_deg"], "translation_error": errors["translation_error"],
            "failed_pair_rate": 1.0 - errors["pose_success_rate"]}


def mean_scores(rows: list[dict]) -> dict:
    """Means over clips; translation error over the clips where it is defined (not pans)."""
    translation = [row["translation_error"] for row in rows if row["translation_error"] is not None]
    return {"rotation_error_deg": round(float(np.mean([row["rotation_error_deg"] for row in rows])), 2),
            "translation_error": round(float(np.mean(translation)), 3) if translation else None,
            "failed_pair_rate": round(float(np.mean([row["failed_pair_rate"] for row in rows])), 3),
            "clips": len(rows)}


def load(cls, folder, device):
    pipe = cls.from_pretrained(folder, disable_safety_checker=True).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def run(pipeline, base, clips_per_trajectory: int, steps: int, ceiling_sizes, device: str,
        captions: str = "full") -> dict:
    from cosmos_hf.pipelines import CosmosCameraControlPipeline, CosmosVideo2WorldPipeline

    pipe = load(CosmosCameraControlPipeline, pipeline, device)
    base_pipe = None if base is None else load(CosmosVideo2WorldPipeline, base, device)
    num_frames, height, width = pipe.config.default_num_frames, pipe.config.default_height, pipe.config.default_width
    fps = pipe.config.default_fps
    scores = {m: {kind: {name: [] for name in PREDICTORS} for kind in TRAJECTORIES} for m in MATCHERS}
    ceiling = {m: {kind: {size: [] for size in ceiling_sizes} for kind in TRAJECTORIES} for m in MATCHERS}
    for kind in TRAJECTORIES:
        for seed in range(clips_per_trajectory):
            clip = simulate_camera(seed=seed, num_frames=num_frames, height=height, width=width, fps=fps,
                                   trajectory=kind)
            condition = frames_tensor(clip.video[:1])
            prompt = clip.extras["scene_caption"] if captions == "scene" else clip.caption
            common = dict(video=condition, prompt=prompt, num_inference_steps=steps, output_type="np")
            videos = {"true_video": clip.video, "copy_first_frame": np.repeat(clip.video[:1], num_frames, 0)}
            for name, poses in (("model", clip.cam_to_world),
                                ("model_still_camera", np.repeat(clip.cam_to_world[:1], num_frames, 0))):
                videos[name] = to_uint8(pipe(cam_to_world=poses, intrinsics=clip.intrinsics,
                                             generator=torch.Generator().manual_seed(seed), **common).frames[0])
            if base_pipe is not None:
                videos["base_video2world"] = to_uint8(
                    base_pipe(generator=torch.Generator().manual_seed(seed), **common).frames[0])
            larger = [simulate_camera(seed=seed, num_frames=num_frames, height=size, width=size, fps=fps,
                                      trajectory=kind) for size in ceiling_sizes]  # same scene and path
            for matcher in MATCHERS:
                for name, video in videos.items():
                    scores[matcher][kind][name].append(score(video, clip, matcher))
                for size, large in zip(ceiling_sizes, larger):
                    ceiling[matcher][kind][size].append(score(large.video, large, matcher))
    return {"frames": num_frames, "size": f"{height}x{width}", "fps": fps, "captions": captions,
            **{matcher: summarise(scores[matcher], ceiling[matcher], f"{height}x{width}") for matcher in MATCHERS}}


def summarise(scores: dict, ceiling: dict, size: str) -> dict:
    """Means per predictor (overall and per trajectory kind), and the true video's scores at every size."""
    by_trajectory = {kind: {name: mean_scores(rows) for name, rows in table.items() if rows}
                     for kind, table in scores.items()}
    overall = {name: mean_scores([row for kind in TRAJECTORIES for row in scores[kind][name]])
               for name in PREDICTORS if scores[TRAJECTORIES[0]][name]}
    sizes = list(ceiling[TRAJECTORIES[0]])
    ceiling_by_resolution = {
        size: overall["true_video"],
        **{f"{s}x{s}": mean_scores([row for kind in TRAJECTORIES for row in ceiling[kind][s]]) for s in sizes}}
    ceiling_by_resolution_and_trajectory = {
        kind: {size: by_trajectory[kind]["true_video"], **{f"{s}x{s}": mean_scores(ceiling[kind][s]) for s in sizes}}
        for kind in TRAJECTORIES}
    return {"overall": overall, "by_trajectory": by_trajectory, "ceiling_by_resolution": ceiling_by_resolution,
            "ceiling_by_resolution_and_trajectory": ceiling_by_resolution_and_trajectory}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="pipelines/cosmos-nano-camera-control",
                        help="a CosmosCameraControlPipeline folder")
    parser.add_argument("--base", default="pipelines/cosmos-nano-video2world",
                        help="the Video2World pipeline it was post-trained from ('none' to skip)")
    parser.add_argument("--clips_per_trajectory", type=int, default=8,
                        help="held-out clips per trajectory kind (simulator seeds 0..N-1)")
    parser.add_argument("--steps", type=int, default=35, help="num_inference_steps of every sample")
    parser.add_argument("--ceiling_sizes", type=int, nargs="*", default=[128, 256],
                        help="also score the true path rendered at these square sizes (what the metric can see)")
    parser.add_argument("--captions", choices=["full", "scene"], default="full",
                        help="prompts: the simulator's captions, which name the camera motion ('full'), or what is "
                             "seen only ('scene'); use the style the model was trained on")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="bench/results/report_camera_control_geometry.json",
                        help="where the JSON goes ('-' for stdout only)")
    args = parser.parse_args(argv)
    if args.clips_per_trajectory < 1 or args.steps < 1:
        parser.error("--clips_per_trajectory and --steps must be >= 1")
    try:
        check_held_out_clip_count(args.clips_per_trajectory, HELD_OUT_SEEDS["post_training"], "--clips_per_trajectory")
    except ValueError as error:
        parser.error(str(error))
    if any(size < 16 or size > 1024 for size in args.ceiling_sizes):
        parser.error("--ceiling_sizes must be between 16 and 1024")

    base = None if args.base is None or args.base.lower() == "none" else args.base
    start = time.perf_counter()
    report = {"pipeline": args.pipeline, "base": base,
              "held_out_seeds": f"0..{args.clips_per_trajectory - 1} per trajectory kind",
              "trajectories": list(TRAJECTORIES), "num_inference_steps": args.steps, "device": args.device,
              "torch_threads": torch.get_num_threads(),
              "metric": "cosmos_hf.evaluation.camera.camera_control_errors (cosmos-hf eval camera --matcher "
                        "sift|klt) against the requested path; means over clips; translation error over non-pan "
                        "clips",
              **run(args.pipeline, base, args.clips_per_trajectory, args.steps, args.ceiling_sizes, args.device,
                    args.captions)}
    report["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out != "-":
        from cosmos_hf.utils import atomic_path

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(Path(args.out)) as tmp:
            Path(tmp).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
