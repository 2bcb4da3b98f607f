"""Cosmos nano: a Gradio Space for the bundled nano world models of cosmos-hf.

Tabs (each a `build_*_tab()` function, listed in `TABS`):
- Video2World: a held-out physics-world clip (scene, seed, camera view) or an uploaded clip; the nano Video2World
  model continues its first frame, shown next to the copy-last-frame baseline and, for simulated clips, the
  simulator's ground truth, with PSNR / SSIM of the predicted frames.
- Text2World: a prompt alone.
- AR Video2World: the nano autoregressive model decodes greedily, once token by token and once with Medusa heads;
  both give the same tokens, and the tab shows the measured speed-up.
- Tokenizers: the nano CV4x8x8 (continuous) and DV4x8x8 (discrete) tokenizers reconstruct a clip, with PSNR / SSIM.

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
}
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
    pipe = cosmos_demo.load_world_model(folder, kind).to(device())
    if kind == "ar_video2world":
        # the first call pays one-time costs (allocations, kernel choice): pay them here, so that the tab's timed
        # greedy and Medusa runs compare like with like
        pipe(video=np.zeros((1, SIZE, SIZE, 3), np.uint8), use_medusa=True, output_type="np")
    return pipe


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


def save_video(frames: np.ndarray) -> str:
    """Write uint8 frames to a fresh mp4 for a gr.Video output (files older than an hour are removed)."""
    from cosmos_hf.data import write_video

    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in OUTPUT_DIR.glob("*.mp4"):
        if now - old.stat().st_mtime > OUTPUT_MAX_AGE_S:
            old.unlink(missing_ok=True)
    path = OUTPUT_DIR / f"{uuid.uuid4().hex}.mp4"
    write_video(path, frames, fps=FPS)
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


def score_table(truth: np.ndarray | None, predictions: dict) -> str:
    """Markdown: PSNR / SSIM of each prediction's predicted frames (after the conditioning frame) against the truth."""
    if truth is None:
        return (f"No ground truth: the uploaded clip has fewer than {NUM_FRAMES} frames, so only its first frame "
                "was used.")
    rows = ["| prediction | PSNR (dB) | SSIM |", "|---|---|---|"]
    for name, video in predictions.items():
        psnr, ssim = cosmos_demo.score_predicted_frames(truth, video)
        rows.append(f"| {name} | {'exact (inf)' if not np.isfinite(psnr) else f'{psnr:.2f}'} | {ssim:.3f} |")
    return ("\n".join(rows) + f"\n\nScored on frames {NUM_CONDITION_FRAMES}-{NUM_FRAMES - 1} (frame 0 is the "
            "model's input), TokenBench PSNR and mean per-frame SSIM; higher is better. Copy-last-frame repeats the "
            "input frame: a model has to beat it to show it learned motion.")


def pipeline_frames(output) -> np.ndarray:
    """`output_type="np"` frames [1, T, H, W, 3] in [0, 1] -> uint8 [T, 64, 64, 3]."""
    return cosmos_demo.to_uint8_video(output, SIZE)


def copy_last_frame(video: np.ndarray) -> np.ndarray:
    """The baseline, 17 frames long whatever the length of the (uploaded) clip."""
    from cosmos_hf.evaluation.predictors import CopyLastFramePredictor

    return CopyLastFramePredictor()(video[:NUM_CONDITION_FRAMES], "", NUM_FRAMES)


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


# (tab title, builder(default_steps)). The post-trained world models get their tabs here once bundled nano folders
# of them exist in pipelines/ (the pipeline classes do; trained nano weights do not yet, and an untrained camera
# model samples exactly like its Video2World base): an action tab (CosmosActionConditionedPipeline: a push-task
# start frame from `cosmos_hf.sim.simulate_push` and its 7-D actions, with the simulator's rollout as ground truth)
# and a camera-joystick tab (CosmosCameraControlPipeline with `camera_moves`, e.g. ["forward", "turn_left"]).
TABS = [
    ("Video2World", build_video2world_tab),
    ("Text2World", build_text2world_tab),
    ("AR Video2World (Medusa)", lambda steps: build_ar_video2world_tab()),
    ("Tokenizers", lambda steps: build_tokenizer_tab()),
]

CSS = "video { image-rendering: pixelated; }  /* 64x64 clips, shown large: keep the pixels sharp */"
THEME = gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],  # no web fonts: works offline
                       font_mono=["ui-monospace", "monospace"])


def build_demo(default_steps: int = DEFAULT_STEPS) -> gr.Blocks:
    with gr.Blocks(title="Cosmos nano world models", delete_cache=(OUTPUT_MAX_AGE_S, OUTPUT_MAX_AGE_S)) as demo:
        gr.Markdown("# Cosmos nano world models\n"
                    "The bundled nano checkpoints of cosmos-hf (NVIDIA Cosmos world foundation models rebuilt on "
                    "diffusers / transformers), trained on 2 CPU cores, on held-out clips of its built-in physics "
                    "world (pybullet). They are small and undertrained: read their scores next to the baselines.")
        for title, build in TABS:
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
