"""Cosmos nano: a Gradio Space for the bundled nano world models of cosmos-hf.

Tabs (each a `build_*_tab()` function, listed in `TABS`):
- Video2World: a held-out physics-world clip (scene, seed, camera view) or an uploaded clip; the nano Video2World
  model continues its first frame, shown next to the copy-last-frame baseline and, for simulated clips, the
  simulator's ground truth, with PSNR / SSIM of the predicted frames.
- Text2World: a prompt alone.
- AR Video2World: the nano autoregressive model decodes greedily, once token by token and once with Medusa heads;
  both give the same tokens, and the tab shows the measured speed-up.
- Tokenizers: the nano CV4x8x8 (continuous) and DV4x8x8 (discrete) tokenizers reconstruct a clip, with PSNR / SSIM.
- Push the object (when `cosmos-nano-action-conditioned` is installed): arrow buttons drive the push task's gripper;
  each press appends 4 Bridge-format actions and the action-conditioned model imagines the next 4 frames, next to the
  simulator's replay of the same actions, with PSNR per press and the seconds per predicted frame.
- Fly the camera (when `cosmos-nano-camera-control` is installed): joystick moves make a 16-move camera path through a
  still camera-task scene; the camera-control model renders it, next to the simulator's render along the same path.
- Multi-view rig (when `cosmos-nano-multiview` is installed): a held-out drive of the built-in world's camera rig; the
  multi-view model continues every camera's first frame along the rig's path, shown side by side next to the
  simulator's cameras and the copy-last-frame baseline, with PSNR / SSIM per camera.

The guardrail verdicts (prompt and output video) are shown under every generation; a blocked prompt, an upload that
is not a video or a clip that is too small or too large gives an error message naming the problem.

Pipelines are loaded on first use and cached, from `COSMOS_NANO_PIPELINES`, else `pipelines/` next to this file (a
deployed Space), else the repository's `pipelines/` folder. `@spaces.GPU` requests a GPU on Hugging Face ZeroGPU
hardware; without the `spaces` package it does nothing. Clips, scoring and pipeline loading are `make demo`'s
(`cosmos_hf.demo`), so the Space and the demo show the same protocol.

    python spaces/cosmos-nano/app.py            # or `make space`; http://127.0.0.1:7860
"""

import functools
import os
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls from the app itself

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from cosmos_hf import demo as cosmos_demo  # noqa: E402

try:  # Hugging Face ZeroGPU: a GPU is attached for the duration of each decorated call
    import spaces
except ImportError:  # locally: a no-op with the same spelling
    spaces = None


def gpu(fn):
    """`@spaces.GPU` when the `spaces` package is installed (ZeroGPU Spaces), else `fn` unchanged."""
    # run from the repository root, `import spaces` may also find the repo's spaces/ folder (a namespace package)
    zero_gpu = getattr(spaces, "GPU", None)
    return zero_gpu(fn) if zero_gpu is not None else fn


APP_DIR = Path(__file__).resolve().parent
REPO_ROOT = APP_DIR.parents[1]


def default_pipelines_dir() -> Path:
    """COSMOS_NANO_PIPELINES if set; else pipelines/ next to app.py (a deployed Space); else the repository's."""
    if os.environ.get("COSMOS_NANO_PIPELINES"):
        return Path(os.environ["COSMOS_NANO_PIPELINES"])
    return APP_DIR / "pipelines" if (APP_DIR / "pipelines").is_dir() else REPO_ROOT / "pipelines"


PIPELINES_DIR = default_pipelines_dir()
PIPELINE_FOLDERS = {
    "video2world": "cosmos-nano-video2world",
    "text2world": "cosmos-nano-text2world",
    "ar_video2world": "cosmos-nano-ar-video2world",
    # post-trained models: their tabs appear only when these folders exist (see `available_tabs`)
    "action": "cosmos-nano-action-conditioned",
    "camera": "cosmos-nano-camera-control",
    "multiview": "cosmos-nano-multiview",
}
POST_TRAINED_PIPELINE_CLASSES = {"action": "CosmosActionConditionedPipeline", "camera": "CosmosCameraControlPipeline",
                                 "multiview": "CosmosMultiViewPipeline"}
TOKENIZER_FOLDERS = {"CV4x8x8": "cosmos-nano-tokenizer-cv4x8x8", "DV4x8x8": "cosmos-nano-tokenizer-dv4x8x8"}

# What the nano models were trained on (training/configs/*nano*.yaml): 17 frames of 64x64 at 12 fps.
NUM_FRAMES, SIZE, FPS = 17, 64, cosmos_demo.DEMO_FPS
NUM_CONDITION_FRAMES = cosmos_demo.NUM_CONDITION_FRAMES  # the Video2World tabs continue the first frame
HELD_OUT_SEED_OFFSET = cosmos_demo.HELD_OUT_SEED_OFFSET  # `make demo`'s held-out seeds: never seen in training
DEFAULT_STEPS = cosmos_demo.DEFAULT_STEPS
MAX_STEPS = 50
MIN_UPLOAD_SIDE, MAX_UPLOAD_SIDE = SIZE, 4096
OUTPUT_DIR = Path(tempfile.gettempdir()) / "cosmos-nano-space"
OUTPUT_MAX_AGE_S = 3600


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------------------------------------- models


@functools.lru_cache(maxsize=None)
def load_pipeline(kind: str):
    """The bundled nano pipeline `kind` (a key of PIPELINE_FOLDERS), loaded once, progress bars off."""
    folder = PIPELINES_DIR / PIPELINE_FOLDERS[kind]
    if not (folder / "model_index.json").is_file():
        raise gr.Error(f"the {kind} pipeline is not installed: no model_index.json in {folder} "
                       "(set COSMOS_NANO_PIPELINES to the folder holding the nano pipelines)")
    if kind in POST_TRAINED_PIPELINE_CLASSES:
        pipe = load_post_trained_pipeline(folder, kind).to(device())
    else:
        pipe = cosmos_demo.load_world_model(folder, kind).to(device())
    if kind == "ar_video2world":
        # the first call pays one-time costs (allocations, kernel choice): pay them here, so that the tab's timed
        # greedy and Medusa runs compare like with like
        pipe(video=np.zeros((1, SIZE, SIZE, 3), np.uint8), use_medusa=True, output_type="np")
    return pipe


def load_post_trained_pipeline(folder: Path, kind: str):
    """An action-conditioned, camera-control or multi-view pipeline folder, checked to hold that pipeline class."""
    from cosmos_hf import pipelines

    pipe = pipelines.load_pipeline(folder, trust_remote_code=True)
    expected = getattr(pipelines, POST_TRAINED_PIPELINE_CLASSES[kind])
    if not isinstance(pipe, expected):
        raise gr.Error(f"{folder} holds a {type(pipe).__name__}, not a {expected.__name__}")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_installed(kind: str) -> bool:
    return (PIPELINES_DIR / PIPELINE_FOLDERS[kind] / "model_index.json").is_file()


@functools.lru_cache(maxsize=None)
def load_nano_tokenizer(name: str):
    from cosmos_hf.tokenizers import load_tokenizer

    folder = PIPELINES_DIR / TOKENIZER_FOLDERS[name]
    if not (folder / "config.json").is_file():
        raise gr.Error(f"the nano {name} tokenizer is not installed: no config.json in {folder}")
    return load_tokenizer(folder).eval().to(device())


def generator(seed):
    import torch

    if seed is None or int(seed) != seed or seed < 0:
        raise gr.Error(f"seed must be a whole number >= 0, got {seed}")
    return torch.Generator("cpu").manual_seed(int(seed))


def checked_steps(steps) -> int:
    """Sampling steps from the slider or the API, refused outside [1, MAX_STEPS] (an API call can send anything)."""
    if steps is None or int(steps) != steps or not 1 <= steps <= MAX_STEPS:
        raise gr.Error(f"sampling steps must be a whole number in [1, {MAX_STEPS}], got {steps}")
    return int(steps)


# ---------------------------------------------------------------------------------------------------- clips


def simulated_clip(scene: str, seed: int, view: int) -> dict:
    """A held-out physics-world clip: {"video": uint8 [17, 64, 64, 3], "caption", "name", "ground_truth": True}."""
    from cosmos_hf import sim

    if scene not in sim.SCENES:
        raise gr.Error(f"unknown scene {scene!r}: choose one of {', '.join(sim.SCENES)}")
    if view is None or int(view) != view or not 0 <= view < sim.NUM_VIEWS:
        raise gr.Error(f"camera view must be one of 0..{sim.NUM_VIEWS - 1}, got {view}")
    if seed is None or int(seed) != seed or not 0 <= seed < HELD_OUT_SEED_OFFSET:
        raise gr.Error(f"seed must be a whole number in [0, {HELD_OUT_SEED_OFFSET - 1}], got {seed}")
    record = sim.simulate(scene, seed=HELD_OUT_SEED_OFFSET + int(seed), num_frames=NUM_FRAMES, height=SIZE,
                          width=SIZE, fps=FPS, view=int(view))
    return {"video": np.asarray(record.video), "caption": str(record.caption or ""), "ground_truth": True,
            "name": f"{scene}, seed {HELD_OUT_SEED_OFFSET + int(seed)}, view {int(view)}"}


def uploaded_clip(path) -> dict:
    """An uploaded clip, centre-cropped to a square and resized to 64x64. Its first 17 frames serve as ground truth
    when it has that many; otherwise only its first frame is used."""
    import av
    import cv2

    from cosmos_hf.data import read_video

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise gr.Error(f"the upload {path.name} has no video stream: upload a video clip (mp4, webm, ...)")
            stream = container.streams.video[0]
            height, width = stream.codec_context.height, stream.codec_context.width
    except gr.Error:
        raise
    except Exception as err:  # av raises InvalidDataError and friends for non-videos
        raise gr.Error(f"the upload {path.name} is not a readable video ({type(err).__name__}): "
                       "upload a video clip (mp4, webm, ...)") from err
    if min(height, width) < MIN_UPLOAD_SIDE or max(height, width) > MAX_UPLOAD_SIDE:
        raise gr.Error(f"the uploaded clip is {width}x{height} pixels; its sides must be between {MIN_UPLOAD_SIDE} "
                       f"and {MAX_UPLOAD_SIDE} (it is centre-cropped and resized to {SIZE}x{SIZE})")
    try:
        frames, _ = read_video(path, max_frames=NUM_FRAMES)
    except ValueError as err:
        raise gr.Error(str(err)) from err
    side = min(frames.shape[1:3])
    top, left = (frames.shape[1] - side) // 2, (frames.shape[2] - side) // 2
    frames = np.stack([cv2.resize(np.ascontiguousarray(f[top:top + side, left:left + side]), (SIZE, SIZE),
                                  interpolation=cv2.INTER_AREA) for f in frames])
    return {"video": frames, "caption": "", "ground_truth": len(frames) == NUM_FRAMES,
            "name": f"upload {path.name} ({len(frames)} frames read)"}


def select_clip(scene, seed, view, upload) -> dict:
    return uploaded_clip(upload) if upload else simulated_clip(scene, seed, view)


def save_video(frames: np.ndarray, fps: float = FPS) -> str:
    """Write uint8 frames to a fresh mp4 for a gr.Video output (files older than an hour are removed)."""
    from cosmos_hf.data import write_video

    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in OUTPUT_DIR.glob("*.mp4"):
        if now - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
            old.unlink(missing_ok=True)
    path = OUTPUT_DIR / f"{uuid.uuid4().hex}.mp4"
    write_video(path, frames, fps=fps)
    return str(path)


# ---------------------------------------------------------------------------------------------------- guardrails


def check_prompt(pipe, prompt: str) -> str:
    """Run the pipeline's prompt guard; a blocked prompt stops here with the guard's reason. Returns a summary."""
    checker = getattr(pipe, "safety_checker", None)
    if checker is None:
        return "prompt: not checked (guardrails disabled)"
    verdict = checker.check_text(prompt)
    if not verdict.is_safe:
        raise gr.Error(f"Blocked by the guardrail ({verdict.guard}): {verdict.reason}", title="Prompt blocked")
    return f"prompt: passed ({', '.join(verdict.details.get('guards', [])) or verdict.guard})"


def video_verdict(pipe) -> str:
    """The pipeline's verdict on the video it just returned (the post-guard ran inside the pipeline)."""
    checker = getattr(pipe, "safety_checker", None)
    verdict = getattr(checker, "last_verdict", None)
    if checker is None or verdict is None:
        return "video: not checked (guardrails disabled)"
    faces = sum(verdict.details.get("faces_per_frame", []))
    guards = ", ".join(verdict.details.get("guards", [])) or verdict.guard
    return f"video: passed ({guards}; {faces} face region(s) pixelated)"


def guardrail_markdown(*lines: str) -> str:
    return "**Guardrails** — " + " · ".join(lines)


def user_errors(fn):
    """Bad input that the library reports as ValueError / FileNotFoundError becomes a visible gr.Error message."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError) as err:
            raise gr.Error(str(err)) from err

    return wrapper


# ---------------------------------------------------------------------------------------------------- scoring


def format_psnr(value: float) -> str:
    """PSNR in dB for a report; identical videos score inf."""
    return "exact (inf)" if not np.isfinite(value) else f"{value:.2f}"


def score_table(truth: np.ndarray | None, predictions: dict) -> str:
    """Markdown: PSNR / SSIM of each prediction's predicted frames (after the conditioning frame) against the truth."""
    if truth is None:
        return (f"No ground truth: the uploaded clip has fewer than {NUM_FRAMES} frames, so only its first frame "
                "was used.")
    rows = ["| prediction | PSNR (dB) | SSIM |", "|---|---|---|"]
    for name, video in predictions.items():
        psnr, ssim = cosmos_demo.score_predicted_frames(truth, video)
        rows.append(f"| {name} | {format_psnr(psnr)} | {ssim:.3f} |")
    return ("\n".join(rows) + f"\n\nScored on frames {NUM_CONDITION_FRAMES}-{NUM_FRAMES - 1} (frame 0 is the "
            "model's input), TokenBench PSNR and mean per-frame SSIM; higher is better. Copy-last-frame repeats the "
            "input frame: a model has to beat it to show it learned motion.")


def pipeline_frames(output) -> np.ndarray:
    """`output_type="np"` frames [1, T, H, W, 3] in [0, 1] -> uint8 [T, 64, 64, 3]."""
    return cosmos_demo.to_uint8_video(output, SIZE)


def copy_last_frame(video: np.ndarray, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """The baseline, `num_frames` long (default 17) whatever the length of the (uploaded) clip."""
    from cosmos_hf.evaluation.predictors import CopyLastFramePredictor

    return CopyLastFramePredictor()(video[:NUM_CONDITION_FRAMES], "", num_frames)


def step_progress(progress, steps: int, desc: str):
    """A diffusers `callback_on_step_end` that moves the Gradio progress bar."""

    def callback(pipe, step, timestep, callback_kwargs):
        progress((step + 1) / steps, desc=f"{desc}: step {step + 1}/{steps}")
        return callback_kwargs

    return callback


# ---------------------------------------------------------------------------------------------------- actions


@gpu
@user_errors
def video2world(scene, seed, view, upload, prompt, steps, progress=gr.Progress()):
    """Continue a clip's first frame with the nano Video2World model.

    Returns (ground truth video or None, copy-last-frame video, model video, scores markdown, guardrail markdown).
    """
    from cosmos_hf.data import frames_to_tensor

    steps = checked_steps(steps)
    progress(0, desc="Preparing the clip")
    clip = select_clip(scene, seed, view, upload)
    prompt = (prompt or "").strip() or clip["caption"]
    if not prompt:  # an upload brings no caption; the guard's "prompt is empty" read as if the clip were unsafe
        raise gr.Error("write a prompt for an uploaded clip: Video2World needs a caption (simulator clips bring "
                       "their own)")
    progress(0, desc="Loading the nano Video2World pipeline")
    pipe = load_pipeline("video2world")
    prompt_check = check_prompt(pipe, prompt)
    video = clip["video"]
    output = pipe(video=frames_to_tensor(video[:NUM_CONDITION_FRAMES]), prompt=prompt, height=SIZE, width=SIZE,
                  num_frames=NUM_FRAMES, num_inference_steps=steps, generator=generator(seed), output_type="np",
                  callback_on_step_end=step_progress(progress, steps, "Denoising")).frames
    prediction = pipeline_frames(output)
    baseline = copy_last_frame(video)
    truth = video if clip["ground_truth"] else None
    scores = score_table(truth, {"nano Video2World": prediction, "copy-last-frame": baseline})
    return (save_video(truth) if truth is not None else None, save_video(baseline), save_video(prediction),
            f"**{clip['name']}** — prompt: _{prompt or '(empty)'}_\n\n{scores}",
            guardrail_markdown(prompt_check, video_verdict(pipe)))


@gpu
@user_errors
def text2world(prompt, seed, steps, progress=gr.Progress()):
    """Generate a clip from a prompt alone. Returns (video, guardrail markdown)."""
    prompt = (prompt or "").strip()
    if not prompt:
        raise gr.Error("write a prompt: Text2World generates from the text alone")
    steps = checked_steps(steps)
    seeded = generator(seed)
    progress(0, desc="Loading the nano Text2World pipeline")
    pipe = load_pipeline("text2world")
    prompt_check = check_prompt(pipe, prompt)
    output = pipe(prompt=prompt, height=SIZE, width=SIZE, num_frames=NUM_FRAMES, num_inference_steps=steps,
                  generator=seeded, output_type="np",
                  callback_on_step_end=step_progress(progress, steps, "Denoising")).frames
    return save_video(pipeline_frames(output)), guardrail_markdown(prompt_check, video_verdict(pipe))


@gpu
@user_errors
def ar_video2world(scene, seed, view, upload, progress=gr.Progress()):
    """Greedy AR continuation, decoded token by token and with Medusa heads (same tokens), both timed.

    Returns (ground truth or None, copy-last-frame, AR video, speed markdown, guardrail markdown).
    """
    from cosmos_hf.data import frames_to_tensor

    progress(0, desc="Preparing the clip")
    clip = select_clip(scene, seed, view, upload)
    progress(0.05, desc="Loading the nano AR Video2World pipeline")
    pipe = load_pipeline("ar_video2world")
    condition = frames_to_tensor(clip["video"][:NUM_CONDITION_FRAMES])
    runs = {}
    for fraction, (name, use_medusa) in zip((0.1, 0.55), (("greedy", False), ("Medusa", True))):
        how = "Medusa heads + previous-frame candidates" if use_medusa else "one token per forward"
        progress(fraction, desc=f"Decoding {name} ({how})")
        start = time.perf_counter()
        output = pipe(video=condition, use_medusa=use_medusa, output_type="np").frames
        runs[name] = (time.perf_counter() - start, pipeline_frames(output))
    (greedy_s, greedy_video), (medusa_s, prediction) = runs["greedy"], runs["Medusa"]
    grid = tuple(pipe.ar_model.config.latent_shape)
    new_tokens = (grid[0] - 1) * grid[1] * grid[2]  # the first latent frame is the prompt
    same = bool(np.array_equal(greedy_video, prediction))  # same tokens -> the same decoded frames
    speed = "\n".join([
        "| decoding (tokens + DV decode + guardrail) | time (s) | new tokens/s |", "|---|---|---|",
        f"| greedy, one token per forward | {greedy_s:.2f} | {new_tokens / greedy_s:.0f} |",
        f"| greedy with Medusa (heads + previous-frame candidates) | {medusa_s:.2f} | {new_tokens / medusa_s:.0f} |",
        "",
        f"**Medusa speed-up: {greedy_s / medusa_s:.2f}x** on {new_tokens} new tokens ({grid[0]}x{grid[1]}x{grid[2]} "
        f"grid), measured now on this machine; identical video to plain greedy: {'yes' if same else 'NO'}.",
    ])
    baseline = copy_last_frame(clip["video"])
    truth = clip["video"] if clip["ground_truth"] else None
    scores = score_table(truth, {"nano AR Video2World": prediction, "copy-last-frame": baseline})
    return (save_video(truth) if truth is not None else None, save_video(baseline), save_video(prediction),
            f"**{clip['name']}**\n\n{speed}\n\n{scores}", guardrail_markdown(video_verdict(pipe)))


@gpu
@user_errors
def tokenizer_round_trip(scene, seed, view, upload, progress=gr.Progress()):
    """Reconstruct a clip with the nano CV and DV tokenizers. Returns (input, CV, DV videos, scores markdown)."""
    import torch

    from cosmos_hf.data import frames_to_tensor, tensor_to_frames
    from cosmos_hf.evaluation.video_metrics import psnr, ssim_per_frame

    progress(0, desc="Preparing the clip")
    clip = select_clip(scene, seed, view, upload)
    video = clip["video"]
    if len(video) != NUM_FRAMES:
        raise gr.Error(f"the tokenizers take {NUM_FRAMES} frames (1 + 4k); the upload has {len(video)}")
    outputs, rows = {}, ["| tokenizer | latent | PSNR (dB) | SSIM |", "|---|---|---|---|"]
    for fraction, name in zip((0.2, 0.6), TOKENIZER_FOLDERS):
        progress(fraction, desc=f"{name}: encode + decode")
        model = load_nano_tokenizer(name)
        with torch.no_grad():
            x = frames_to_tensor(video).to(device())
            if hasattr(model, "tokenize"):
                codes = model.tokenize(x)
                recon, latent = model.detokenize(codes), f"{tuple(codes.shape[1:])} token ids"
            else:
                z = model.encode(x).latent_dist.mode()
                recon, latent = model.decode(z).sample, f"{tuple(z.shape[1:])} values"
        outputs[name] = tensor_to_frames(recon.cpu())
        rows.append(f"| {name} | {latent} | {psnr(video, outputs[name]):.2f} | "
                    f"{np.mean(ssim_per_frame(video, outputs[name])):.3f} |")
    table = "\n".join(rows) + "\n\nAll 17 frames scored against the input; higher is better."
    return (save_video(video), save_video(outputs["CV4x8x8"]), save_video(outputs["DV4x8x8"]),
            f"**{clip['name']}**\n\n{table}")


# ---------------------------------------------------------------------------------------------------- post-trained

# The push task (cosmos_hf.sim.push) as the action model is trained on it (configs/diffusion_nano_action.yaml):
# 8 fps, view 0 (it looks along +y: +x is screen-right, +y is away from the camera).
PUSH_FPS, PUSH_VIEW = 8, 0
PUSH_FRAMES_PER_PRESS = 4  # each button press appends this many actions, and the model predicts as many frames
PUSH_STEP_M = 0.02  # metres the gripper moves per frame (2 cm at 8 fps = 0.16 m/s, under the task's 0.30 m/s)
MAX_PUSH_FRAMES = 1 + 16 * PUSH_FRAMES_PER_PRESS  # the simulator replays the whole history each press: keep it short
PUSH_MOVES = {  # world-frame displacement per frame (view 0's screen directions); "gripper" toggles open / closed
    "left": (-1, 0, 0), "right": (1, 0, 0), "away": (0, 1, 0), "toward": (0, -1, 0), "lower": (0, 0, -1),
    "lift": (0, 0, 1), "hold": (0, 0, 0), "gripper": (0, 0, 0),
}
PUSH_BUTTONS = {"left": "← left", "right": "→ right", "away": "↑ away", "toward": "↓ toward",
                "lower": "⤓ lower", "lift": "⤒ lift", "gripper": "open / close gripper", "hold": "hold"}
ACTION_DEFAULT_STEPS = 8  # the action model is meant to be interactive: its slider starts at most here
# The camera task (cosmos_hf.sim.camera_task) as the camera model was trained on it: 12 fps, 17-frame windows.
CAMERA_FPS = 12
CAMERA_PATH_MOVES = NUM_FRAMES - 1  # one joystick move per frame step


def push_actions(move: str, ee_state: np.ndarray) -> np.ndarray:
    """PUSH_FRAMES_PER_PRESS Bridge-format actions (cosmos_hf.sim.push): `move`'s world displacement expressed in the
    end-effector frame (action xyz = R_t^T (p_{t+1} - p_t)), no turn, gripper absolute (toggled by "gripper")."""
    from cosmos_hf.sim.world import euler_to_matrix

    if move not in PUSH_MOVES:
        raise gr.Error(f"unknown move {move!r}: choose one of {', '.join(PUSH_MOVES)}")
    gripper = 1.0 - float(ee_state[6] > 0.5) if move == "gripper" else float(ee_state[6])
    # the rotation is unchanged by these actions, so every action of the chunk uses the current one
    local = euler_to_matrix(ee_state[3:6]).T @ (PUSH_STEP_M * np.asarray(PUSH_MOVES[move], np.float64))
    action = np.concatenate([local, np.zeros(3), [gripper]])
    return np.repeat(action[None], PUSH_FRAMES_PER_PRESS, 0)


def simulate_push_replay(seed: int, actions: np.ndarray):
    """The simulator's result of `actions` from the held-out scene `seed`: (uint8 video [N+1, 64, 64, 3], realised
    actions [N, 7] after workspace clipping, end-effector state after the last action)."""
    from cosmos_hf import sim

    actions = np.asarray(actions, np.float64).reshape(-1, 7)
    # no actions yet: the start frame, from a one-step replay (the simulator records at least 2 frames)
    replayed = actions if len(actions) else np.array([[0, 0, 0, 0, 0, 0, 1.0]])
    record = sim.simulate_push(seed=HELD_OUT_SEED_OFFSET + seed, num_frames=len(replayed) + 1, height=SIZE,
                               width=SIZE, fps=PUSH_FPS, view=PUSH_VIEW, actions=replayed)
    num_frames = len(actions) + 1
    return (np.asarray(record.video[:num_frames]), np.asarray(record.extras["actions"])[:len(actions)],
            np.asarray(record.extras["ee_states"][num_frames - 1]))


def checked_held_out_seed(seed) -> int:
    if seed is None or int(seed) != seed or not 0 <= seed < HELD_OUT_SEED_OFFSET:
        raise gr.Error(f"seed must be a whole number in [0, {HELD_OUT_SEED_OFFSET - 1}], got {seed}")
    return int(seed)


def push_start(seed: int) -> dict:
    """A fresh push session: the held-out scene's first frame, no actions yet."""
    first, _, ee_state = simulate_push_replay(seed, np.zeros((0, 7)))
    return {"seed": seed, "imagined": first, "truth": first, "actions": np.zeros((0, 7)), "ee_state": ee_state,
            "presses": []}


def push_report(session: dict) -> str:
    """Markdown: the scene, then PSNR of each press's predicted frames against the simulator and the model's speed."""
    lines = [f"**Push task, held-out seed {HELD_OUT_SEED_OFFSET + session['seed']}** (view {PUSH_VIEW}, {PUSH_FPS} "
             f"fps): {len(session['imagined'])} frames, {len(session['actions'])} actions."]
    if not session["presses"]:
        return lines[0] + " Press a move: the model imagines the next frames under it."
    lines += ["", "| press | move | frames | PSNR vs simulator (dB) | seconds per predicted frame | sampler steps |",
              "|---|---|---|---|---|---|"]
    for k, press in enumerate(session["presses"], 1):
        psnr = format_psnr(press["psnr"])
        lines.append(f"| {k} | {press['move']} | {press['frames']} | {psnr} | {press['seconds_per_frame']:.3f} | "
                     f"{press['steps']} |")
    lines += ["", "PSNR (TokenBench: one MSE over the press's new frames) of the imagined frames against the "
                  "simulator's replay of the same actions; higher is better. Measured now, on this machine."]
    return "\n".join(lines)


@gpu
@user_errors
def push_reset(seed):
    """Start over from the held-out scene `seed`. Returns (session, imagined video, simulator video, report)."""
    session = push_start(checked_held_out_seed(seed))
    return (session, save_video(session["imagined"], PUSH_FPS), save_video(session["truth"], PUSH_FPS),
            push_report(session))


@gpu
@user_errors
def push_step(seed, move, steps, session=None, progress=gr.Progress()):
    """Apply one press: PUSH_FRAMES_PER_PRESS actions of `move`; the action model predicts as many frames from the
    frames so far, the simulator replays all actions. Returns (session, imagined video, simulator video, report)."""
    import torch

    from cosmos_hf.data import frames_to_tensor
    from cosmos_hf.evaluation.video_metrics import psnr

    seed, steps = checked_held_out_seed(seed), checked_steps(steps)
    if move not in PUSH_MOVES:
        raise gr.Error(f"unknown move {move!r}: choose one of {', '.join(PUSH_MOVES)}")
    if not session or session.get("seed") != seed:  # first press, or the seed was changed: start from that scene
        session = push_start(seed)
    if len(session["imagined"]) + PUSH_FRAMES_PER_PRESS > MAX_PUSH_FRAMES:
        raise gr.Error(f"this rollout has reached {MAX_PUSH_FRAMES} frames, the most the Space keeps: press Reset "
                       "to start over")
    progress(0, desc="Simulating the actions (ground truth)")
    requested = np.concatenate([session["actions"], push_actions(move, session["ee_state"])])
    truth, actions, ee_state = simulate_push_replay(seed, requested)  # actions: as executed (workspace clipping)
    progress(0.2, desc="Loading the nano action-conditioned pipeline")
    pipe = load_pipeline("action")
    # condition on the newest frames: 5 once there are 5 (two latent frames, as the model is trained with), else 1;
    # the actions start at the first conditioning frame (action t takes frame t to t + 1)
    frames = session["imagined"]
    num_cond = 5 if len(frames) >= 5 else 1
    chunk_actions = actions[len(frames) - num_cond:]
    start = time.perf_counter()
    # seeded by the press's position: the same presses give the same rollout
    output = pipe(video=frames_to_tensor(frames[-num_cond:]), actions=torch.as_tensor(chunk_actions).float(),
                  num_inference_steps=steps, generator=generator(len(frames)), output_type="np",
                  callback_on_step_end=step_progress(progress, steps, "Denoising")).frames
    seconds = time.perf_counter() - start
    new_frames = pipeline_frames(output)[num_cond:]
    imagined = np.concatenate([frames, new_frames])
    press = {"move": move, "frames": f"{len(frames)}-{len(imagined) - 1}", "steps": steps,
             "psnr": psnr(truth[len(frames):], new_frames), "seconds_per_frame": seconds / len(new_frames)}
    session = {"seed": seed, "imagined": imagined, "truth": truth, "actions": actions, "ee_state": ee_state,
               "presses": [*session["presses"], press]}
    return (session, save_video(imagined, PUSH_FPS), save_video(truth, PUSH_FPS),
            push_report(session) + "\n\n" + guardrail_markdown(video_verdict(pipe)))


def camera_scene(seed: int):
    """The held-out camera-task scene `seed` as `simulate_camera` films it: its record (first frame, pose, K)."""
    from cosmos_hf import sim

    return sim.simulate_camera(seed=HELD_OUT_SEED_OFFSET + seed, num_frames=NUM_FRAMES, height=SIZE, width=SIZE,
                               fps=CAMERA_FPS)


def render_camera_scene(seed: int, cam_to_world, intrinsics) -> np.ndarray:
    """The simulator's render of the held-out camera-task scene `seed` from any poses [T, 4, 4] (uint8 frames).

    `simulate_camera` films along its own paths only, so this rebuilds its scene from the same random draws (floor,
    lighting, path kind and fov, then the objects) and renders the given poses; a test checks that it reproduces
    `simulate_camera`'s frames for its own path.
    """
    from cosmos_hf.sim import camera_task
    from cosmos_hf.sim.world import FLOOR_COLORS, Lighting, SimWorld

    rng = np.random.default_rng(HELD_OUT_SEED_OFFSET + seed)
    floor = list(FLOOR_COLORS)[int(rng.integers(0, len(FLOOR_COLORS)))]
    lighting = Lighting.random(rng)
    rng.integers(0, len(camera_task.TRAJECTORIES))  # the path kind simulate_camera draws next
    rng.uniform(40, 60)  # and the field of view
    with SimWorld(floor_color=floor) as world:
        camera_task._build_static_scene(world, rng)
        return np.stack([world.render(np.asarray(pose, np.float64), np.asarray(intrinsics, np.float64), SIZE, SIZE,
                                      lighting)[0] for pose in cam_to_world])


def parse_camera_moves(text) -> list[str]:
    """'forward, forward turn_left' -> 16 moves (a shorter path holds still at its end); checked by the library."""
    from cosmos_hf.diffusion.camera_control import JOYSTICK_MOVES

    moves = [move for move in str(text or "").replace(",", " ").split() if move]
    if not moves:
        raise gr.Error(f"the camera path is empty: give 1 to {CAMERA_PATH_MOVES} joystick moves, e.g. "
                       f"'forward, turn_left' (moves: {', '.join(JOYSTICK_MOVES)})")
    if len(moves) > CAMERA_PATH_MOVES:
        raise gr.Error(f"the camera path has {len(moves)} moves; at most {CAMERA_PATH_MOVES} (one per frame step of "
                       f"the {NUM_FRAMES}-frame video)")
    unknown = sorted({move for move in moves if move not in JOYSTICK_MOVES})
    if unknown:
        raise gr.Error(f"unknown joystick move(s) {', '.join(map(repr, unknown))}: choose from "
                       f"{', '.join(JOYSTICK_MOVES)}")
    return moves + ["stay"] * (CAMERA_PATH_MOVES - len(moves))


@gpu
@user_errors
def camera_fly(seed, moves_text, steps, progress=gr.Progress()):
    """Render the camera-control model's video along a joystick path from a held-out scene's first frame, and the
    simulator's render along the same poses. Returns (model video, simulator video, report markdown)."""
    import torch

    from cosmos_hf.data import frames_to_tensor
    from cosmos_hf.diffusion.camera_control import joystick_trajectory
    from cosmos_hf.evaluation.video_metrics import psnr

    seed, steps = checked_held_out_seed(seed), checked_steps(steps)
    moves = parse_camera_moves(moves_text)
    progress(0, desc="Preparing the scene")
    scene = camera_scene(seed)
    poses = joystick_trajectory(moves, NUM_FRAMES, start_cam_to_world=scene.cam_to_world[0])
    truth = render_camera_scene(seed, poses.numpy(), scene.intrinsics)
    # the scene's caption names the objects; its camera motion is replaced by the joystick's
    objects = str(scene.caption).partition("a still scene of ")[2]
    prompt = f"The camera moves through a still scene of {objects}" if objects else str(scene.caption)
    progress(0.1, desc="Loading the nano camera-control pipeline")
    pipe = load_pipeline("camera")
    prompt_check = check_prompt(pipe, prompt)
    start = time.perf_counter()
    output = pipe(video=frames_to_tensor(scene.video[:NUM_CONDITION_FRAMES]), prompt=prompt,
                  cam_to_world=poses.float(), intrinsics=torch.as_tensor(np.asarray(scene.intrinsics)).float(),
                  height=SIZE, width=SIZE, num_frames=NUM_FRAMES, num_inference_steps=steps, generator=generator(seed),
                  output_type="np", callback_on_step_end=step_progress(progress, steps, "Denoising")).frames
    seconds = time.perf_counter() - start
    prediction = pipeline_frames(output)
    score = psnr(truth[NUM_CONDITION_FRAMES:], prediction[NUM_CONDITION_FRAMES:])
    report = (f"**Camera task, held-out seed {HELD_OUT_SEED_OFFSET + seed}** — path: {', '.join(moves)}\n\n"
              f"PSNR of frames {NUM_CONDITION_FRAMES}-{NUM_FRAMES - 1} against the simulator's render along the same "
              f"poses: {format_psnr(score)} dB (higher is better); "
              f"{seconds:.2f} s for {NUM_FRAMES - NUM_CONDITION_FRAMES} frames at {steps} sampler steps, measured "
              f"now. Moves are in the camera's frame: 0.1 m per step, turns 5 degrees.")
    return (save_video(prediction, CAMERA_FPS), save_video(truth, CAMERA_FPS), report + "\n\n" +
            guardrail_markdown(prompt_check, video_verdict(pipe)))



@functools.lru_cache(maxsize=8)
def multiview_clip(seed: int, num_views: int, num_frames: int, fps: float) -> dict:
    """The held-out rig drive `seed` as the multi-view model's training clips were made (`MultiViewClips`): frames
    [V, T, 64, 64, 3], the rig's path in its first frame [T, 3] (metres), camera names, and the caption of what is
    seen (the path, not the caption, says how the rig moves)."""
    from cosmos_hf.data.post_training_datasets import simulate_clips

    return simulate_clips("multiview", [HELD_OUT_SEED_OFFSET + seed], num_frames, SIZE, SIZE, fps,
                          [{"num_cameras": num_views}], workers=1)[0]


@gpu
@user_errors
def multiview_drive(seed, steps, progress=gr.Progress()):
    """Continue every camera's first frame of a held-out rig drive with the multi-view model, along the rig's path.
    Returns (model video, simulator video, copy-last video, report markdown), each video the cameras side by side."""
    import torch

    from cosmos_hf.data import frames_to_tensor
    from cosmos_hf.data.post_training_datasets import view_caption

    seed, steps = checked_held_out_seed(seed), checked_steps(steps)
    progress(0, desc="Loading the nano multi-view pipeline")
    pipe = load_pipeline("multiview")
    num_views, num_frames = int(pipe.transformer.config.num_views), int(pipe.config.default_num_frames)
    fps = float(pipe.config.default_fps)
    progress(0.05, desc="Simulating the rig's drive")
    clip = multiview_clip(seed, num_views, num_frames, fps)
    prompt_check = check_prompt(pipe, clip["scene_caption"])
    prompts = [view_caption(name, clip["scene_caption"]) for name in clip["camera_names"]]
    truth = clip["video"]
    video = torch.cat([frames_to_tensor(frames[:NUM_CONDITION_FRAMES]) for frames in truth])  # [V, 3, 1, H, W]
    start = time.perf_counter()
    output = pipe(prompt=prompts, video=video, trajectory=torch.from_numpy(clip["trajectory"]),
                  num_inference_steps=steps, generator=generator(seed), output_type="np",
                  callback_on_step_end=step_progress(progress, steps, "Denoising all cameras")).frames[0]
    seconds = time.perf_counter() - start
    prediction = np.stack([cosmos_demo.to_uint8_video(view[None], SIZE) for view in output])
    copy_last = np.stack([copy_last_frame(view, num_frames) for view in truth])
    rows = ["| camera | model PSNR (dB) | model SSIM | copy-last PSNR (dB) | copy-last SSIM |", "|---|---|---|---|---|"]
    for name, true_view, predicted, copied in zip(clip["camera_names"], truth, prediction, copy_last):
        scores = [cosmos_demo.score_predicted_frames(true_view, video) for video in (predicted, copied)]
        rows.append(f"| {name.replace('_', ' ')} | " + " | ".join(
            f"{format_psnr(p)} | {s:.3f}" for p, s in scores) + " |")
    report = (f"**Multi-view rig, held-out seed {HELD_OUT_SEED_OFFSET + seed}** — {num_views} cameras "
              f"(left to right: {', '.join(name.replace('_', ' ') for name in clip['camera_names'])}), "
              f"{num_frames} frames at {fps:g} fps; prompt per camera: \"{prompts[0]}\" (and its camera's name)."
              f"\n\n" + "\n".join(rows) + f"\n\nScored on frames {NUM_CONDITION_FRAMES}-{num_frames - 1} of each "
              f"camera; {seconds:.2f} s for all cameras at {steps} sampler steps, measured now.")
    tiled = [save_video(cosmos_demo.side_by_side(video), fps) for video in (prediction, truth, copy_last)]
    return (*tiled, report + "\n\n" + guardrail_markdown(prompt_check, video_verdict(pipe)))



# ---------------------------------------------------------------------------------------------------- the UI


def clip_inputs(prefix: str):
    """Scene / seed / view pickers and an optional upload (which takes precedence when given)."""
    from cosmos_hf import sim

    with gr.Row():
        scene = gr.Dropdown(list(sim.SCENES), value="dominoes", label="Physics scene", elem_id=f"{prefix}-scene")
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=HELD_OUT_SEED_OFFSET - 1, label="Seed (held out)",
                         elem_id=f"{prefix}-seed")
        view = gr.Dropdown(list(range(sim.NUM_VIEWS)), value=0, label="Camera view", elem_id=f"{prefix}-view")
        upload = gr.Video(sources=["upload"], label="...or upload a clip (optional)", elem_id=f"{prefix}-upload")
    return scene, seed, view, upload


def comparison_videos(prefix: str, model_label: str):
    with gr.Row():
        truth = gr.Video(label="Ground truth (simulator)", elem_id=f"{prefix}-truth", interactive=False, loop=True)
        baseline = gr.Video(label="Copy-last-frame baseline", elem_id=f"{prefix}-copy-last", interactive=False,
                            loop=True)
        prediction = gr.Video(label=model_label, elem_id=f"{prefix}-prediction", interactive=False, loop=True,
                              autoplay=True)
    return truth, baseline, prediction


def build_video2world_tab(default_steps: int):
    gr.Markdown("The nano Video2World model (2.35M parameters) sees the **first frame** and the caption and "
                "generates the next 16 frames (64x64, 12 fps).")
    scene, seed, view, upload = clip_inputs("v2w")
    with gr.Row():
        prompt = gr.Textbox(label="Prompt (empty: the simulated scene's caption)", elem_id="v2w-prompt", scale=3)
        steps = gr.Slider(1, MAX_STEPS, value=default_steps, step=1, label="Sampling steps", elem_id="v2w-steps")
    button = gr.Button("Generate", variant="primary", elem_id="v2w-generate")
    truth, baseline, prediction = comparison_videos("v2w", "Nano Video2World")
    scores = gr.Markdown(elem_id="v2w-scores")
    guard = gr.Markdown(elem_id="v2w-guardrail")
    button.click(video2world, [scene, seed, view, upload, prompt, steps], [truth, baseline, prediction, scores, guard],
                 api_name="video2world")


def build_text2world_tab(default_steps: int):
    gr.Markdown("The nano Text2World model generates 17 frames at 64x64 from a caption alone (it was trained on "
                "the physics world's captions from camera view 0).")
    prompt = gr.Textbox(label="Prompt", elem_id="t2w-prompt",
                        value="A row of four orange and green dominoes on a beige floor: the first is pushed and "
                              "all of them fall in turn.")
    with gr.Row():
        seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="t2w-seed")
        steps = gr.Slider(1, MAX_STEPS, value=default_steps, step=1, label="Sampling steps", elem_id="t2w-steps")
    button = gr.Button("Generate", variant="primary", elem_id="t2w-generate")
    video = gr.Video(label="Nano Text2World", elem_id="t2w-video", interactive=False, loop=True, autoplay=True)
    guard = gr.Markdown(elem_id="t2w-guardrail")
    button.click(text2world, [prompt, seed, steps], [video, guard], api_name="text2world")


def build_ar_video2world_tab():
    gr.Markdown("The nano autoregressive model continues the first frame's discrete tokens (DV4x8x8) greedily. "
                "It is decoded twice, one token per forward and with Medusa speculative heads: the tokens are the "
                "same, the time is not.")
    scene, seed, view, upload = clip_inputs("ar")
    button = gr.Button("Generate", variant="primary", elem_id="ar-generate")
    truth, baseline, prediction = comparison_videos("ar", "Nano AR Video2World (greedy = Medusa)")
    scores = gr.Markdown(elem_id="ar-scores")
    guard = gr.Markdown(elem_id="ar-guardrail")
    button.click(ar_video2world, [scene, seed, view, upload], [truth, baseline, prediction, scores, guard],
                 api_name="ar_video2world")


def build_tokenizer_tab():
    gr.Markdown("The nano video tokenizers compress 4x in time and 8x8 in space: CV4x8x8 to 16 continuous "
                "channels, DV4x8x8 to one of 1,000 FSQ codes per 4x8x8 block.")
    scene, seed, view, upload = clip_inputs("tok")
    button = gr.Button("Reconstruct", variant="primary", elem_id="tok-generate")
    with gr.Row():
        original = gr.Video(label="Input", elem_id="tok-input", interactive=False, loop=True)
        cv = gr.Video(label="CV4x8x8 (continuous)", elem_id="tok-cv", interactive=False, loop=True)
        dv = gr.Video(label="DV4x8x8 (discrete)", elem_id="tok-dv", interactive=False, loop=True)
    scores = gr.Markdown(elem_id="tok-scores")
    button.click(tokenizer_round_trip, [scene, seed, view, upload], [original, cv, dv, scores],
                 api_name="tokenizers")


def build_action_tab(default_steps: int):
    gr.Markdown(f"The nano action-conditioned model continues the push task under the gripper moves you press. Each "
                f"press appends {PUSH_FRAMES_PER_PRESS} actions ({PUSH_STEP_M * 100:.0f} cm per frame in that "
                f"direction, Bridge format) and the model imagines the next {PUSH_FRAMES_PER_PRESS} frames from the "
                f"frames so far; the simulator replays the same actions beside it. Directions are as seen from this "
                f"camera; lower the gripper to push an object.")
    session = gr.State(None)
    with gr.Row():
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=HELD_OUT_SEED_OFFSET - 1,
                         label="Scene seed (held out)", elem_id="push-seed")
        steps = gr.Slider(1, MAX_STEPS, value=min(default_steps, ACTION_DEFAULT_STEPS), step=1, label="Sampling steps",
                          elem_id="push-steps")
        reset = gr.Button("Reset", elem_id="push-reset")
    with gr.Row():
        buttons = {move: gr.Button(label, elem_id=f"push-{move}", min_width=80) for move, label in PUSH_BUTTONS.items()}
    with gr.Row():
        imagined = gr.Video(label="Imagined (nano action-conditioned)", elem_id="push-imagined", interactive=False,
                            loop=True, autoplay=True)
        truth = gr.Video(label="Simulator (same actions)", elem_id="push-truth", interactive=False, loop=True,
                         autoplay=True)
    with gr.Accordion("API: a move by name", open=False):
        with gr.Row():
            move = gr.Dropdown(list(PUSH_MOVES), value="right", label="Move", elem_id="push-move")
            apply = gr.Button("Apply move", elem_id="push-apply")
    report = gr.Markdown(elem_id="push-report")
    outputs = [session, imagined, truth, report]
    apply.click(push_step, [seed, move, steps, session], outputs, api_name="push_step")
    for name, button in buttons.items():
        button.click(lambda seed, steps, state, name=name: push_step(seed, name, steps, state), [seed, steps, session],
                     outputs, api_visibility="private")
    reset.click(push_reset, [seed], outputs, api_name="push_reset")


def build_camera_tab(default_steps: int):
    from cosmos_hf.diffusion.camera_control import JOYSTICK_MOVES

    gr.Markdown(f"The nano camera-control model continues a still scene's first frame along a camera path you build "
                f"from joystick moves ({CAMERA_PATH_MOVES} moves, one per frame; a shorter path holds still at its "
                f"end). Beside it, the simulator renders the same scene along the same poses.")
    with gr.Row():
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=HELD_OUT_SEED_OFFSET - 1,
                         label="Scene seed (held out)", elem_id="cam-seed")
        steps = gr.Slider(1, MAX_STEPS, value=default_steps, step=1, label="Sampling steps", elem_id="cam-steps")
    moves = gr.Textbox(value=", ".join(["forward"] * 4 + ["turn_left"] * 8), elem_id="cam-moves",  # room for +4
                       label=f"Camera path (1-{CAMERA_PATH_MOVES} moves: {', '.join(JOYSTICK_MOVES)})")
    with gr.Row():
        for name in [m for m in JOYSTICK_MOVES if m != "stay"]:
            gr.Button(f"+4 {name}", elem_id=f"cam-add-{name}", min_width=80).click(
                lambda text, name=name: ", ".join([*str(text or "").replace(",", " ").split(), *[name] * 4]),
                moves, moves, api_visibility="private")
        gr.Button("Clear", elem_id="cam-clear", min_width=80).click(lambda: "", None, moves, api_visibility="private")
    button = gr.Button("Generate", variant="primary", elem_id="cam-generate")
    with gr.Row():
        prediction = gr.Video(label="Nano camera control", elem_id="cam-prediction", interactive=False, loop=True,
                              autoplay=True)
        truth = gr.Video(label="Simulator (same poses)", elem_id="cam-truth", interactive=False, loop=True,
                         autoplay=True)
    report = gr.Markdown(elem_id="cam-report")
    button.click(camera_fly, [seed, moves, steps], [prediction, truth, report], api_name="camera")


def build_multiview_tab(default_steps: int):
    gr.Markdown("The nano multi-view model drives a rig of cameras through a held-out scene of the built-in world: "
                "from the **first frame of every camera** and the rig's path it generates the next frames of all "
                "cameras together. Beside it: the simulator's cameras and the copy-last-frame baseline.")
    with gr.Row():
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=HELD_OUT_SEED_OFFSET - 1,
                         label="Scene seed (held out)", elem_id="mv-seed")
        steps = gr.Slider(1, MAX_STEPS, value=default_steps, step=1, label="Sampling steps", elem_id="mv-steps")
    button = gr.Button("Generate", variant="primary", elem_id="mv-generate")
    prediction = gr.Video(label="Nano multi-view (cameras side by side)", elem_id="mv-prediction", interactive=False,
                          loop=True, autoplay=True)
    truth = gr.Video(label="Simulator (same drive)", elem_id="mv-truth", interactive=False, loop=True, autoplay=True)
    baseline = gr.Video(label="Copy-last-frame baseline", elem_id="mv-copy-last", interactive=False, loop=True)
    report = gr.Markdown(elem_id="mv-report")
    button.click(multiview_drive, [seed, steps], [prediction, truth, baseline, report], api_name="multiview")


# (tab title, builder(default_steps)): always shown
TABS = [
    ("Video2World", build_video2world_tab),
    ("Text2World", build_text2world_tab),
    ("AR Video2World (Medusa)", lambda steps: build_ar_video2world_tab()),
    ("Tokenizers", lambda steps: build_tokenizer_tab()),
]
# (tab title, PIPELINE_FOLDERS key, builder(default_steps)): shown only when that pipeline folder is installed, so the
# Space works before the post-trained nano models are bundled
POST_TRAINED_TABS = [
    ("Push the object", "action", build_action_tab),
    ("Fly the camera", "camera", build_camera_tab),
    ("Multi-view rig", "multiview", build_multiview_tab),
]


def available_tabs() -> list:
    """TABS, then the post-trained tabs whose pipelines are installed in PIPELINES_DIR."""
    return TABS + [(title, build) for title, kind, build in POST_TRAINED_TABS if pipeline_installed(kind)]

CSS = "video { image-rendering: pixelated; }  /* 64x64 clips, shown large: keep the pixels sharp */"
THEME = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],  # no web fonts: works offline
                       font_mono=["ui-monospace", "monospace"])


def build_demo(default_steps: int = DEFAULT_STEPS) -> gr.Blocks:
    with gr.Blocks(title="Cosmos nano world models", delete_cache=(OUTPUT_MAX_AGE_S, OUTPUT_MAX_AGE_S)) as demo:
        gr.Markdown("# Cosmos nano world models\n"
                    "The bundled nano checkpoints of cosmos-hf (NVIDIA Cosmos world foundation models rebuilt on "
                    "diffusers / transformers), trained on 2 CPU cores, on held-out clips of its built-in physics "
                    "world (pybullet). They are small and undertrained: read their scores next to the baselines.")
        for title, build in available_tabs():
            with gr.Tab(title):
                build(default_steps)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """`demo.launch` with the app's theme and CSS (Gradio 6 takes them at launch)."""
    return demo.launch(theme=THEME, css=CSS, **kwargs)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run the Cosmos nano Space locally.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="default sampling steps in the sliders")
    args = parser.parse_args()
    from cosmos_hf.demo import quiet_loading

    quiet_loading()  # the server log shows requests, not per-component loading bars
    launch(build_demo(args.steps).queue(), server_name=args.host, server_port=args.port)
