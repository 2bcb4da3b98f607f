"""Argument checks shared by every cosmos_hf pipeline: each error names the argument and its valid range.

diffusers' Cosmos pipelines pass NaNs, 0-255 frames, `fps=0` or `guidance_scale=inf` straight to the model and return
an all-black or saturated video without a word. Our pipelines run these checks in their `check_inputs` before any
work is done; pipelines added later (camera, action, multi-view) import them from here:

    from cosmos_hf.pipelines.input_checks import check_number, check_generator, preprocess_conditioning_frames

Guardrails: `check_guardrail_coverage` refuses the two ways a call could get past a pipeline's guard without anyone
deciding so — `prompt_embeds` without a `prompt` (no text for the text guard) and undecoded output (`"latent"`,
`"tokens"`: nothing for the video guard). Building the pipeline with `disable_safety_checker=True` is the explicit
opt-out.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F

# Preprocessed frames are [-1, 1]; resizing with antialiasing can overshoot by a little, 0-255 input by far more.
PIXEL_RANGE_TOLERANCE = 0.05


def check_number(name: str, value, *, minimum=None, maximum=None, exclusive_minimum: bool = False,
                 integer: bool = False, note: str = ""):
    """`value` as a finite Python number in the given bounds, else TypeError/ValueError naming `name` and the bounds.

    `note` is appended to the message to say what the bounds mean (e.g. "1 disables classifier-free guidance").
    """
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if exclusive_minimum else '>='} {minimum:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    kind = "an integer" if integer else "a finite number"
    wanted = f"{name} must be {' and '.join(bounds)} ({kind}{'; ' + note if note else ''})" if bounds else \
        f"{name} must be {kind}{' (' + note + ')' if note else ''}"
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{wanted}, got {type(value).__name__} {value!r}")
    if integer and not isinstance(value, numbers.Integral):
        raise TypeError(f"{wanted}, got {type(value).__name__} {value!r}")
    value = int(value) if integer else float(value)
    if not math.isfinite(value):
        raise ValueError(f"{wanted}, got {value}")
    too_small = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    if too_small or (maximum is not None and value > maximum):
        raise ValueError(f"{wanted}, got {value}")
    return value


def rgb_distance_option(config, name: str, value, zero_is_off: bool = False):
    """A call's RGB-distance option (`condition_detail_gate`, `condition_keep_threshold`): `None` takes the pipeline
    config's `default_<name>` (None = off); a number must be in (0, 1] (an RGB distance in image units). With
    `zero_is_off` (the keep threshold: no pixel is within distance 0) a call's 0 turns a saved default off."""
    if value is None:
        value = config.get(f"default_{name}", None)
    if value is None:
        return None
    if zero_is_off:
        value = check_number(name, value, minimum=0, maximum=1,
                             note="an RGB distance in [0, 1] image units; 0 = off")
        return None if value == 0 else value
    return check_number(name, value, minimum=0, exclusive_minimum=True, maximum=1,
                        note="an RGB distance in [0, 1] image units")


def check_finite_tensor(name: str, tensor, ndim: int | None = None, shape_hint: str = "") -> torch.Tensor:
    """A floating-point tensor without NaN/inf (and with `ndim` dimensions when given)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor{' ' + shape_hint if shape_hint else ''}, "
                        f"got {type(tensor).__name__}")
    if ndim is not None and tensor.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions{' ' + shape_hint if shape_hint else ''}, "
                         f"got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {tensor.dtype}")
    if not torch.isfinite(tensor).all():
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ValueError(f"{name} contains {bad} NaN or inf values (of {tensor.numel()}); every value must be finite")
    return tensor


def check_generator(generator, batch: int | None = None):
    """None, a `torch.Generator`, or a list of them (one per output video when `batch` is given)."""
    hint = "e.g. generator=torch.Generator().manual_seed(42)"
    if generator is None or isinstance(generator, torch.Generator):
        return
    if isinstance(generator, (list, tuple)):
        bad = [type(g).__name__ for g in generator if not isinstance(g, torch.Generator)]
        if bad or not generator:
            raise TypeError(f"generator must be a torch.Generator or a non-empty list of them ({hint}), "
                            f"got a list holding {bad or 'nothing'}")
        if batch is not None and len(generator) != batch:
            raise ValueError(f"got {len(generator)} generators for a batch of {batch} videos: pass one generator "
                             f"or exactly {batch}")
        return
    raise TypeError(f"generator must be a torch.Generator or a list of them ({hint}), "
                    f"got {type(generator).__name__} {generator!r}")


def check_output_type(output_type, valid: tuple[str, ...]):
    if output_type not in valid:
        raise ValueError(f"output_type must be one of {valid}, got {output_type!r}")


def check_guardrail_coverage(safety_checker, prompt, prompt_embeds, output_type,
                             undecoded_output_types: tuple[str, ...] = ("latent",)):
    """Refuse calls that would skip a configured guard: text given only as embeddings, or output left undecoded.

    A pipeline built with `disable_safety_checker=True` has `safety_checker=None` and passes; that is the opt-out.
    """
    if safety_checker is None:
        return
    opt_out = ("or build the pipeline with disable_safety_checker=True (e.g. from_pretrained(path, "
               "disable_safety_checker=True)) to take responsibility for checking yourself")
    if prompt is None and prompt_embeds is not None:
        raise ValueError(f"prompt_embeds without a prompt: the text guardrail has no text to check. Pass `prompt` "
                         f"instead, {opt_out}")
    if output_type in undecoded_output_types:
        raise ValueError(f"output_type={output_type!r} returns undecoded output that the video guardrail cannot "
                         f"check. Use output_type 'pil', 'np' or 'pt', {opt_out}")


def check_pixel_range(name: str, frames: torch.Tensor, expected: str = "[-1, 1]") -> torch.Tensor:
    """Preprocessed frames must be finite and within [-1, 1]: 0-255 input otherwise decodes saturated."""
    check_finite_tensor(name, frames)
    low, high = frames.min().item(), frames.max().item()
    if low < -1 - PIXEL_RANGE_TOLERANCE or high > 1 + PIXEL_RANGE_TOLERANCE:
        raise ValueError(
            f"{name} values span [{low:.3g}, {high:.3g}] after preprocessing, expected {expected}. Pass tensors as "
            f"float in [-1, 1] (cosmos_hf.data.frames_to_tensor), numpy frames as uint8 [0, 255] or float [0, 1], or "
            f"PIL images; float frames in 0-255 must be divided by 255 (tensors: / 127.5 - 1) first"
        )
    return frames


def _uint8_to_unit(frame):
    """uint8 numpy frames -> float32 [0, 1] (diffusers' numpy convention); everything else unchanged."""
    if isinstance(frame, np.ndarray) and frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    return frame


def _check_tensor_dtype(name: str, value):
    if isinstance(value, torch.Tensor) and not value.is_floating_point():
        raise TypeError(f"{name} tensor has dtype {value.dtype}; tensors must be float in [-1, 1] "
                        f"(uint8 frames: video.float() / 127.5 - 1, or pass them as a numpy array)")


def _resize_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    b, c, t = frames.shape[:3]
    flat = frames.permute(0, 2, 1, 3, 4).reshape(b * t, c, *frames.shape[-2:])
    flat = F.interpolate(flat, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return flat.reshape(b, t, c, height, width).permute(0, 2, 1, 3, 4)


def preprocess_conditioning_frames(video_processor, image, video, height: int, width: int) -> torch.Tensor:
    """`image` or `video` -> float [B, 3, T, H, W] in [-1, 1] at height x width, finite and in range.

    Accepted: a tensor [B, 3, T, H, W] / [3, T, H, W] float in [-1, 1] (the project's convention,
    `cosmos_hf.data.frames_to_tensor`); a uint8 numpy video [T, H, W, 3]; a list of frames (PIL, numpy uint8 or
    float [0, 1]) or one image, as diffusers takes them. Integer tensors, NaN/inf and 0-255 floats are refused.
    """
    if (image is None) == (video is None):
        raise ValueError("pass exactly one of `image` (one conditioning frame) or `video` (conditioning frames)")
    if image is not None:
        _check_tensor_dtype("image", image)
        frames = video_processor.preprocess(_uint8_to_unit(image), height, width).unsqueeze(2)
        return check_pixel_range("image", frames)
    _check_tensor_dtype("video", video)
    if isinstance(video, torch.Tensor):
        frames = video.unsqueeze(0) if video.ndim == 4 else video
        if frames.ndim != 5 or frames.shape[1] != 3:
            raise ValueError(f"a video tensor must be [B, 3, T, H, W] or [3, T, H, W], got {tuple(video.shape)}")
        frames = check_pixel_range("video", frames.float())
    elif isinstance(video, np.ndarray) and video.dtype == np.uint8:
        if video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"a uint8 video array must be [T, H, W, 3], got {video.shape}")
        frames = torch.from_numpy(video).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
    else:
        if isinstance(video, (list, tuple)):
            for frame in video:
                _check_tensor_dtype("video frame", frame)
            video = [_uint8_to_unit(frame) for frame in video]
        frames = video_processor.preprocess_video(video, height, width)
    if frames.shape[-2:] != (height, width):
        frames = _resize_frames(frames, height, width)
    return check_pixel_range("video", frames)


__all__ = [
    "check_number",
    "check_finite_tensor",
    "check_generator",
    "check_output_type",
    "check_guardrail_coverage",
    "check_pixel_range",
    "preprocess_conditioning_frames",
]
