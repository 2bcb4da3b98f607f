"""Physics-world datasets for post-training Video2World models: robot actions, camera poses, multi-camera rigs.

Every clip is simulated once, up front (`simulate_clips`, a process pool when `workers > 1`), and kept in memory as
uint8 frames plus its exact conditioning signal; clip `i` is simulator seed `seed_offset + i`, so other seeds are
held out for evaluation (`training/report_post_trained.py`). Items (tensors, float32):

* `PushActionClips` (the Bridge analogue, `cosmos_hf.sim.simulate_push`): `video` [3, T, H, W] in [-1, 1],
  `actions` [T-1, 7] (Bridge-format end-effector deltas: action t takes frame t to frame t+1), `caption`;
* `CameraClips` (`simulate_camera`: orbit / dolly / pan around a still scene): `video`, `cam_to_world` [T, 4, 4]
  (OpenCV, exact per frame), `intrinsics` [3, 3] (pixels at the clip's size), `caption`;
* `MultiViewClips` (`simulate_multiview`: a rig of V synchronised cameras): `video` [V, 3, T, H, W], `captions`
  (one per view: the camera's name + the clip's caption), `trajectory` [T, 3] (the rig's path in its frame-0
  coordinates: x forward, y left, z up, metres), `cam_to_world` [V, T, 4, 4], `intrinsics` [3, 3].

`collate_post_training` stacks tensors and keeps captions as lists (multiview: a list of per-view lists).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import torch
from torch.utils.data import Dataset

PUSH_POLICIES = ("random", "scripted", "goal")
# the one prompt of action-conditioned training with `captions=False` and the action pipeline's default prompt: the
# actions, not a caption, say what happens (the guardrail refuses an empty prompt, so it is not empty)
ACTION_PROMPT = "A robot gripper moves over a table with objects."
PUSH_VIEWS = 4


def _simulate_one(job):
    """One clip as plain arrays (what crosses the process boundary): video uint8 + the conditioning arrays."""
    task, seed, num_frames, height, width, fps, options = job
    from cosmos_hf import sim

    if task == "push":
        record = sim.simulate_push(seed=seed, num_frames=num_frames, height=height, width=width, fps=fps, **options)
        extras = {"actions": record.extras["actions"].astype(np.float32)}
    elif task == "camera":
        record = sim.simulate_camera(seed=seed, num_frames=num_frames, height=height, width=width, fps=fps, **options)
        extras = {"cam_to_world": record.cam_to_world.astype(np.float32),
                  "intrinsics": record.intrinsics.astype(np.float32), "scene_caption": record.extras["scene_caption"]}
    elif task == "multiview":
        record = sim.simulate_multiview(seed=seed, num_frames=num_frames, height=height, width=width, fps=fps,
                                        **options)
        rig = record.extras["rig_to_world"]
        # the rig's path in its own frame-0 coordinates (x forward, y left, z up), what a planner would hand over
        start_inverse = np.linalg.inv(rig[0])
        path = np.einsum("ij,tj->ti", start_inverse, np.concatenate([rig[:, :3, 3], np.ones((len(rig), 1))], 1))
        extras = {"trajectory": path[:, :3].astype(np.float32), "cam_to_world": record.cam_to_world.astype(np.float32),
                  "intrinsics": record.intrinsics.astype(np.float32),
                  "camera_names": list(record.extras["camera_names"]), "scene_caption": record.extras["scene_caption"]}
    else:
        raise ValueError(f"unknown post-training task {task!r}; choose push, camera or multiview")
    return {"video": record.video, "caption": record.caption, "seed": int(seed), **extras}


def simulate_clips(task: str, seeds, num_frames: int, height: int, width: int, fps: float, options_per_clip=None,
                   workers: int | None = None) -> list[dict]:
    """Simulate one clip per seed (in a process pool when `workers` > 1; `None` = all CPU cores).

    Results do not depend on `workers`: clip i is a function of its seed and options only.
    """
    seeds = [int(s) for s in seeds]
    options_per_clip = options_per_clip or [{} for _ in seeds]
    jobs = [(task, seed, num_frames, height, width, fps, options) for seed, options in zip(seeds, options_per_clip)]
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1 (or None for all CPU cores), got {workers}")
    workers = min(workers, len(jobs))
    if workers <= 1:
        return [_simulate_one(job) for job in jobs]
    # spawn: a clean interpreter per worker (no inherited pybullet clients or torch threads)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_simulate_one, jobs, chunksize=max(1, min(16, len(jobs) // (4 * workers)))))


def _frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 [..., T, H, W, 3] -> float [..., 3, T, H, W] in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).float() / 127.5 - 1.0
    return tensor.movedim(-1, -4)


def _check_common(num_clips, num_frames, height, width, fps):
    if not isinstance(num_clips, (int, np.integer)) or num_clips < 1:
        raise ValueError(f"num_clips must be a positive integer, got {num_clips!r}")
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 2:
        raise ValueError(f"num_frames must be an integer >= 2 (a conditioning frame and a predicted one), "
                         f"got {num_frames!r}")
    from cosmos_hf.sim.world import check_frames, check_size

    check_size(height, width)
    check_frames(num_frames, fps)


class PushActionClips(Dataset):
    """Pushing-task clips with their 7-D actions; policies cycle random / scripted / goal, then the 4 views."""

    def __init__(self, num_clips: int, num_frames: int = 17, height: int = 64, width: int = 64, fps: float = 8.0,
                 seed_offset: int = 0, policies=PUSH_POLICIES, views=range(PUSH_VIEWS), workers: int | None = None,
                 captions: bool = True):
        _check_common(num_clips, num_frames, height, width, fps)
        policies, views = list(policies), [int(v) for v in views]
        unknown = sorted(set(policies) - set(PUSH_POLICIES))
        if unknown or not policies:
            raise ValueError(f"push policies must be a non-empty subset of {list(PUSH_POLICIES)}, got {policies}")
        if not views or any(not 0 <= v < PUSH_VIEWS for v in views):
            raise ValueError(f"push views must be a non-empty list of views in 0..{PUSH_VIEWS - 1}, got {views}")
        options = [{"policy": policies[i % len(policies)], "view": views[(i // len(policies)) % len(views)]}
                   for i in range(num_clips)]
        self.clips = simulate_clips("push", range(seed_offset, seed_offset + num_clips), num_frames, height, width,
                                    fps, options, workers)
        self.captions = bool(captions)

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        clip = self.clips[index]
        # captions=False: ACTION_PROMPT for every clip (the action pipeline's default prompt)
        caption = clip["caption"] if self.captions else ACTION_PROMPT
        return {"video": _frames_to_tensor(clip["video"]), "caption": caption,
                "actions": torch.from_numpy(clip["actions"])}


CAPTION_STYLES = ("full", "scene")


def _check_caption_style(captions: str) -> str:
    if captions not in CAPTION_STYLES:
        raise ValueError(f"captions must be 'full' (the simulator's caption, which says how the camera moves) or "
                         f"'scene' (what is seen only: the poses or trajectory say how it moves), got {captions!r}")
    return captions


class CameraClips(Dataset):
    """Still scenes filmed along orbit / dolly / pan paths (the trajectory drawn from each seed unless given)."""

    def __init__(self, num_clips: int, num_frames: int = 17, height: int = 64, width: int = 64, fps: float = 12.0,
                 seed_offset: int = 0, trajectory: str | None = None, workers: int | None = None,
                 captions: str = "full"):
        _check_common(num_clips, num_frames, height, width, fps)
        self.captions = _check_caption_style(captions)
        from cosmos_hf.sim import TRAJECTORIES

        if trajectory is not None and trajectory not in TRAJECTORIES:
            raise ValueError(f"unknown camera trajectory {trajectory!r}; choose one of {', '.join(TRAJECTORIES)}")
        options = [{"trajectory": trajectory} for _ in range(num_clips)]
        self.clips = simulate_clips("camera", range(seed_offset, seed_offset + num_clips), num_frames, height, width,
                                    fps, options, workers)

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        clip = self.clips[index]
        caption = clip["scene_caption"] if self.captions == "scene" else clip["caption"]
        return {"video": _frames_to_tensor(clip["video"]), "caption": caption,
                "cam_to_world": torch.from_numpy(clip["cam_to_world"]),
                "intrinsics": torch.from_numpy(clip["intrinsics"])}


def view_caption(camera_name: str, caption: str) -> str:
    """Per-view caption: which camera of the rig this is, then what happens (the reference prompts each view)."""
    return f"The {camera_name.replace('_', ' ')} camera view. {caption}"


class MultiViewClips(Dataset):
    """A rig of `num_views` synchronised cameras driving among moving objects (6 = the paper's layout)."""

    def __init__(self, num_clips: int, num_views: int = 6, num_frames: int = 17, height: int = 64, width: int = 64,
                 fps: float = 12.0, seed_offset: int = 0, workers: int | None = None, captions: str = "full"):
        _check_common(num_clips, num_frames, height, width, fps)
        self.captions = _check_caption_style(captions)
        if not isinstance(num_views, (int, np.integer)) or not 1 <= num_views <= 12:
            raise ValueError(f"num_views must be an integer between 1 and 12, got {num_views!r}")
        options = [{"num_cameras": int(num_views)} for _ in range(num_clips)]
        self.num_views = int(num_views)
        self.clips = simulate_clips("multiview", range(seed_offset, seed_offset + num_clips), num_frames, height,
                                    width, fps, options, workers)

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, index):
        clip = self.clips[index]
        return {"video": _frames_to_tensor(clip["video"]),
                "caption": [view_caption(name, clip["scene_caption" if self.captions == "scene" else "caption"])
                            for name in clip["camera_names"]],
                "trajectory": torch.from_numpy(clip["trajectory"]),
                "cam_to_world": torch.from_numpy(clip["cam_to_world"]),
                "intrinsics": torch.from_numpy(clip["intrinsics"])}


def collate_post_training(items: list[dict]) -> dict:
    """Stack every tensor field; captions stay lists (per clip: a string, or a list of per-view strings)."""
    batch = {}
    for key in items[0]:
        values = [item[key] for item in items]
        batch[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return batch


POST_TRAINING_TASKS = {"action": "push", "camera": "camera", "multiview": "multiview"}


def build_post_training_dataset(condition: str, data: dict, num_views: int | None = None):
    """The dataset of a `train_diffusion.py --condition` run from its `data` config section.

    Keys used: num_clips, num_frames, height, width, fps, seed_offset, sim_workers (None = all cores), and per
    condition: push_policies / push_views (action), camera_trajectory (camera), captions (action: true, or false
    for one fixed prompt; camera and multiview: "full" or true, or "scene" for captions without the motion);
    multiview takes `num_views`.
    """
    common = dict(num_clips=int(data["num_clips"]), num_frames=int(data["num_frames"]), height=int(data["height"]),
                  width=int(data["width"]), fps=float(data["fps"]), seed_offset=int(data.get("seed_offset") or 0),
                  workers=data.get("sim_workers"))
    if condition == "action":
        return PushActionClips(policies=data.get("push_policies") or PUSH_POLICIES,
                               views=data.get("push_views") or range(PUSH_VIEWS),
                               captions=data.get("captions", True) is not False, **common)
    captions = data.get("captions", True)
    captions = "full" if captions is True else captions  # camera / multiview: true = the simulator's captions
    if condition == "camera":
        return CameraClips(trajectory=data.get("camera_trajectory"), captions=captions, **common)
    if condition == "multiview":
        if num_views is None:
            raise ValueError("the multiview dataset needs num_views (the model's number of views)")
        return MultiViewClips(num_views=num_views, captions=captions, **common)
    raise ValueError(f"condition must be one of {sorted(POST_TRAINING_TASKS)}, got {condition!r}")
