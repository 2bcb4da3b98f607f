"""Clip archives, the writing side: physics clips simulated once into one compressed `.npz` (`cosmos-hf sim
export-clips`). The format and the reader (`ClipArchive`) are in `cosmos_hf.data.clip_archive`; this half lives in the
simulator because `cosmos_hf.data` imports the simulator, never the other way round.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ARCHIVE_KEYS = ("video", "caption", "scene", "view", "seed", "fps")


def simulate_clip_archive(path, num_clips: int, num_frames: int = 17, height: int = 64, width: int = 64,
                          fps: float = 12.0, seed_offset: int = 0, views=(0, 1, 2, 3), scenes=None,
                          progress: bool = True, overwrite: bool = False, workers: int = 1) -> Path:
    """Simulate `num_clips` physics-world clips (clip i: seed `seed_offset + i`, scene and view by the physics
    dataset's rule) and write them as a clip archive at `path` (temp file + rename). `workers` > 1 simulates in
    parallel processes; the archive is byte-identical to a serial run (each clip depends only on its own seed)."""
    from . import physics_scenes
    from .dataset import physics_scene_and_view

    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if seed_offset < 0:  # numpy's seeding refused it only inside the first clip, without naming the option
        raise ValueError(f"seed_offset must be >= 0 (clip i uses seed seed_offset + i), got {seed_offset}")
    views = [int(v) for v in views]
    if not views or any(not 0 <= v <= 3 for v in views):
        raise ValueError(f"views must be a non-empty list of camera views in 0..3, got {views}")
    scenes = list(scenes or physics_scenes.SCENES)
    unknown = sorted(set(scenes) - set(physics_scenes.SCENES))
    if unknown:
        raise ValueError(f"unknown physics scenes {unknown}; valid: {list(physics_scenes.SCENES)}")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"a clip archive is a .npz file, got {path}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")

    from tqdm.auto import tqdm

    jobs = []
    for index in range(num_clips):
        scene, view = physics_scene_and_view(index, scenes, views)
        jobs.append((scene, seed_offset + index, num_frames, height, width, fps, view))
    video = np.empty((num_clips, num_frames, height, width, 3), dtype=np.uint8)
    captions = []
    bar = tqdm(total=num_clips, desc="simulating clips", unit="clip", disable=not progress)
    if workers == 1:
        results = map(_simulate_one, jobs)
    else:
        from concurrent.futures import ProcessPoolExecutor

        from .dataset import _process_context

        pool = ProcessPoolExecutor(max_workers=workers, mp_context=_process_context())
        results = pool.map(_simulate_one, jobs, chunksize=max(1, min(16, num_clips // (4 * workers))))
    try:
        for index, (clip, caption) in enumerate(results):
            video[index] = clip
            captions.append(caption)
            bar.update()
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)
        bar.close()
    scene_names = [job[0] for job in jobs]
    view_ids = [job[-1] for job in jobs]
    write_clip_archive(path, video, captions, scene=scene_names, view=view_ids,
                       seed=np.arange(seed_offset, seed_offset + num_clips), fps=fps)
    return path


def _simulate_one(job):
    from . import physics_scenes

    scene, seed, num_frames, height, width, fps, view = job
    record = physics_scenes.simulate(scene, seed=seed, num_frames=num_frames, height=height, width=width, fps=fps,
                                     view=view)
    return record.video, record.caption


def write_clip_archive(path, video: np.ndarray, captions, scene, view, seed, fps: float) -> Path:
    """Write a clip archive (see the module docstring) atomically: readers never see a half-written file."""
    from ..utils import atomic_path

    video = np.asarray(video)
    if video.dtype != np.uint8 or video.ndim != 5 or video.shape[-1] != 3:
        raise ValueError(f"video must be uint8 [N, T, H, W, 3], got {video.dtype} {tuple(video.shape)}")
    arrays = {"video": video, "caption": np.asarray(list(captions), dtype=str), "scene": np.asarray(list(scene), dtype=str),
              "view": np.asarray(list(view), dtype=np.int64), "seed": np.asarray(list(seed), dtype=np.int64),
              "fps": np.asarray(float(fps))}
    for name in ("caption", "scene", "view", "seed"):
        if arrays[name].shape != (len(video),):
            raise ValueError(f"{name} must have one entry per clip ({len(video)}), got shape {arrays[name].shape}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:  # a file object: np.savez would append .npz to a temp name without it
            np.savez_compressed(handle, **arrays)
    return Path(path)
