"""`WorldRecord`: what every simulator task returns (arrays in memory; `cosmos_hf.sim.dataset` writes them out)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


@dataclass
class WorldRecord:
    """One simulated clip with exact ground truth.

    Shapes (T frames, N objects, H x W pixels; multiview records add a leading view axis V to `video`,
    `masks`, `depth` and `cam_to_world`):
      video            (T, H, W, 3) uint8 RGB
      masks            (T, H, W) uint8 object ids: 0 = background/floor, k = objects[k-1]
      depth            (T, H, W) float32 z-depth in metres (0 = nothing hit)
      object_positions (T, N, 3) float32 world positions (metres, z up) of each object's frame origin
      object_orientations (T, N, 4) float32 quaternions (x, y, z, w)
      intrinsics       (3, 3) float64 OpenCV K in pixels
      cam_to_world     (T, 4, 4) float64 OpenCV camera-to-world (x right, y down, z forward)
      objects          list of dicts: id, name, shape, color, rgb, mass, size, static
      caption          a sentence generated from the scene parameters and what happened
      extras           task-specific arrays (push: actions (T-1, 7), ee_states (T, 7), goal_object_positions;
                       multiview: rig_to_world (T, 4, 4), camera_to_rig (V, 4, 4), camera_names; camera and
                       multiview: scene_caption, the caption without the camera's or rig's motion)
    Fields are also readable as `record["video"]`.
    """

    task: str
    scene: str
    seed: int
    view: int
    fps: float
    video: np.ndarray
    masks: np.ndarray
    depth: np.ndarray
    object_positions: np.ndarray
    object_orientations: np.ndarray
    intrinsics: np.ndarray
    cam_to_world: np.ndarray
    objects: list
    caption: str
    params: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    def __getitem__(self, key):
        if key in self.extras:
            return self.extras[key]
        if key in {f.name for f in fields(self)}:
            return getattr(self, key)
        raise KeyError(key)

    def keys(self):
        return [f.name for f in fields(self)] + list(self.extras)

    @property
    def num_frames(self) -> int:
        return self.video.shape[-4]
