"""A contact sheet of the eight physics scenes: one row per scene, a few frames across, labelled."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..utils import atomic_path
from .dataset import readable_mode
from .physics_scenes import SCENES, simulate


def physics_contact_sheet(num_columns: int = 6, num_frames: int = 36, height: int = 96, width: int = 96,
                          seed: int = 0, view: int = 0, label_width: int = 120) -> np.ndarray:
    """uint8 (8 * H, label_width + num_columns * W, 3) image: scene k's frames at evenly spaced times."""
    import cv2

    if not 1 <= num_columns <= num_frames:
        raise ValueError(f"num_columns must be between 1 and num_frames ({num_frames}), got {num_columns}")
    rows = []
    picks = np.linspace(0, num_frames - 1, num_columns).round().astype(int)
    for k, scene in enumerate(SCENES):
        record = simulate(scene, seed=seed + k, num_frames=num_frames, height=height, width=width, view=view)
        label = np.full((height, label_width, 3), 255, np.uint8)
        cv2.putText(label, scene.replace("_", " "), (6, height // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (20, 20, 20), 1, cv2.LINE_AA)
        frames = [np.pad(record.video[i], ((1, 1), (1, 1), (0, 0)), constant_values=255)[1:-1, 1:-1] for i in picks]
        for f in frames:  # thin white separators between frames
            f[:, -1] = 255
            f[-1, :] = 255
        rows.append(np.concatenate([label, *frames], axis=1))
    return np.concatenate(rows, axis=0)


def save_contact_sheet(out, **kwargs) -> Path:
    import cv2

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"contact sheet output must be a .png file, got {out}")
    image = physics_contact_sheet(**kwargs)
    with atomic_path(out) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise ValueError(f"could not write {out}")
        os.chmod(tmp, readable_mode())
    return out
