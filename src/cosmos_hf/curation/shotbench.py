"""ShotBench-style evaluation on videos built from physics-world clips joined at known frames.

`make_shot_video` simulates shots (different scenes, seeds and views) and joins them with hard cuts or dissolves
(linear cross-fades) at known frames; `evaluate_detector` scores a detector's transitions with precision, recall
and F1 (see `score_transitions`).
"""

from __future__ import annotations

import numpy as np

from .shot_detection import Transition, score_transitions


def make_shot_video(num_shots: int = 4, shot_frames: int = 48, size: int = 64, seed: int = 0,
                    transitions=("cut",), dissolve_frames: int = 12, fps: float = 24.0):
    """-> (frames uint8 [T, size, size, 3], true transitions, captions of the shots).

    Shot i is `cosmos_hf.sim.simulate(SCENES[(seed + i) % 8], seed=seed * 100 + i, view=i % 4)`. The join after
    shot i is `transitions[i % len(transitions)]`: "cut" (frame k-1 old, frame k new -> Transition(k-1, k)) or
    "dissolve" (`dissolve_frames` blended frames a..b -> Transition(a, b)).
    """
    from ..sim import SCENES, simulate

    for kind in transitions:
        if kind not in ("cut", "dissolve"):
            raise ValueError(f"transition kinds are 'cut' and 'dissolve', got {kind!r}")
    if shot_frames <= dissolve_frames + 2:
        raise ValueError(f"shot_frames ({shot_frames}) must exceed dissolve_frames + 2 ({dissolve_frames + 2})")
    shots = [simulate(SCENES[(seed + i) % len(SCENES)], seed=seed * 100 + i, num_frames=shot_frames, height=size,
                      width=size, fps=fps, view=i % 4) for i in range(num_shots)]
    video, truth = shots[0].video, []
    for i, shot in enumerate(shots[1:]):
        kind = transitions[i % len(transitions)]
        if kind == "cut":
            truth.append(Transition(len(video) - 1, len(video)))
            video = np.concatenate([video, shot.video])
        else:
            n = dissolve_frames
            alpha = (np.arange(1, n + 1) / (n + 1))[:, None, None, None]
            blend = (1 - alpha) * video[-n:].astype(np.float64) + alpha * shot.video[:n].astype(np.float64)
            start = len(video) - n
            truth.append(Transition(start, start + n - 1))
            video = np.concatenate([video[:-n], blend.round().astype(np.uint8), shot.video[n:]])
    return video, truth, [s.caption for s in shots]


def evaluate_detector(detector, videos, tolerance: int = 2) -> dict:
    """Pooled precision / recall / F1 of `detector.detect` over [(frames, truth), ...]."""
    tp = fp = fn = 0
    for frames, truth in videos:
        s = score_transitions(detector.detect(frames), truth, tolerance)
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
