"""`make demo`: the platform's main job, end to end on a laptop CPU.

It simulates held-out clips of the built-in physics world (`DEMO_CLIPS`, seeds never used in training) and shows what
the bundled nano models (pipelines/) do with them:

1. Tokenizers: the nano CV4x8x8, DV4x8x8, CV4x4x4 and DV4x4x4 tokenizers reconstruct each clip -> `tokenizers.mp4`
   (input | each tokenizer, one clip per row); metrics: TokenBench PSNR / SSIM of each tokenizer and of a same-size
   bilinear baseline.
2. World models, each one whose folder exists (a missing one is skipped with a note; `--skip-world-models` skips all):
   - Video2World (pipelines/cosmos-nano-video2world): conditioned on each clip's first frame and caption, it
     generates the clip's frames -> `video2world.mp4` (ground truth | copy-last-frame | nano Video2World, one clip per
     row); metrics: PSNR / SSIM of the predicted frames (1..T-1), as the physics benchmark scores them, for the model
     and for the copy-last-frame baseline.
   - Text2World (pipelines/cosmos-nano-text2world): each clip's caption alone -> `text2world.mp4`
     (the caption's simulator clip | nano Text2World, one prompt per row). No metric: a caption does not determine
     the camera, colours or starting positions, so there is no ground truth to compare pixels with.
   - AR Video2World (pipelines/cosmos-nano-ar-video2world, on DV4x8x8 tokens, and
     pipelines/cosmos-nano-ar-video2world-dv4x4x4): greedy token generation (greedy Medusa: the same tokens, faster;
     the diffusion decoder when the folder defaults to it; the folder's saved call defaults) from the first frame ->
     `ar_video2world.mp4` / `ar_video2world_dv4x4x4.mp4` + metrics as above.
3. Post-trained world models, each one whose folder exists (`--skip-world-models` skips them too), on held-out clips
   of their own task, simulated at their own size, frame count and frame rate (`pipe.config`), from the first frame
   and the clip's true condition -> `<name>.mp4` (simulator | copy-last | model) + PSNR / SSIM as above:
   - camera control (pipelines/cosmos-nano-camera-control): a still scene filmed along an orbit / dolly / pan path,
     the model given the path's exact poses and intrinsics and the simulator's caption;
   - action conditioned (pipelines/cosmos-nano-action-conditioned): the push task (scripted policy, view 0), the
     model given the 16 robot actions;
   - multi-view (pipelines/cosmos-nano-multiview): every camera of a driving rig, given the rig's path and a caption
     per camera; the cameras side by side in each panel, scores averaged over cameras.

Every video labels its columns in a strip above each row and shows the 64x64 panels 2x. Everything lands in `--out`
with `metrics.json`, whose first entry ("about") says what each number is: which frames are scored, higher is better,
what each baseline does. Clips are simulated at the models' training frame rate (12 fps). Sampling uses a fixed
generator seed (`--seed`), so a run repeats.

    python -m cosmos_hf.demo --out outputs/demo [--steps 35] [--clips 4] [--skip-world-models]
        [--video2world DIR] [--text2world DIR] [--ar-video2world DIR] [--ar-video2world-dv4x4x4 DIR]
        [--camera-control DIR] [--action-conditioned DIR] [--multiview DIR]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from .utils import positive_int

REPO_ROOT = Path(__file__).resolve().parents[2]
NANO_TOKENIZERS = {
    "CV4x8x8": REPO_ROOT / "pipelines" / "cosmos-nano-tokenizer-cv4x8x8",
    "DV4x8x8": REPO_ROOT / "pipelines" / "cosmos-nano-tokenizer-dv4x8x8",
    "CV4x4x4": REPO_ROOT / "pipelines" / "cosmos-nano-tokenizer-cv4x4x4",
    "DV4x4x4": REPO_ROOT / "pipelines" / "cosmos-nano-tokenizer-dv4x4x4",
}
NANO_WORLD_MODELS = {
    "video2world": REPO_ROOT / "pipelines" / "cosmos-nano-video2world",
    "text2world": REPO_ROOT / "pipelines" / "cosmos-nano-text2world",
    "ar_video2world": REPO_ROOT / "pipelines" / "cosmos-nano-ar-video2world",
    "ar_video2world_dv4x4x4": REPO_ROOT / "pipelines" / "cosmos-nano-ar-video2world-dv4x4x4",
}
NANO_POST_TRAINED = {
    "camera_control": REPO_ROOT / "pipelines" / "cosmos-nano-camera-control",
    "action_conditioned": REPO_ROOT / "pipelines" / "cosmos-nano-action-conditioned",
    "multiview": REPO_ROOT / "pipelines" / "cosmos-nano-multiview",
}
DEMO_CLIPS = [("dominoes", 0), ("free_fall", 2), ("seesaw", 1), ("unstable_stack", 3)]
HELD_OUT_SEED_OFFSET = 900_000  # far from the training stream's seeds: these clips were never seen in training
NUM_CONDITION_FRAMES = 1  # the world models see the first frame only
DEFAULT_STEPS = 35
DEMO_FPS = 12  # the nano world models' training frame rate (training/configs/*nano*.yaml): same motion per frame
PANEL_SCALE = 2  # the mp4 panels are shown 2x (nearest neighbour), so that their labels can be read
LABEL_HEIGHT = 16  # pixels of the label strip above each row of panels


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


# ---------------------------------------------------------------------------------------------------- videos

TOKENIZER_COLUMNS = ("input", "CV4x8x8", "DV4x8x8", "CV4x4x4", "DV4x4x4")
WORLD_MODEL_COLUMNS = {
    "video2world": ("ground truth", "copy-last", "Video2World"),
    "text2world": ("simulator clip", "Text2World"),
    "ar_video2world": ("ground truth", "copy-last", "AR model"),
    "ar_video2world_dv4x4x4": ("ground truth", "copy-last", "AR on DV4x4x4"),
    "camera_control": ("simulator", "copy-last", "camera model"),
    "action_conditioned": ("simulator", "copy-last", "action model"),
    "multiview": ("simulator (all cameras)", "copy-last", "multi-view model"),
}


def labelled_grid(rows, labels) -> np.ndarray:
    """One video of panels: `rows` (one per clip) of equally shaped uint8 videos [T, H, W, 3], each panel enlarged
    `PANEL_SCALE` times, with a strip above every row naming its columns (`labels`). -> uint8 [T, H', W', 3]."""
    import cv2

    strips = []
    for videos in rows:
        if len(videos) != len(labels):
            raise ValueError(f"{len(videos)} panels for {len(labels)} labels")
        panels = [np.repeat(np.repeat(video, PANEL_SCALE, axis=1), PANEL_SCALE, axis=2) for video in videos]
        frames, _, width = panels[0].shape[:3]
        header = np.full((LABEL_HEIGHT, width * len(panels), 3), 32, np.uint8)  # dark: the scenes' skies are white
        for column, text in enumerate(labels):
            # the largest plain font that fits the panel's width
            scale = min(0.45, 0.45 * (width - 6) / cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0])
            cv2.putText(header, text, (column * width + 3, LABEL_HEIGHT - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
        strips.append(np.concatenate([np.broadcast_to(header, (frames, *header.shape)),
                                      np.concatenate(panels, axis=2)], axis=1))
    return np.ascontiguousarray(np.concatenate(strips, axis=1))


# ---------------------------------------------------------------------------------------------------- clips


def simulate_clips(clips, num_frames: int, size: int) -> list[dict]:
    """Each (scene, seed) of `clips` simulated at its held-out seed: {"name", "video" uint8 [T,H,W,3], "caption"}."""
    from . import sim

    out = []
    for scene, seed in clips:
        record = sim.simulate(scene, seed=HELD_OUT_SEED_OFFSET + seed, num_frames=num_frames, height=size, width=size,
                              fps=DEMO_FPS)
        out.append({"name": f"{scene}/seed{HELD_OUT_SEED_OFFSET + seed}", "scene": scene,
                    "video": np.asarray(record.video), "caption": str(record.caption or "")})
    return out


# ---------------------------------------------------------------------------------------------------- tokenizers


def run_tokenizers(clips, out: Path) -> dict:
    """Reconstruct every clip with the nano tokenizers and the bilinear baseline; write tokenizers.mp4."""
    from .data import write_video
    from .evaluation.video_metrics import psnr, ssim_per_frame
    from .tokenizers import load_tokenizer

    missing = [str(path) for path in NANO_TOKENIZERS.values() if not (path / "config.json").is_file()]
    if missing:
        raise SystemExit(f"bundled nano tokenizers not found: {missing} (train them with training/train_tokenizer.py)")
    tokenizers = {name: load_tokenizer(path).eval() for name, path in NANO_TOKENIZERS.items()}

    rows, metrics = [], {name: {"psnr": [], "ssim": []} for name in [*tokenizers, "bilinear_baseline"]}
    for clip in clips:
        frames = clip["video"]
        outputs = {name: reconstruct(model, frames) for name, model in tokenizers.items()}
        # same stored values as CV4x8x8's 16-channel latent: 16 / (4 * 8 * 8) of the pixels' 3 channels
        outputs["bilinear_baseline"] = bilinear_baseline(frames, temporal=4, spatial=8 * (3 / 16) ** 0.5)
        for name, recon in outputs.items():
            metrics[name]["psnr"].append(psnr(frames, recon))
            metrics[name]["ssim"].append(float(np.mean(ssim_per_frame(frames, recon))))
        rows.append([frames, *(outputs[name] for name in TOKENIZER_COLUMNS[1:])])
        print(f"{clip['scene']:>15}: " + ", ".join(f"{name} {metrics[name]['psnr'][-1]:.2f} dB" for name in outputs))

    write_video(out / "tokenizers.mp4", labelled_grid(rows, TOKENIZER_COLUMNS), fps=DEMO_FPS)
    print(f"wrote {out / 'tokenizers.mp4'} ({' | '.join(TOKENIZER_COLUMNS)})")
    return {name: {"psnr_db": round(float(np.mean(v["psnr"])), 3), "ssim": round(float(np.mean(v["ssim"])), 4)}
            for name, v in metrics.items()}


# ---------------------------------------------------------------------------------------------------- world models


def load_world_model(folder: Path, expected: str):
    """`load_pipeline(folder, trust_remote_code=True)` (what `DiffusionPipeline.from_pretrained` gives, without
    diffusers' remote-code copy for our folders), checked to be an `expected` pipeline."""
    from .pipelines import (CosmosActionConditionedPipeline, CosmosARVideo2WorldPipeline,
                            CosmosCameraControlPipeline, CosmosMultiViewPipeline, CosmosText2WorldPipeline,
                            CosmosVideo2WorldPipeline, load_pipeline)

    pipe = load_pipeline(folder, trust_remote_code=True)
    # Video2World subclasses Text2World and the post-trained pipelines subclass Video2World: "is a Text2World
    # pipeline" must also exclude Video2World, and "is a Video2World pipeline" the post-trained ones
    post_trained = (CosmosActionConditionedPipeline, CosmosCameraControlPipeline, CosmosMultiViewPipeline)
    ok = {
        "video2world": isinstance(pipe, CosmosVideo2WorldPipeline) and not isinstance(pipe, post_trained),
        "text2world": isinstance(pipe, CosmosText2WorldPipeline) and not isinstance(pipe, CosmosVideo2WorldPipeline),
        "ar_video2world": isinstance(pipe, CosmosARVideo2WorldPipeline),
        "ar_video2world_dv4x4x4": isinstance(pipe, CosmosARVideo2WorldPipeline),
        "camera_control": isinstance(pipe, CosmosCameraControlPipeline),
        "action_conditioned": isinstance(pipe, CosmosActionConditionedPipeline),
        "multiview": isinstance(pipe, CosmosMultiViewPipeline),
    }[expected]
    if not ok:
        raise ValueError(f"{folder} holds a {type(pipe).__name__}, not a {expected} pipeline")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def to_uint8_video(frames, size: int) -> np.ndarray:
    """Pipeline output (`output_type="np"`: [1, T, H, W, 3] in [0, 1]) -> uint8 [T, size, size, 3]."""
    frames = np.asarray(frames)[0]
    if not np.isfinite(frames).all():
        raise ValueError("the pipeline returned NaN or inf frames")
    video = (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if video.shape[1:3] != (size, size):  # the AR model's token grid fixes its pixel size
        import cv2

        video = np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) for frame in video])
    return video


def score_predicted_frames(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """The physics benchmark's scores of the frames a model had to predict (after the conditioning frames):
    TokenBench PSNR (one MSE over all of them) and the mean per-frame SSIM."""
    from .evaluation.video_metrics import psnr, ssim_per_frame

    future = slice(NUM_CONDITION_FRAMES, None)
    return psnr(predicted[future], truth[future]), float(np.mean(ssim_per_frame(predicted[future], truth[future])))


def summarize_scores(scores: list[tuple[float, float]]) -> dict:
    """Mean PSNR / SSIM over clips. As in the physics benchmark, an exact prediction (PSNR +inf: copy-last on a clip
    where nothing moves) is left out of the PSNR mean and counted in `exact_clips`; all exact gives psnr_db None."""
    finite = [p for p, _ in scores if np.isfinite(p)]
    return {"psnr_db": round(float(np.mean(finite)), 3) if finite else None,
            "ssim": round(float(np.mean([s for _, s in scores])), 4),
            "exact_clips": len(scores) - len(finite)}


def copy_last_frame(video: np.ndarray) -> np.ndarray:
    from .evaluation.predictors import CopyLastFramePredictor

    return CopyLastFramePredictor()(video[:NUM_CONDITION_FRAMES], "", len(video))


def run_video2world(pipe, clips, args):
    """Generate each clip from its first frame and caption, with the folder's saved defaults (guidance, detail
    transfer): (predicted videos, those defaults for metrics.json)."""
    from .data import frames_to_tensor

    options = {"guidance_scale": pipe.config.get("default_guidance_scale"),
               "condition_detail_transfer": pipe.config.get("default_condition_detail_transfer", False)}
    predictions = []
    for clip in clips:
        video = clip["video"]
        output = pipe(video=frames_to_tensor(video[:NUM_CONDITION_FRAMES]), prompt=clip["caption"],
                      height=args.size, width=args.size, num_frames=len(video), num_inference_steps=args.steps,
                      generator=torch.Generator("cpu").manual_seed(args.seed), output_type="np").frames
        predictions.append(to_uint8_video(output, args.size))
    return predictions, options


def run_ar_video2world(pipe, clips, args):
    """Greedy AR continuation of each clip's first frame with greedy Medusa (the same tokens as plain greedy decoding:
    the model's heads, or without heads the previous latent frame's tokens, propose), the diffusion decoder when the
    folder defaults to it, and the folder's other saved call defaults."""
    from .data import frames_to_tensor

    call = {"use_medusa": True,
            # the folder's saved default (the nano AR pipelines decode with their DV tokenizer)
            "use_diffusion_decoder": pipe.has_diffusion_decoder and not args.no_ar_diffusion_decoder
            and bool(pipe.config.get("default_use_diffusion_decoder", True))}
    # recorded in metrics.json: the call's options and the folder's saved defaults that shaped the output
    options = dict(call)
    for name in ("previous_frame_logit_bias", "condition_keep_threshold", "condition_detail_gate"):
        if pipe.config.get(f"default_{name}") is not None:
            options[name] = pipe.config.get(f"default_{name}")
    if pipe.pixel_size != (args.size, args.size):
        options["resized_from"] = list(pipe.pixel_size)  # scored after area-resizing to the clips' size
        print(f"note: the AR model generates {pipe.pixel_size} frames; resized to {args.size}x{args.size} to compare")
    predictions = []
    for clip in clips:
        video = clip["video"]
        output = pipe(video=frames_to_tensor(video[:NUM_CONDITION_FRAMES]), prompt=clip["caption"], do_sample=False,
                      generator=torch.Generator("cpu").manual_seed(args.seed), output_type="np", **call).frames
        predictions.append(to_uint8_video(output, args.size))
    return predictions, options


def run_text2world(pipe, clips, args) -> list:
    """Generate a clip from each clip's caption alone."""
    predictions = []
    for clip in clips:
        output = pipe(prompt=clip["caption"], height=args.size, width=args.size, num_frames=len(clip["video"]),
                      num_inference_steps=args.steps, generator=torch.Generator("cpu").manual_seed(args.seed),
                      output_type="np").frames
        predictions.append(to_uint8_video(output, args.size))
    return predictions


def skip_model(summary: dict, name: str, note: str) -> None:
    print(f"note: skipping {name}: {note}")
    summary.setdefault("skipped", {})[name] = note


def installed_world_models(folders: dict, summary: dict):
    """(name, folder, pipeline, start time) for each of `folders` ({name: folder}) that holds a pipeline of that kind;
    a missing folder is skipped with a note."""
    for name, folder in folders.items():
        folder = Path(folder)
        if not (folder / "model_index.json").is_file():
            skip_model(summary, name, f"{folder} not found (no model_index.json)")
            continue
        start = time.time()
        yield name, folder, load_world_model(folder, name), start


def write_section_video(out: Path, name: str, rows, fps: float, start: float, section_seconds: dict) -> None:
    """`<name>.mp4` from the section's rows of panels, labelled with its columns; records the section's seconds."""
    from .data import write_video

    path = out / f"{name}.mp4"
    write_video(path, labelled_grid(rows, WORLD_MODEL_COLUMNS[name]), fps=fps)
    section_seconds[name] = round(time.time() - start, 1)
    print(f"wrote {path} ({' | '.join(WORLD_MODEL_COLUMNS[name])}; one clip per row) in {section_seconds[name]} s")


def run_world_models(clips, out: Path, args, summary: dict, section_seconds: dict) -> None:
    """The world-model section: one video (and metrics) per pipeline folder that exists."""
    folders = {"video2world": args.video2world, "text2world": args.text2world, "ar_video2world": args.ar_video2world,
               "ar_video2world_dv4x4x4": args.ar_video2world_dv4x4x4}
    baseline = [copy_last_frame(clip["video"]) for clip in clips]
    baseline_scores = [score_predicted_frames(clip["video"], pred) for clip, pred in zip(clips, baseline)]

    for name, folder, pipe, start in installed_world_models(folders, summary):
        if name.startswith("ar_video2world") and pipe.num_output_frames != args.frames:
            skip_model(summary, name, f"{folder} generates {pipe.num_output_frames} frames (its token grid); --frames "
                                      f"is {args.frames}")
            continue
        if name == "text2world":
            # no metric: a caption fixes neither camera nor colours nor start positions, so there is no pixel truth
            predictions = run_text2world(pipe, clips, args)
            rows = [[clip["video"], pred] for clip, pred in zip(clips, predictions)]
            for clip in clips:
                print(f"{clip['scene']:>15}: {clip['caption']!r}")
        else:
            if name == "video2world":
                predictions, options = run_video2world(pipe, clips, args)
            else:
                predictions, options = run_ar_video2world(pipe, clips, args)
            scores = [score_predicted_frames(clip["video"], pred) for clip, pred in zip(clips, predictions)]
            summary[name] = {**summarize_scores(scores), **options}
            summary["copy_last"] = summarize_scores(baseline_scores)
            rows = [[clip["video"], last, pred] for clip, last, pred in zip(clips, baseline, predictions)]
            for clip, (p, s), (bp, bs) in zip(clips, scores, baseline_scores):
                print(f"{clip['scene']:>15}: {name} {p:.2f} dB / SSIM {s:.3f}, copy-last {bp:.2f} dB / SSIM {bs:.3f}")
        write_section_video(out, name, rows, DEMO_FPS, start, section_seconds)


# ---------------------------------------------------------------------------------------------------- post-trained


def post_trained_clips(name: str, pipe, count: int) -> list[dict]:
    """`count` held-out clips of the post-trained model's task at its saved size, frame count and frame rate (the
    post-training configs simulate seeds 10000+; these are HELD_OUT_SEED_OFFSET+)."""
    from .data.post_training_datasets import simulate_clips

    size, fps = int(pipe.config.default_height), float(pipe.config.default_fps)
    seeds = [HELD_OUT_SEED_OFFSET + index for index in range(count)]
    if name == "camera_control":
        return simulate_clips("camera", seeds, int(pipe.config.default_num_frames), size, size, fps, workers=1)
    if name == "action_conditioned":  # one window: num_action_frames actions -> as many frames after the first
        options = [{"policy": "scripted", "view": 0} for _ in seeds]
        return simulate_clips("push", seeds, int(pipe.transformer.config.num_action_frames) + 1, size, size, fps,
                              options, workers=1)
    options = [{"num_cameras": pipe.num_views} for _ in seeds]
    return simulate_clips("multiview", seeds, int(pipe.config.default_num_frames), size, size, fps, options, workers=1)


def run_post_trained(name: str, pipe, clips: list[dict], args) -> list[np.ndarray]:
    """Each clip continued from its first frame under its true condition (camera poses, actions, rig path); the
    prediction as uint8 [T, H, W, 3] (multi-view: [V, T, H, W, 3])."""
    from .data import frames_to_tensor
    from .data.post_training_datasets import view_caption

    size = int(pipe.config.default_height)
    predictions = []
    for clip in clips:
        common = dict(num_inference_steps=args.steps, generator=torch.Generator("cpu").manual_seed(args.seed),
                      output_type="np")
        truth = clip["video"]
        if name == "camera_control":
            output = pipe(video=frames_to_tensor(truth[:NUM_CONDITION_FRAMES]), prompt=clip["caption"],
                          cam_to_world=clip["cam_to_world"], intrinsics=clip["intrinsics"], **common).frames
            predictions.append(to_uint8_video(output, size))
        elif name == "action_conditioned":  # the action pipeline's default prompt: the actions say what happens
            output = pipe(video=frames_to_tensor(truth[:NUM_CONDITION_FRAMES]),
                          actions=torch.from_numpy(clip["actions"]), **common).frames
            predictions.append(to_uint8_video(output, size))
        else:  # multiview: one prompt per camera (its name + what is seen), every camera's first frame
            prompts = [view_caption(camera, clip["scene_caption"]) for camera in clip["camera_names"]]
            video = torch.cat([frames_to_tensor(view[:NUM_CONDITION_FRAMES]) for view in truth])  # [V, 3, 1, H, W]
            trajectory = torch.from_numpy(clip["trajectory"]) if pipe.transformer.config.get("trajectory_dim") else None
            output = pipe(prompt=prompts, video=video, trajectory=trajectory, **common).frames[0]
            predictions.append(np.stack([to_uint8_video(view[None], size) for view in output]))
    return predictions


def score_clip(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """`score_predicted_frames` of one clip; a multi-view clip [V, T, H, W, 3] is scored per camera and averaged
    (PSNR in dB: an exact camera, +inf, makes the clip's PSNR +inf, which `summarize_scores` leaves out)."""
    if truth.ndim == 4:
        return score_predicted_frames(truth, predicted)
    scores = [score_predicted_frames(view, pred) for view, pred in zip(truth, predicted)]
    return float(np.mean([p for p, _ in scores])), float(np.mean([s for _, s in scores]))


def side_by_side(video: np.ndarray) -> np.ndarray:
    """A multi-view clip [V, T, H, W, 3] -> one video [T, H, V*W, 3] (camera 0 on the left); others unchanged."""
    return np.concatenate(list(video), axis=2) if video.ndim == 5 else video


def run_post_trained_models(out: Path, args, summary: dict, section_seconds: dict) -> None:
    """The post-trained section: per folder that exists, `--clips` held-out clips of its task -> `<name>.mp4` and
    summary[name] = the model's scores, its copy-last baseline's, and what was simulated."""
    folders = {"camera_control": args.camera_control, "action_conditioned": args.action_conditioned,
               "multiview": args.multiview}
    for name, _, pipe, start in installed_world_models(folders, summary):
        clips = post_trained_clips(name, pipe, args.clips)
        predictions = run_post_trained(name, pipe, clips, args)
        truths = [clip["video"] for clip in clips]
        baseline = [copy_last_frame(truth) if truth.ndim == 4 else np.stack([copy_last_frame(view) for view in truth])
                    for truth in truths]
        scores = [score_clip(truth, pred) for truth, pred in zip(truths, predictions)]
        baseline_scores = [score_clip(truth, last) for truth, last in zip(truths, baseline)]
        fps = float(pipe.config.default_fps)
        summary[name] = {**summarize_scores(scores), "copy_last": summarize_scores(baseline_scores),
                         "clips": [f"seed{clip['seed']}" for clip in clips], "frames": int(truths[0].shape[-4]),
                         "size": int(truths[0].shape[-2]), "fps": fps}
        for clip, (p, s), (bp, bs) in zip(clips, scores, baseline_scores):
            print(f"{name:>18} seed{clip['seed']}: model {p:.2f} dB / SSIM {s:.3f}, copy-last {bp:.2f} dB / "
                  f"SSIM {bs:.3f}")
        rows = [[side_by_side(video) for video in row] for row in zip(truths, baseline, predictions)]
        write_section_video(out, name, rows, fps, start, section_seconds)


# ---------------------------------------------------------------------------------------------------- main


def describe_metrics(args) -> dict:
    """metrics.json's first entry: what each number is, so the file can be read without this source."""
    scored = f"frames {NUM_CONDITION_FRAMES}..{args.frames - 1}"
    given = "the first frame" if NUM_CONDITION_FRAMES == 1 else f"the first {NUM_CONDITION_FRAMES} frames"
    return {
        "what": f"`make demo`: the bundled nano models (pipelines/) on {args.clips} held-out physics-world clips "
                f"(seeds {HELD_OUT_SEED_OFFSET}+, never seen in training) of {args.frames} frames, "
                f"{args.size}x{args.size} pixels, {DEMO_FPS} fps, camera view 0",
        "higher_is_better": "every score: psnr_db and ssim",
        "psnr_db": "TokenBench PSNR in dB: one mean squared error over all scored frames of a clip (0-255 scale), "
                   "then the mean over clips",
        "ssim": "SSIM of each scored frame (7x7 window), mean over frames and clips; 1 = identical",
        "exact_clips": "clips predicted exactly (PSNR +inf, e.g. copy-last on a clip where nothing moves), left out "
                       "of the PSNR mean",
        ", ".join(TOKENIZER_COLUMNS[1:]): "the nano tokenizers' reconstruction (encode + decode) of every frame of "
                                          "each clip",
        "bilinear_baseline": "a codec that learns nothing, with CV4x8x8's budget of stored values: every 4th frame "
                             "shrunk bilinearly, then enlarged and held",
        "video2world, ar_video2world, ar_video2world_dv4x4x4": f"the world models, given {given} of each clip (and "
                                                               f"its caption, where the model reads text), generate "
                                                               f"the clip; scored on {scored}, the frames they "
                                                               "predict",
        "copy_last": f"the world models' baseline: every predicted frame repeats the last given frame (nothing "
                     f"moves); scored on {scored} like them. A world model has learned motion where it beats this",
        "text2world": "generated from the caption alone and not scored: a caption fixes neither camera nor colours "
                      "nor start positions, so there is no pixel truth",
        "camera_control, action_conditioned, multiview": "the post-trained world models on held-out clips of their "
            f"own task (seeds {HELD_OUT_SEED_OFFSET}+; the size, frame count and fps in each entry), given {given} "
            "and the clip's true condition: the camera's poses and intrinsics, the robot's actions (push task, "
            "scripted policy, view 0), the rig's path (every camera of the rig; scores averaged over cameras, panels "
            "side by side). Each entry holds its own copy_last baseline on the same clips; scored on the frames after "
            "the given one",
        "videos": {"tokenizers.mp4": " | ".join(TOKENIZER_COLUMNS),
                   **{f"{name}.mp4": " | ".join(columns) for name, columns in WORLD_MODEL_COLUMNS.items()},
                   "layout": "one clip per row, in the order of `clips`; labels drawn above each row"},
    }


def quiet_loading() -> None:
    """No per-component loading bars from diffusers / transformers in this script's output: the demo prints one line
    per result (the pipelines' sampling bars are off too, see `load_world_model`)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo")
    parser.add_argument("--frames", type=int, default=17, help="frames per clip: 1 + 4k (the 4x temporal tokenizers)")
    parser.add_argument("--size", type=int, default=64, help="frame height = width in pixels, a multiple of 8")
    parser.add_argument("--clips", type=positive_int, default=len(DEMO_CLIPS),
                        help=f"use the first N of the {len(DEMO_CLIPS)} demo clips")
    parser.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS,
                        help="sampling steps of the diffusion world models")
    parser.add_argument("--seed", type=int, default=0, help="generator seed of every world-model call")
    parser.add_argument("--skip-world-models", action="store_true", help="tokenizers only")
    parser.add_argument("--video2world", default=str(NANO_WORLD_MODELS["video2world"]), help="pipeline folder")
    parser.add_argument("--text2world", default=str(NANO_WORLD_MODELS["text2world"]), help="pipeline folder")
    parser.add_argument("--ar-video2world", default=str(NANO_WORLD_MODELS["ar_video2world"]), help="pipeline folder")
    parser.add_argument("--ar-video2world-dv4x4x4", default=str(NANO_WORLD_MODELS["ar_video2world_dv4x4x4"]),
                        help="pipeline folder")
    for name, folder in NANO_POST_TRAINED.items():
        parser.add_argument(f"--{name.replace('_', '-')}", default=str(folder),
                            help="post-trained pipeline folder (simulated at its own size, frames and fps)")
    parser.add_argument("--no-ar-diffusion-decoder", action="store_true",
                        help="decode the AR model's tokens with its DV tokenizer even when its folder defaults to its "
                        "diffusion decoder")
    args = parser.parse_args(argv)
    if args.frames < 5 or (args.frames - 1) % 4:
        parser.error(f"--frames must be 1 + 4k with k >= 1 (the tokenizers compress time 4x), got {args.frames}")
    if args.size < 8 or args.size % 8:
        parser.error(f"--size must be a multiple of 8 (the tokenizers compress space 8x), got {args.size}")
    if args.clips > len(DEMO_CLIPS):
        parser.error(f"--clips must be in [1, {len(DEMO_CLIPS)}], got {args.clips}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    quiet_loading()
    start = time.time()
    clips = simulate_clips(DEMO_CLIPS[: args.clips], args.frames, args.size)
    summary = {"about": describe_metrics(args), **run_tokenizers(clips, out)}
    section_seconds = {"tokenizers": round(time.time() - start, 1)}
    if not args.skip_world_models:
        run_world_models(clips, out, args, summary, section_seconds)
        run_post_trained_models(out, args, summary, section_seconds)
    summary["clips"] = [clip["name"] for clip in clips]
    summary["steps"] = args.steps
    summary["section_seconds"] = section_seconds
    summary["seconds"] = round(time.time() - start, 1)

    from .utils import atomic_path

    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    main()
