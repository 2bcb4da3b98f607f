"""The guardrail step of every cosmos_hf pipeline (diffusion and autoregressive), written once.

A pipeline's `safety_checker` (`cosmos_hf.guardrails.resolve_safety_checker`: our `CosmosSafetyChecker` unless the
pipeline was built with `disable_safety_checker=True`) sees the prompt before any work (`check_prompt_safety`) and
every decoded clip before it is returned (`guard_videos`); `input_checks.check_guardrail_coverage` refuses the calls
that would get past it.
"""

from __future__ import annotations

import numpy as np
import torch


def check_prompt_safety(safety_checker, prompt, device=None) -> None:
    """Raise a ValueError naming the first prompt the checker rejects (no-op without a checker or a prompt)."""
    if safety_checker is None or prompt is None:
        return
    if device is not None and hasattr(safety_checker, "to"):
        safety_checker.to(device)
    for text in [prompt] if isinstance(prompt, str) else prompt:
        if not safety_checker.check_text_safety(text):
            raise ValueError(f"the safety checker rejected the prompt: {text!r}")


def guard_videos(safety_checker, video_processor, video: torch.Tensor, device=None,
                 round_to_nearest: bool = False) -> torch.Tensor:
    """Videos `[B, 3, T, H, W]` in [-1, 1] -> the same after the checker's `check_video_safety` on each uint8 clip.

    The checker works on uint8 frames `[T, H, W, 3]`, so the result is quantised to 256 levels. The diffusion
    pipelines convert as diffusers' Cosmos pipelines do (truncation, so that they stay numerically diffusers');
    the autoregressive pipeline has always rounded to the nearest level (`round_to_nearest=True`).
    """
    if safety_checker is None:
        return video
    if device is not None and hasattr(safety_checker, "to"):
        safety_checker.to(device)
    clips = video_processor.postprocess_video(video, output_type="np") * 255  # [B, T, H, W, 3] in [0, 255]
    clips = (clips.round() if round_to_nearest else clips).astype(np.uint8)
    clips = np.stack([safety_checker.check_video_safety(clip) for clip in clips])
    if round_to_nearest:
        return torch.from_numpy(clips.astype(np.float32) / 127.5 - 1).permute(0, 4, 1, 2, 3)
    return torch.from_numpy(clips.astype(np.float32) / 255.0 * 2 - 1).permute(0, 4, 1, 2, 3)


__all__ = ["check_prompt_safety", "guard_videos"]
