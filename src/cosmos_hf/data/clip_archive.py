"""Clip archives: physics-world clips simulated once into one compressed file, for training where the simulator is not.

A clip archive is a NumPy `.npz` (zlib, read with `allow_pickle=False`: nothing in it can execute) holding

- `video`: uint8 [N, T, H, W, 3], the clips;
- `caption`: unicode [N], one caption per clip;
- `scene`: unicode [N], `view`: int [N], `seed`: int [N], what each clip is (the physics dataset's rule:
  `cosmos_hf.sim.physics_scene_and_view`, seed = `seed_offset + index`);
- `fps`: float [], the frame rate.

Rendered clips compress about 60x (flat colours), so 6,000 clips of 17 frames at 64x64 take 28 MB: small enough to
carry to a GPU machine that has no pybullet. `cosmos-hf sim export-clips` (`cosmos_hf.sim.clip_archive`) writes one;
the training scripts read it with `data.source: clips` (tokenizer) and `data.type: clips` (diffusion). An archive made with the same
`seed_offset`, `views` and size holds exactly the clips that `data.type: physics` simulates on the fly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..sim.clip_archive import ARCHIVE_KEYS, simulate_clip_archive, write_clip_archive

__all__ = ["ARCHIVE_KEYS", "ClipArchive", "simulate_clip_archive", "write_clip_archive"]


class ClipArchive:
    """A clip archive loaded into memory (uint8): `len(archive)`, `archive.video(i)` [T,H,W,3], `archive.caption(i)`.

    Checks on load: every key present, shapes agree, no object arrays (np.load refuses pickles)."""

    def __init__(self, path):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"clip archive not found: {path} (write one with `cosmos-hf sim export-clips`)")
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = [key for key in ARCHIVE_KEYS if key not in archive.files]
                if missing:
                    raise ValueError(f"{path} is not a clip archive: missing {missing} (has {archive.files})")
                arrays = {key: archive[key] for key in ARCHIVE_KEYS}
        except ValueError as err:
            if "pickle" in str(err).lower():
                raise ValueError(f"{path} holds pickled objects; a clip archive never does, refusing to load it") from err
            raise
        video = arrays["video"]
        if video.dtype != np.uint8 or video.ndim != 5 or video.shape[-1] != 3:
            raise ValueError(f"{path}: video must be uint8 [N, T, H, W, 3], got {video.dtype} {tuple(video.shape)}")
        for name in ("caption", "scene", "view", "seed"):
            if arrays[name].shape != (len(video),):
                raise ValueError(f"{path}: {name} has shape {arrays[name].shape}, expected ({len(video)},)")
        self.path = path
        self.videos = video
        self.captions = [str(c) for c in arrays["caption"]]
        self.scenes = [str(s) for s in arrays["scene"]]
        self.views = arrays["view"].astype(int)
        self.seeds = arrays["seed"].astype(int)
        self.fps = float(arrays["fps"])

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def num_frames(self) -> int:
        return int(self.videos.shape[1])

    def video(self, index: int) -> np.ndarray:
        return self.videos[index]

    def caption(self, index: int) -> str:
        return self.captions[index]

    def check_matches(self, num_frames: int, height: int, width: int, fps: float | None = None) -> None:
        """Refuse an archive whose clips are shorter or smaller than a training config asks for, or at another fps."""
        _, frames, h, w, _ = self.videos.shape
        if frames < num_frames or h < height or w < width:
            raise ValueError(f"{self.path} holds {frames}x{h}x{w} clips; the config asks for {num_frames}x{height}x{width}")
        if fps is not None and abs(float(fps) - self.fps) > 1e-6:
            raise ValueError(f"{self.path} was simulated at {self.fps} fps; the config asks for {fps} fps")
