"""Datasets over generated world folders (`cosmos-hf sim generate`) and a torch Dataset for training.

Every loader in `cosmos_hf.data` returns a `datasets.Dataset` with the same core columns:

    id, source, task, video (absolute path or None), frames (list of absolute image paths or None), caption,
    num_frames, fps, height, width

plus task columns: `actions` (T-1, 7) and `ee_states` (T, 7) for robot trajectories (task "push"),
`intrinsics` (3, 3, OpenCV pixels) and `cam_to_world` (T, 4, 4, OpenCV: x right, y down, z forward) for camera
data; simulated folders add their exact extras (objects, object tracks, masks path, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch.utils.data

CORE_COLUMNS = ("id", "source", "task", "video", "frames", "caption", "num_frames", "fps", "height", "width")
TASK_COLUMNS = ("actions", "ee_states", "intrinsics", "cam_to_world")


def _read_metadata(root: Path) -> list:
    meta = root / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{root} is not a generated world dataset (no metadata.jsonl); "
                                f"create one with `cosmos-hf sim generate --task ... --out {root}`")
    rows = []
    with open(meta, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{meta}:{line_no} is not valid JSON: {err}") from err
    if not rows:
        raise ValueError(f"{meta} lists no samples")
    return rows


def load_world_dataset(root, absolute_paths: bool = True):
    """A generated world folder as a `datasets.Dataset` (one row per clip, paths made absolute).

    Columns: the core columns above, the task columns that apply, and the simulator's extras (`objects`,
    `object_positions`, `masks`, `params` as a JSON string, ...).
    """
    import datasets

    root = Path(root).resolve()
    rows = _read_metadata(root)
    out = []
    for row in rows:
        row = dict(row)
        row["source"] = "sim"
        row["frames"] = None
        if absolute_paths:
            for key in ("video", "masks"):
                row[key] = str(root / row[key])
            if "view_videos" in row:
                row["view_videos"] = [str(root / p) for p in row["view_videos"]]
            if "videos" in row:  # the Bridge-format copy of the video path
                row["videos"] = [{"video_path": str(root / v["video_path"])} for v in row["videos"]]
        out.append(row)
    return datasets.Dataset.from_list(out)


def _resize_frames(frames: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
    import cv2

    if frames.shape[1:3] == (height, width):
        return frames
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return np.stack([cv2.resize(f, (width, height), interpolation=interp) for f in frames])


def _read_image_frames(paths) -> np.ndarray:
    import cv2

    frames = []
    for p in paths:
        image = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read image frame {p}")
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return np.stack(frames)


class WorldVideoDataset(torch.utils.data.Dataset):
    """torch Dataset over a generated world folder or any `datasets.Dataset` in the common schema.

    Each item: {"video": float32 [3, T, H, W] in [-1, 1] (multiview folders: [V, 3, T, H, W]), "caption": str,
    "id": str, "task": str} plus the tensors that apply: "actions" [T-1, 7] (times `action_scale`),
    "ee_states" [T, 7], "intrinsics" [3, 3] (rescaled with the frames), "cam_to_world" [T, 4, 4],
    "object_positions" [T, N, 3], and "masks" int64 [T, H, W] when `include_masks` (simulated folders).

    Args:
        source: folder path (`cosmos-hf sim generate` output) or a `datasets.Dataset`.
        num_frames: take the first `num_frames` frames (starting at `start_frame`); None = all.
        height, width: resize frames (area interpolation; masks nearest); None = keep.
        action_scale: multiply actions (the reference scales Bridge xyz/rpy deltas by 20).
    """

    def __init__(self, source, num_frames: int | None = None, height: int | None = None, width: int | None = None,
                 include_masks: bool = False, action_scale=1.0, start_frame: int = 0):
        if isinstance(source, (str, Path)):
            source = load_world_dataset(source)
        self.data = source
        self.num_frames, self.height, self.width = num_frames, height, width
        self.include_masks, self.start_frame = include_masks, start_frame
        self.action_scale = np.asarray(action_scale, dtype=np.float32)
        if num_frames is not None and num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if (height is None) != (width is None):
            raise ValueError("give both height and width to resize, or neither")

    def __len__(self):
        return len(self.data)

    def _window(self, total: int, row_id: str):
        t0 = self.start_frame
        t1 = total if self.num_frames is None else t0 + self.num_frames
        if t1 > total:
            raise ValueError(f"sample {row_id} has {total} frames; cannot take {self.num_frames} from frame {t0}")
        return t0, t1

    def _load_frames(self, row, video_path=None) -> np.ndarray:
        from .video_io import read_video

        if video_path is not None:
            return read_video(video_path)[0]
        if row.get("video"):
            return read_video(row["video"])[0]
        if row.get("frames"):
            return _read_image_frames(row["frames"])
        raise ValueError(f"sample {row.get('id')} has neither a video nor frames")

    def _to_tensor(self, frames):
        import torch

        if self.height is not None:
            frames = _resize_frames(frames, self.height, self.width)
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 127.5 - 1.0

    def __getitem__(self, index):
        import torch

        row = self.data[int(index)]
        if row.get("view_videos"):
            views = [self._load_frames(row, p) for p in row["view_videos"]]
            t0, t1 = self._window(len(views[0]), row["id"])
            video = torch.stack([self._to_tensor(v[t0:t1]) for v in views])
            src_h, src_w = views[0].shape[1:3]
        else:
            frames = self._load_frames(row)
            t0, t1 = self._window(len(frames), row["id"])
            video = self._to_tensor(frames[t0:t1])
            src_h, src_w = frames.shape[1:3]
        item = {"video": video, "caption": row.get("caption") or "", "id": row["id"], "task": row.get("task")}
        if row.get("actions") is not None:
            actions = np.asarray(row["actions"], np.float32)[t0:t1 - 1] * self.action_scale
            item["actions"] = torch.from_numpy(np.ascontiguousarray(actions, dtype=np.float32))
        if row.get("ee_states") is not None:
            item["ee_states"] = torch.tensor(np.asarray(row["ee_states"], np.float32)[t0:t1])
        if row.get("intrinsics") is not None:
            K = np.asarray(row["intrinsics"], np.float64).copy()
            if self.height is not None:  # pixel-centre-aware rescale of an OpenCV K
                sx, sy = self.width / src_w, self.height / src_h
                K[0, 0] *= sx
                K[1, 1] *= sy
                K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
                K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
            item["intrinsics"] = torch.tensor(K, dtype=torch.float32)
        if row.get("cam_to_world") is not None:
            poses = np.asarray(row["cam_to_world"], np.float32)
            item["cam_to_world"] = torch.tensor(poses[..., t0:t1, :, :])
        if row.get("object_positions") is not None:
            item["object_positions"] = torch.tensor(np.asarray(row["object_positions"], np.float32)[t0:t1])
        if self.include_masks:
            if not row.get("masks"):
                raise ValueError(f"sample {row['id']} has no masks (only simulated folders do)")
            with np.load(row["masks"], allow_pickle=False) as archive:
                masks = archive["masks"]
            masks = masks[..., t0:t1, :, :]
            if self.height is not None:
                flat = masks.reshape(-1, *masks.shape[-2:])
                flat = _resize_frames(flat, self.height, self.width, nearest=True)
                masks = flat.reshape(*masks.shape[:-2], self.height, self.width)
            item["masks"] = torch.from_numpy(masks.astype(np.int64))
        return item
