"""Predictors: whatever turns conditioning frames into a predicted video, for the physics-alignment benchmark.

A predictor is any callable

    predictor(cond_frames, caption, num_frames, context) -> uint8 [num_frames, H, W, 3]

where `cond_frames` is uint8 [Tc, H, W, 3], and the returned video has `num_frames` frames in total whose first
Tc frames stand in the place of the conditioning (as Video2World pipelines return them); the benchmark scores
frames Tc..num_frames-1 only. `context` is a dict the benchmark fills with what an observer of the conditioning
frames may know: `cond_masks` (simulator object-id masks of the conditioning frames), `object_ids`, `seed`; and
only for predictors whose `requires_ground_truth` is True, `ground_truth` (the simulator's full video).

Provided: the baselines (copy-last-frame, constant-velocity extrapolation), the ground-truth upper bound, the
tokenizer round-trip bound of a latent model, and an adapter for any saved diffusers pipeline folder of this project.
"""

import inspect

import numpy as np


def _check_cond(cond_frames, num_frames):
    cond_frames = np.asarray(cond_frames)
    if cond_frames.ndim != 4 or cond_frames.shape[-1] != 3 or cond_frames.dtype != np.uint8:
        raise ValueError(
            f"conditioning frames must be uint8 (Tc, H, W, 3), got {cond_frames.dtype} {cond_frames.shape}"
        )
    if not 1 <= len(cond_frames) < num_frames:
        raise ValueError(f"need 1 <= conditioning frames ({len(cond_frames)}) < num_frames ({num_frames})")
    return cond_frames


class CopyLastFramePredictor:
    """Baseline: every predicted frame is the last conditioning frame (nothing moves)."""

    name = "copy-last"
    requires_ground_truth = False

    def __call__(self, cond_frames, caption, num_frames, context=None):
        cond_frames = _check_cond(cond_frames, num_frames)
        future = np.repeat(cond_frames[-1:], num_frames - len(cond_frames), axis=0)
        return np.concatenate([cond_frames, future])


class GroundTruthPredictor:
    """Upper bound: returns the simulator's own continuation (scores show what the metrics allow at best)."""

    name = "ground-truth"
    requires_ground_truth = True

    def __call__(self, cond_frames, caption, num_frames, context=None):
        cond_frames = _check_cond(cond_frames, num_frames)
        if not context or context.get("ground_truth") is None:
            raise ValueError("the ground-truth predictor needs context['ground_truth'] (the simulator's video)")
        truth = np.asarray(context["ground_truth"])
        if len(truth) < num_frames:
            raise ValueError(f"ground truth has {len(truth)} frames, {num_frames} requested")
        return np.concatenate([cond_frames, truth[len(cond_frames) : num_frames]])


class ConstantVelocityPredictor:
    """Baseline: each object keeps moving at the pixel velocity it had between the last two conditioning frames.

    How it extrapolates, precisely:
    1. Object pixels come from the simulator masks of the conditioning frames (`context['cond_masks']`); the velocity
       of object j is the displacement of its mask centroid from frame Tc-2 to frame Tc-1 (pixels per frame). An
       object missing from either frame gets velocity 0. With a single conditioning frame every velocity is 0 and
       the predictor equals copy-last-frame.
    2. A background plate is built from the last frame with its object pixels replaced by the latest conditioning
       frame that shows background there; pixels never seen are inpainted (OpenCV Telea, radius 3).
    3. Predicted frame k (k = 1, 2, ... after the last conditioning frame) is the plate with each object's pixels
       from the last frame pasted at offset round(k * velocity) (integer pixel shift, clipped at the borders),
       objects drawn in increasing order of their mask area (small objects on top). No rotation, gravity,
       collisions or occlusion reasoning: this is a first-order motion baseline, not a physics model.
    """

    name = "constant-velocity"
    requires_ground_truth = False

    def __call__(self, cond_frames, caption, num_frames, context=None):
        import cv2

        cond_frames = _check_cond(cond_frames, num_frames)
        context = context or {}
        cond_masks = context.get("cond_masks")
        object_ids = context.get("object_ids")
        num_future = num_frames - len(cond_frames)
        if cond_masks is None or object_ids is None:
            raise ValueError("the constant-velocity predictor needs context['cond_masks'] and context['object_ids']")
        cond_masks = np.asarray(cond_masks)
        if cond_masks.shape != cond_frames.shape[:3]:
            raise ValueError(f"cond_masks {cond_masks.shape} must match conditioning frames {cond_frames.shape[:3]}")
        last, last_mask = cond_frames[-1], cond_masks[-1]
        height, width = last_mask.shape

        is_object = np.isin(cond_masks, list(object_ids))
        plate = last.copy()
        hole = is_object[-1].copy()
        for t in range(len(cond_frames) - 2, -1, -1):
            fill = hole & ~is_object[t]
            plate[fill] = cond_frames[t][fill]
            hole &= ~fill
        if hole.any():
            plate = cv2.inpaint(plate, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)

        sprites = []  # (area, rows, cols, colours, velocity)
        for object_id in object_ids:
            rows, cols = np.nonzero(last_mask == object_id)
            if len(rows) == 0:
                continue
            velocity = np.zeros(2)
            if len(cond_frames) >= 2:
                prev_rows, prev_cols = np.nonzero(cond_masks[-2] == object_id)
                if len(prev_rows):
                    velocity = np.array([rows.mean() - prev_rows.mean(), cols.mean() - prev_cols.mean()])
            sprites.append((len(rows), rows, cols, last[rows, cols], velocity))
        sprites.sort(key=lambda sprite: -sprite[0])

        future = np.empty((num_future, height, width, 3), dtype=np.uint8)
        for k in range(1, num_future + 1):
            frame = plate.copy()
            for _, rows, cols, colours, velocity in sprites:
                shift_r, shift_c = np.round(k * velocity).astype(int)
                new_rows, new_cols = rows + shift_r, cols + shift_c
                inside = (new_rows >= 0) & (new_rows < height) & (new_cols >= 0) & (new_cols < width)
                frame[new_rows[inside], new_cols[inside]] = colours[inside]
            future[k - 1] = frame
        return np.concatenate([cond_frames, future])


def _to_uint8_video(frames) -> np.ndarray:
    """Pipeline output (np float [0,1], uint8, torch, list of PIL; batch axis optional) -> uint8 (T, H, W, 3)."""
    if (
        isinstance(frames, (list, tuple))
        and frames
        and not isinstance(frames[0], np.ndarray)
        and hasattr(frames[0], "size")
    ):
        frames = np.stack([np.asarray(image.convert("RGB")) for image in frames])
    if hasattr(frames, "detach"):
        frames = frames.detach().float().cpu().numpy()
    if isinstance(frames, (list, tuple)) and frames and isinstance(frames[0], (list, tuple)):
        return _to_uint8_video(frames[0])  # batch of PIL lists
    frames = np.asarray(frames)
    if frames.ndim == 5:
        frames = frames[0]
    if frames.ndim != 4:
        raise ValueError(f"pipeline returned frames shaped {frames.shape}; expected (T, H, W, 3) or (B, T, H, W, 3)")
    if frames.shape[-1] != 3 and frames.shape[1] == 3:
        frames = frames.transpose(0, 2, 3, 1)  # (T, 3, H, W) -> (T, H, W, 3)
    if frames.dtype != np.uint8:
        if not np.isfinite(frames).all():
            raise ValueError("pipeline returned NaN or inf frames")
        frames = (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return frames


class DiffusersPipelinePredictor:
    """Adapter for a saved pipeline folder of this project (or any Video2World-style diffusers pipeline).

    Loaded with `cosmos_hf.pipelines.load_pipeline(folder, trust_remote_code=True)` (diffusers'
    `DiffusionPipeline.from_pretrained` without its remote-code copy for cosmos-hf folders, so evaluations may run
    side by side); called as
    `pipeline(video=[PIL frames], output_type="np", ...)`, plus `prompt`/`num_frames`/`height`/`width`/
    `num_inference_steps`/`guidance_scale`/`generator` when the pipeline's `__call__` accepts them (the AR pipeline
    takes no `num_frames`: its token grid fixes the length) and `call_kwargs`. The sampling seed of each call is
    `seed + context['seed']`, so runs are repeatable.
    Outputs of another spatial size are resized to the reference size (area interpolation) and counted in
    `self.resized_calls`; a different frame count is an error.
    """

    requires_ground_truth = False

    def __init__(
        self,
        folder,
        device: str = "cpu",
        torch_dtype=None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int = 0,
        call_kwargs: dict | None = None,
        name: str | None = None,
    ):
        from pathlib import Path

        from ..pipelines import load_pipeline

        folder = Path(folder)
        if not (folder / "model_index.json").is_file():
            raise FileNotFoundError(f"{folder} is not a saved pipeline folder (no model_index.json)")
        kwargs = {"trust_remote_code": True}
        if torch_dtype is not None:
            kwargs["torch_dtype"] = torch_dtype
        self.pipeline = load_pipeline(folder, **kwargs).to(device)
        if hasattr(self.pipeline, "set_progress_bar_config"):
            self.pipeline.set_progress_bar_config(disable=True)
        self.name = name or f"pipeline:{folder.name}"
        self.seed = seed
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.call_kwargs = dict(call_kwargs or {})
        self.resized_calls = 0
        signature = inspect.signature(self.pipeline.__call__)
        self._accepts_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
        self._accepted = set(signature.parameters)

    def _accepts(self, name: str) -> bool:
        return self._accepts_any or name in self._accepted

    def __call__(self, cond_frames, caption, num_frames, context=None):
        import cv2
        import torch
        from PIL import Image

        cond_frames = _check_cond(cond_frames, num_frames)
        height, width = cond_frames.shape[1:3]
        context = context or {}
        kwargs = {"video": [Image.fromarray(frame) for frame in cond_frames], "output_type": "np"}
        optional = {
            "prompt": caption,
            "num_frames": num_frames,  # pipelines without it (the AR one: its token grid) must return num_frames
            "height": height,
            "width": width,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": self.guidance_scale,
            "generator": torch.Generator("cpu").manual_seed(self.seed + int(context.get("seed", 0))),
        }
        for key, value in optional.items():
            if value is not None and self._accepts(key):
                kwargs[key] = value
        kwargs.update(self.call_kwargs)
        output = self.pipeline(**kwargs)
        frames = output.frames if hasattr(output, "frames") else output[0]
        frames = _to_uint8_video(frames)
        if len(frames) != num_frames:
            raise ValueError(f"{self.name} returned {len(frames)} frames, {num_frames} were requested")
        if frames.shape[1:3] != (height, width):
            self.resized_calls += 1
            frames = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])
        return frames


class TokenizerRoundTripPredictor:
    """Upper bound for a model that lives in a tokenizer's latent space: the simulator's own continuation, encoded and
    decoded by that tokenizer (a tokenizer folder, or the `vae` of a pipeline folder). A latent world model cannot
    score above it, whatever it learns; the gap to the ground truth is what the tokenizer alone costs.

    With `condition_detail_transfer=True`: the same reference for a Video2World pipeline that adds back what the
    tokenizer loses of the last conditioning frame (`CosmosVideo2WorldPipeline.condition_detail`): round trip + (still video of that
    frame - its round trip). `condition_detail_gate` (in (0, 1], needs the transfer) weights that detail per pixel
    as the pipeline's `condition_detail_gate` does: by how far the round trip departs from the still frame's.
    """

    requires_ground_truth = True

    def __init__(self, folder, device: str = "cpu", name: str | None = None, condition_detail_transfer: bool = False,
                 condition_detail_gate: float | None = None):
        from pathlib import Path

        from .tokenizer_metrics import load_autoencoder

        self.autoencoder = load_autoencoder(folder, device=device)
        if condition_detail_gate is not None and not (condition_detail_transfer and 0 < condition_detail_gate <= 1):
            raise ValueError(f"condition_detail_gate must be in (0, 1] and needs condition_detail_transfer=True, got "
                             f"{condition_detail_gate} with condition_detail_transfer={condition_detail_transfer}")
        self.condition_detail_transfer = condition_detail_transfer
        self.condition_detail_gate = condition_detail_gate
        suffix = " + detail transfer" if condition_detail_transfer else ""
        if condition_detail_gate is not None:
            suffix += f" (gate {condition_detail_gate:g})"
        self.name = name or f"tokenizer-bound:{Path(folder).name}{suffix}"

    def __call__(self, cond_frames, caption, num_frames, context=None):
        from .tokenizer_metrics import reconstruct_with_autoencoder

        truth = GroundTruthPredictor()(cond_frames, caption, num_frames, context)
        reconstruction = reconstruct_with_autoencoder(self.autoencoder, truth)
        if self.condition_detail_transfer:
            still = np.repeat(np.asarray(cond_frames)[-1:], num_frames, axis=0)
            still_round_trip = reconstruct_with_autoencoder(self.autoencoder, still).astype(np.float32)
            detail = still.astype(np.float32) - still_round_trip
            if self.condition_detail_gate is not None:  # uint8 units -> [0, 1] image units, as the pipeline's gate
                departure = np.abs(reconstruction.astype(np.float32) - still_round_trip).max(-1, keepdims=True) / 255
                detail = detail * np.clip(1.0 - departure / self.condition_detail_gate, 0.0, None)
            reconstruction = np.clip(reconstruction + detail, 0, 255).round().astype(np.uint8)
        return np.concatenate([truth[: len(cond_frames)], reconstruction[len(cond_frames) :]])


BASELINES = {
    CopyLastFramePredictor.name: CopyLastFramePredictor,
    ConstantVelocityPredictor.name: ConstantVelocityPredictor,
    GroundTruthPredictor.name: GroundTruthPredictor,
}
