"""Write simulator records as datasets: the videos/ + metas/ layout, per-sample JSON, masks, webdataset shards.

Layout of a generated folder (sample ids are zero-padded indices, e.g. `000012`):

    videos/{id}.mp4            H.264 clip (multiview: the front camera)
    metas/{id}.txt             caption (the layout Cosmos and diffusers training scripts read)
    annotations/{id}.json      everything else: objects, intrinsics, cam_to_world, object tracks, actions, ...
    masks/{id}.npz             masks (uint8 object ids) and depth (float16 metres), plus goal_image for push
    views/{camera}/{id}.mp4    multiview only: one clip per rig camera
    shards/{task}-{k:06d}.tar  webdataset shards: {id}.mp4 / .txt / .json / .npz (+ {id}.{camera}.mp4)
    metadata.jsonl             one row per sample (the annotation, `params` as a JSON string)
    README.md                  dataset card; its YAML makes `datasets.load_dataset(folder)` read metadata.jsonl

Sample i is simulated from a seed derived from (seed, i) only, so serial and parallel generation write
byte-identical files.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..utils import atomic_path, check_output_dir
from .physics_scenes import NUM_VIEWS, SCENES

TASKS = ("physics", "push", "camera", "multiview")
DEFAULT_FPS = {"physics": 24.0, "push": 8.0, "camera": 24.0, "multiview": 24.0}
# Simulator seeds below these are held out for evaluation: the nano training configs draw their clips from
# `data.seed_offset: 1000` (physics world: tokenizers, Video2World, Text2World, AR) and 10000 (post-training tasks).
HELD_OUT_SEEDS = {"physics": 1000, "post_training": 10000}


def check_held_out_clip_count(count: int, held_out: int, option: str = "--clips"):
    """A held-out report scores clip i on simulator seed i: refuse more clips than the `held_out` seeds below the
    training clips', which would score training clips as held-out ones."""
    if count > held_out:
        raise ValueError(f"{option} must be <= {held_out} (seeds from {held_out} on are training clips), got {count}")


def readable_mode(directory: bool = False) -> int:
    """The mode a plain `open()` / `mkdir()` would give (0o666 / 0o777 minus the umask): atomic temp files and
    folders start out private (0o600 / 0o700)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def derive_seed(seed: int, index: int) -> int:
    """Per-sample seed: depends on the dataset seed and the sample index only (not on worker scheduling)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint32)[0])


def physics_scene_and_view(index: int, scenes, views=range(NUM_VIEWS)) -> tuple[str, int]:
    """Scene and camera view of physics clip `index`: scenes cycle fastest, then views, so every scene meets every
    view (the rule of the physics datasets, the nano training runs and their held-out reports)."""
    scenes, views = list(scenes), list(views)
    return scenes[index % len(scenes)], views[(index // len(scenes)) % len(views)]


def sample_spec(task: str, index: int, seed: int, scenes=None, policy=None, trajectory=None, num_cameras=6) -> dict:
    """What sample `index` is: physics cycles scenes then views (balanced); other tasks draw from the seed."""
    spec = {"id": f"{index:06d}", "index": index, "task": task, "seed": derive_seed(seed, index)}
    if task == "physics":
        spec["scene"], spec["view"] = physics_scene_and_view(index, scenes or SCENES)
    elif task == "push":
        spec["policy"] = policy or ("random", "scripted", "goal")[index % 3]
        spec["view"] = (index // 3) % 4
    elif task == "camera":
        spec["trajectory"] = trajectory
    elif task == "multiview":
        spec["num_cameras"] = num_cameras
    return spec


def simulate_spec(spec: dict, num_frames: int, height: int, width: int, fps: float):
    from .camera_task import simulate_camera
    from .multiview import simulate_multiview
    from .physics_scenes import simulate
    from .push import simulate_push

    common = {"seed": spec["seed"], "num_frames": num_frames, "height": height, "width": width, "fps": fps}
    if spec["task"] == "physics":
        return simulate(spec["scene"], view=spec["view"], **common)
    if spec["task"] == "push":
        return simulate_push(policy=spec["policy"], view=spec["view"], **common)
    if spec["task"] == "camera":
        return simulate_camera(trajectory=spec.get("trajectory"), **common)
    if spec["task"] == "multiview":
        return simulate_multiview(num_cameras=spec["num_cameras"], **common)
    raise ValueError(f"unknown task {spec['task']!r}; choose one of {', '.join(TASKS)}")


def _rounded(array, decimals=6):
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()


def record_to_annotation(record, sample_id: str) -> dict:
    """The per-sample JSON: every exact quantity of the record except the pixel arrays."""
    T = record.num_frames
    height, width = record.video.shape[-3:-1]
    ann = {
        "id": sample_id,
        "task": record.task,
        "scene": record.scene,
        "view": record.view,
        "seed": record.seed,
        "caption": record.caption,
        "fps": record.fps,
        "num_frames": T,
        "height": int(height),
        "width": int(width),
        "video": f"videos/{sample_id}.mp4",
        "masks": f"masks/{sample_id}.npz",
        "objects": record.objects,
        "intrinsics": _rounded(record.intrinsics),
        "cam_to_world": _rounded(record.cam_to_world),
        "object_positions": _rounded(record.object_positions),
        "object_orientations": _rounded(record.object_orientations),
        "params": record.params,
    }
    ex = record.extras
    if record.task == "push":
        states = np.asarray(ex["ee_states"], np.float64)
        ann.update({
            "policy": ex["policy"],
            "actions": _rounded(ex["actions"]),
            "ee_states": _rounded(states),
            "goal_object_positions": _rounded(ex["goal_object_positions"]),
            "target_object_id": ex["target_object_id"],
            # The keys of the reference's Bridge annotation files, so its loaders read these episodes too.
            "episode_id": sample_id,
            "texts": [record.caption],
            "state": _rounded(states[:, :6]),
            "continuous_gripper_state": _rounded(states[:, 6]),
            "videos": [{"video_path": f"videos/{sample_id}.mp4"}],
        })
    if record.task == "camera":
        ann["trajectory"] = ex["trajectory"]
    if record.task == "multiview":
        ann.update({
            "camera_names": list(ex["camera_names"]),
            "camera_to_rig": _rounded(ex["camera_to_rig"]),
            "rig_to_world": _rounded(ex["rig_to_world"]),
            "view_videos": [f"views/{name}/{sample_id}.mp4" for name in ex["camera_names"]],
        })
    return ann


def _deterministic_npz(path, arrays: dict) -> None:
    """np.savez_compressed stamps the current time into the zip; write one with fixed timestamps instead."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, value in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.ascontiguousarray(value), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, buffer.getvalue())
        os.chmod(tmp, readable_mode())


def _write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
        os.chmod(tmp, readable_mode())


def write_record(record, root, sample_id: str) -> dict:
    """Write one record's files under `root`; returns its annotation (the metadata row)."""
    from ..video_io import write_video

    root = Path(root)
    ann = record_to_annotation(record, sample_id)
    videos = {ann["video"]: record.video[0] if record.task == "multiview" else record.video}
    if record.task == "multiview":
        videos.update({f"views/{name}/{sample_id}.mp4": record.video[v]
                       for v, name in enumerate(record.extras["camera_names"])})
    for rel, frames in videos.items():
        write_video(root / rel, frames, fps=record.fps)
        os.chmod(root / rel, readable_mode())
    _write_text(root / "metas" / f"{sample_id}.txt", record.caption + "\n")
    arrays = {"masks": record.masks, "depth": record.depth.astype(np.float16)}
    if record.task == "push":
        arrays["goal_image"] = record.extras["goal_image"]
    _deterministic_npz(root / ann["masks"], arrays)
    _write_text(root / "annotations" / f"{sample_id}.json", json.dumps(ann) + "\n")
    return ann


def _generate_one(job):
    spec, root, num_frames, height, width, fps = job
    record = simulate_spec(spec, num_frames, height, width, fps)
    return write_record(record, root, spec["id"])


def _tar_add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
    archive.addfile(info, io.BytesIO(data))


def write_shards(root, rows: list, task: str, shard_size: int) -> list:
    """Pack samples into webdataset tar shards (deterministic: fixed mtimes/owners, sample order)."""
    root = Path(root)
    shards = []
    for k in range(0, len(rows), shard_size):
        path = root / "shards" / f"{task}-{k // shard_size:06d}.tar"
        with atomic_path(path) as tmp:
            with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as archive:
                for row in rows[k:k + shard_size]:
                    sid = row["id"]
                    _tar_add(archive, f"{sid}.mp4", (root / row["video"]).read_bytes())
                    _tar_add(archive, f"{sid}.txt", (root / "metas" / f"{sid}.txt").read_bytes())
                    _tar_add(archive, f"{sid}.json", (root / "annotations" / f"{sid}.json").read_bytes())
                    _tar_add(archive, f"{sid}.npz", (root / row["masks"]).read_bytes())
                    for name, view_path in zip(row.get("camera_names", []), row.get("view_videos", [])):
                        _tar_add(archive, f"{sid}.{name}.mp4", (root / view_path).read_bytes())
            os.chmod(tmp, readable_mode())
        shards.append(str(path.relative_to(root)))
    return shards


DATASET_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: metadata.jsonl
tags:
- cosmos-hf
- physics-simulation
- world-model
---
# cosmos-hf simulated world: {task}

{num} samples of {frames} frames at {height}x{width}, {fps:g} fps, generated by `cosmos_hf.sim` (pybullet,
TinyRenderer) with seed {seed}.

Command: `{command}`

Load with `cosmos_hf.data.load_world_dataset(folder)` (absolute paths, a `datasets.Dataset`),
`datasets.load_dataset(folder)` (reads metadata.jsonl), or the webdataset shards in `shards/`.
Cameras are OpenCV-convention (x right, y down, z forward); `intrinsics` are pixels; masks hold object ids
(0 = background) matching `objects`.
"""


def parse_size(size: str):
    """'HxW' -> (H, W) with a clear error."""
    try:
        height, width = (int(v) for v in str(size).lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like HxW (e.g. 64x64), got {size!r}") from None
    return height, width


def _process_context():
    """forkserver where available (a clean process that imports this module once, then forks cheap workers from
    it: no inherited threads, no per-worker import cost), else spawn. Results never depend on it."""
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return get_context("spawn")


def generate_dataset(task: str, num: int, out, num_frames: int = 16, height: int = 64, width: int = 64,
                     seed: int = 0, fps: float | None = None, workers: int = 1, shard_size: int = 100,
                     scenes=None, policy: str | None = None, trajectory: str | None = None, num_cameras: int = 6,
                     overwrite: bool = False, progress: bool = True, command: str | None = None) -> Path:
    """Simulate `num` samples of `task` and write them to `out` (see the module docstring for the layout).

    The folder is built under a temporary name and renamed into place at the end, so an interrupted run never
    leaves a half-written dataset at `out`. `workers` > 1 runs samples in parallel processes (forkserver, else spawn); the files are
    identical to a serial run.
    """
    from tqdm.auto import tqdm

    from .camera_task import TRAJECTORIES
    from .push import POLICIES
    from .world import check_frames, check_size

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"--num must be a positive integer, got {num!r}")
    fps = float(fps) if fps is not None else DEFAULT_FPS[task]
    check_frames(num_frames, fps)
    check_size(height, width)
    if task == "push" and num_frames < 2:
        raise ValueError("the push task needs --frames >= 2 (actions link consecutive frames)")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if shard_size < 1:
        raise ValueError(f"--shard-size must be >= 1, got {shard_size}")
    # An option of another task used to be ignored without a word (`--task push --scenes dominoes` gave push clips
    # of every policy as if nothing had been asked).
    foreign = [name for name, value, owner in (("--scenes", scenes, "physics"), ("--policy", policy, "push"),
                                               ("--trajectory", trajectory, "camera"))
               if value is not None and task != owner]
    if num_cameras != 6 and task != "multiview":
        foreign.append("--num-cameras")
    if foreign:
        raise ValueError(f"{', '.join(foreign)} do(es) not apply to --task {task}: --scenes is for physics, --policy "
                         "for push, --trajectory for camera, --num-cameras for multiview")
    if scenes:
        unknown = [s for s in scenes if s not in SCENES]
        if unknown:
            raise ValueError(f"unknown scene(s) {', '.join(unknown)}; choose from {', '.join(SCENES)}")
    if policy is not None and policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if trajectory is not None and trajectory not in TRAJECTORIES:
        raise ValueError(f"unknown camera trajectory {trajectory!r}; choose one of {', '.join(TRAJECTORIES)}")
    out = Path(out)
    # The folder is replaced as a whole: `--out . --overwrite` (or the working directory's path, or a folder above
    # it) deleted the working directory's files. check_output_dir refuses that and a file at `out` (emptiness is
    # checked below, with this command's own message).
    check_output_dir(out, overwrite=True)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"output folder {out} exists and is not empty (pass --overwrite to replace it)")

    specs = [sample_spec(task, i, seed, scenes, policy, trajectory, num_cameras) for i in range(num)]
    with atomic_path(out, is_dir=True) as tmp:
        jobs = [(spec, str(tmp), num_frames, height, width, fps) for spec in specs]
        bar = tqdm(total=num, desc=f"sim {task}", unit="clip", disable=not progress)
        if workers == 1:
            rows = []
            for job in jobs:
                rows.append(_generate_one(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=_process_context()) as pool:
                rows = []
                for row in pool.map(_generate_one, jobs, chunksize=max(1, min(8, num // (4 * workers)))):
                    rows.append(row)
                    bar.update()
        bar.close()
        write_shards(tmp, rows, task, shard_size)
        with atomic_path(Path(tmp) / "metadata.jsonl") as meta_tmp:
            with open(meta_tmp, "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps({**row, "params": json.dumps(row["params"], sort_keys=True)}) + "\n")
            os.chmod(meta_tmp, readable_mode())
        command = command or (f"cosmos-hf sim generate --task {task} --num {num} --frames {num_frames} "
                              f"--size {height}x{width} --seed {seed} --out {out}")
        _write_text(Path(tmp) / "README.md", DATASET_CARD.format(task=task, num=num, frames=num_frames, height=height,
                                                                 width=width, fps=fps, seed=seed, command=command))
        os.chmod(tmp, readable_mode(directory=True))  # mkdtemp creates 0o700 folders
    return out
