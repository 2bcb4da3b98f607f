"""Loaders for the real-world counterparts of the simulator's tasks, in the same schema as `load_world_dataset`.

- `load_video_caption_folder`: videos with captions (Cosmos' `videos/*.mp4` + `metas/*.txt`, or side-by-side
  `clip.mp4` + `clip.txt`).
- `load_bridge_trajectories`: robot trajectories with 7-D end-effector states -> Bridge-format actions, either
  annotation JSONs as used by Cosmos action-conditioned training (`state`, `continuous_gripper_state`, `videos`)
  or raw trajectory folders (`images0/im_*.jpg` + `states.npy` / `actions.npy`, `lang.txt`).
- `load_camera_trajectories`: RealEstate10K camera files (`*.txt`) or DL3DV / nerfstudio `transforms.json`
  scenes -> OpenCV intrinsics (pixels) and cam_to_world poses.

Pixel convention of the returned intrinsics: OpenCV (pixel (row i, col j) has its centre at (j, i)). RealEstate10K
and nerfstudio state principal points with pixel centres at +0.5, so 0.5 is subtracted from cx, cy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi", ".mkv")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _probe_video(path: Path):
    """(num_frames, fps, height, width) from the container, decoding only if the header has no frame count."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            frames = stream.frames or sum(1 for _ in container.decode(stream))
            return int(frames), fps, int(stream.height), int(stream.width)
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"cannot read video {path} (corrupt or unsupported): {err}") from err


def _image_size(path: Path):
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return int(image.shape[0]), int(image.shape[1])


def _row(id, source, task, video=None, frames=None, caption="", num_frames=None, fps=None, height=None, width=None,
         actions=None, ee_states=None, intrinsics=None, cam_to_world=None) -> dict:
    as_list = lambda a: None if a is None else np.asarray(a, dtype=np.float64).tolist()  # noqa: E731
    return {"id": id, "source": source, "task": task, "video": None if video is None else str(video),
            "frames": None if frames is None else [str(f) for f in frames], "caption": caption,
            "num_frames": num_frames, "fps": fps, "height": height, "width": width,
            "actions": as_list(actions), "ee_states": as_list(ee_states), "intrinsics": as_list(intrinsics),
            "cam_to_world": as_list(cam_to_world)}


def _dataset(rows, root):
    import datasets

    if not rows:
        raise ValueError(f"no samples found in {root}")
    return datasets.Dataset.from_list(rows)


def _check_dir(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"folder not found: {root}")
    return root.resolve()


# ----------------------------------------------------------------------------------------------- videos + captions


def load_video_caption_folder(root, require_captions: bool = True):
    """Videos with captions -> Dataset (task "video").

    Looks for `root/videos/<name>.<ext>` with `root/metas/<name>.txt` (the Cosmos layout); otherwise for videos
    anywhere under `root` with a `<name>.txt` beside them. A video without a caption is an error unless
    `require_captions=False` (then its caption is "").
    """
    root = _check_dir(root)
    cosmos_layout = (root / "videos").is_dir() and (root / "metas").is_dir()
    search = root / "videos" if cosmos_layout else root
    videos = sorted((p for p in search.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS), key=_natural_key)
    rows = []
    for video in videos:
        caption_path = (root / "metas" / video.relative_to(search)).with_suffix(".txt") if cosmos_layout \
            else video.with_suffix(".txt")
        if caption_path.is_file():
            caption = caption_path.read_text(encoding="utf-8").strip()
        elif require_captions:
            raise ValueError(f"no caption for {video} (expected {caption_path}); "
                             f"pass require_captions=False to allow empty captions")
        else:
            caption = ""
        num_frames, fps, height, width = _probe_video(video)
        rows.append(_row(str(video.relative_to(search).with_suffix("")), "video_folder", "video", video=video,
                         caption=caption, num_frames=num_frames, fps=fps, height=height, width=width))
    return _dataset(rows, root)


# ----------------------------------------------------------------------------------------------- Bridge


def _actions_from_states(states: np.ndarray) -> np.ndarray:
    from ..sim.push import actions_from_states

    return actions_from_states(states)


def _bridge_from_annotation(path: Path, root: Path, video_root: Path | None):
    ann = json.loads(path.read_text(encoding="utf-8"))
    if "state" not in ann:
        raise ValueError(f"{path} has no 'state' list (expected Bridge annotation JSON with state / videos)")
    arm = np.asarray(ann["state"], dtype=np.float64)
    if arm.ndim != 2 or arm.shape[1] < 6:
        raise ValueError(f"{path}: 'state' must be (T, 6+) xyz + rpy, got shape {arm.shape}")
    if "continuous_gripper_state" in ann:
        gripper = np.asarray(ann["continuous_gripper_state"], dtype=np.float64).reshape(-1)
    elif arm.shape[1] >= 7:
        gripper = arm[:, 6]
    else:
        raise ValueError(f"{path}: no gripper state ('continuous_gripper_state' or a 7th state column)")
    if len(gripper) != len(arm):
        raise ValueError(f"{path}: {len(arm)} states but {len(gripper)} gripper states")
    states = np.concatenate([arm[:, :6], gripper[:, None]], axis=1)
    videos = ann.get("videos") or []
    if not videos:
        raise ValueError(f"{path} lists no videos")
    rel = videos[0]["video_path"] if isinstance(videos[0], dict) else videos[0]
    candidates = [Path(rel)] if Path(rel).is_absolute() else [(video_root or root) / rel, path.parent / rel, root / rel]
    video = next((c for c in candidates if c.is_file()), None)
    if video is None:
        raise FileNotFoundError(f"{path}: video {rel} not found (looked in {', '.join(str(c.parent) for c in candidates)})")
    num_frames, fps, height, width = _probe_video(video)
    if num_frames != len(states):
        # state t is frame t's (action t takes frame t to t+1); other counts pair actions with the wrong frames
        raise ValueError(f"{path}: {video} has {num_frames} video frames but {len(states)} states (one per frame)")
    texts = ann.get("texts") or ann.get("instruction") or ann.get("language") or ""
    caption = texts[0] if isinstance(texts, list) and texts else (texts if isinstance(texts, str) else "")
    sample_id = str(ann.get("episode_id", path.stem))
    return _row(sample_id, "bridge", "push", video=video, caption=caption, num_frames=num_frames, fps=fps,
                height=height, width=width, actions=_actions_from_states(states), ee_states=states)


def _bridge_from_trajectory_folder(traj: Path, root: Path, allow_pickle: bool):
    image_dir = next((traj / d for d in ("images0", "images", "frames") if (traj / d).is_dir()), None)
    frames = sorted((p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)
    if not frames:
        raise ValueError(f"{image_dir} holds no image frames")
    states = actions = None
    if (traj / "states.npy").is_file():
        states = np.load(traj / "states.npy", allow_pickle=False).astype(np.float64)
    elif (traj / "obs_dict.pkl").is_file():
        if not allow_pickle:
            raise ValueError(f"{traj}/obs_dict.pkl is a pickle (it can run code when loaded); pass "
                             f"allow_pickle=True for trusted Bridge data, or provide states.npy")
        import pickle

        with open(traj / "obs_dict.pkl", "rb") as f:
            obs = pickle.load(f)  # noqa: S301 - explicit opt-in above
        states = np.asarray(obs.get("full_state", obs.get("state")), dtype=np.float64)
    if (traj / "actions.npy").is_file():
        actions = np.load(traj / "actions.npy", allow_pickle=False).astype(np.float64)
    if states is not None:
        if states.ndim != 2 or states.shape[1] != 7:
            raise ValueError(f"{traj}: states must be (T, 7) xyz + rpy + gripper, got {states.shape}")
        if len(states) != len(frames):
            raise ValueError(f"{traj}: {len(frames)} frames but {len(states)} states")
        if actions is None:
            actions = _actions_from_states(states)
    if actions is None:
        raise ValueError(f"{traj}: no states.npy, obs_dict.pkl or actions.npy")
    if actions.ndim != 2 or actions.shape != (len(frames) - 1, 7):
        raise ValueError(f"{traj}: actions must be ({len(frames) - 1}, 7) for {len(frames)} frames, got {actions.shape}")
    caption = (traj / "lang.txt").read_text(encoding="utf-8").strip().splitlines()[0] if (traj / "lang.txt").is_file() \
        else ""
    height, width = _image_size(frames[0])
    return _row(str(traj.relative_to(root)), "bridge", "push", frames=frames, caption=caption,
                num_frames=len(frames), fps=5.0, height=height, width=width, actions=actions, ee_states=states)


def load_bridge_trajectories(root, video_root=None, allow_pickle: bool = False):
    """Bridge-style robot trajectories -> Dataset (task "push": `actions` (T-1, 7), `ee_states` (T, 7)).

    Accepts (1) annotation JSON files anywhere under `root` with `state` (T, 6: xyz + rpy),
    `continuous_gripper_state` (T,) and `videos: [{"video_path": ...}]` (paths relative to `video_root` or
    `root`) — the format of Cosmos action-conditioned training and of `cosmos-hf sim generate --task push`;
    (2) trajectory folders with `images0/im_*.jpg` frames, `states.npy` (T, 7) and/or `actions.npy` (T-1, 7) and
    optional `lang.txt`. Actions are recomputed from states where states exist (relative xyz and rpy in the
    previous end-effector frame, absolute gripper).
    """
    root = _check_dir(root)
    video_root = Path(video_root) if video_root else None
    rows = []
    traj_dirs = sorted({p.parent for d in ("images0", "images", "frames") for p in root.rglob(d) if p.is_dir()},
                       key=lambda p: str(p))
    for traj in traj_dirs:
        rows.append(_bridge_from_trajectory_folder(traj, root, allow_pickle))
    for path in sorted(root.rglob("*.json"), key=lambda p: str(p)):
        if any(path.is_relative_to(t) for t in traj_dirs):
            continue
        try:
            head = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
        if isinstance(head, dict) and "state" in head:
            rows.append(_bridge_from_annotation(path, root, video_root))
    return _dataset(rows, root)


# ----------------------------------------------------------------------------------------------- cameras


def parse_realestate10k(path):
    """A RealEstate10K camera file -> (url, timestamps_us (T,), normalized intrinsics (T, 4), world_to_camera (T, 3, 4)).

    Line 1 is the video URL; each further line is `timestamp fx fy cx cy k1 k2 r11 r12 ... t3` (19 numbers):
    intrinsics normalized by the image width/height and the world-to-camera pose as a row-major 3x4 matrix.
    """
    path = Path(path)
    lines = [l for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a URL line and at least one camera line")
    stamps, intr, poses = [], [], []
    for i, line in enumerate(lines[1:], 2):
        values = line.split()
        if len(values) != 19:
            raise ValueError(f"{path}:{i}: expected 19 numbers (timestamp fx fy cx cy k1 k2 + 3x4 pose), "
                             f"got {len(values)}")
        try:
            numbers = [float(v) for v in values]
        except ValueError:
            raise ValueError(f"{path}:{i}: non-numeric camera line") from None
        stamps.append(int(values[0]))
        intr.append(numbers[1:5])
        poses.append(np.asarray(numbers[7:19]).reshape(3, 4))
    return lines[0].strip(), np.asarray(stamps), np.asarray(intr), np.stack(poses)


def _realestate10k_row(path: Path, root: Path, image_size):
    url, stamps, intr, w2c = parse_realestate10k(path)
    stem = path.with_suffix("")
    video = next((stem.with_suffix(ext) for ext in VIDEO_EXTENSIONS if stem.with_suffix(ext).is_file()), None)
    frames = None
    if stem.is_dir():
        by_name = {p.stem: p for p in stem.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
        if all(str(t) in by_name for t in stamps):
            frames = [by_name[str(t)] for t in stamps]
        else:
            listed = sorted(by_name.values(), key=_natural_key)
            if len(listed) != len(stamps):
                raise ValueError(f"{stem}: {len(listed)} frames for {len(stamps)} camera lines (name frames by "
                                 f"timestamp or provide one per line)")
            frames = listed
    if frames is not None:
        height, width = _image_size(frames[0])
        num_frames = len(frames)
    elif video is not None:
        num_frames, _, height, width = _probe_video(video)
        if num_frames != len(stamps):  # pose k is frame k's, as for a frames folder
            raise ValueError(f"{video}: {num_frames} frames for {len(stamps)} camera lines (the video must hold "
                             f"exactly the frames of the camera lines, or put them in {stem}/ named by timestamp)")
    elif image_size is not None:
        height, width = image_size
        num_frames = len(stamps)
    else:
        raise ValueError(f"{path}: no frames folder {stem}/ or video {stem}.mp4 to take the image size from; "
                         f"pass image_size=(H, W)")
    fx, fy, cx, cy = intr[0]
    K = np.array([[fx * width, 0, cx * width - 0.5], [0, fy * height, cy * height - 0.5], [0, 0, 1]])
    w2c_h = np.tile(np.eye(4), (len(w2c), 1, 1))
    w2c_h[:, :3, :] = w2c
    c2w = np.linalg.inv(w2c_h)  # RealEstate10K poses are already OpenCV (x right, y down, z forward)
    fps = float(1e6 / np.median(np.diff(stamps))) if len(stamps) > 1 else None
    return _row(str(path.relative_to(root).with_suffix("")), "realestate10k", "camera", video=video, frames=frames,
                caption="", num_frames=num_frames, fps=fps, height=height, width=width, intrinsics=K,
                cam_to_world=c2w)


def _dl3dv_row(transforms: Path, root: Path):
    meta = json.loads(transforms.read_text(encoding="utf-8"))
    if "frames" not in meta or not meta["frames"]:
        raise ValueError(f"{transforms}: no 'frames' list")
    frames = sorted(meta["frames"], key=lambda f: _natural_key(Path(f["file_path"])))
    scene = transforms.parent

    def get(key, frame):
        value = frame.get(key, meta.get(key))
        if value is None:
            raise ValueError(f"{transforms}: missing '{key}' (globally or per frame)")
        return float(value)

    first = frames[0]
    fx, fy, cx, cy = get("fl_x", first), get("fl_y", first), get("cx", first), get("cy", first)
    height, width = int(get("h", first)), int(get("w", first))
    K = np.array([[fx, 0, cx - 0.5], [0, fy, cy - 0.5], [0, 0, 1]])
    poses, paths = [], []
    for f in frames:
        c2w_gl = np.asarray(f["transform_matrix"], dtype=np.float64)
        if c2w_gl.shape == (3, 4):
            c2w_gl = np.vstack([c2w_gl, [0, 0, 0, 1]])
        if c2w_gl.shape != (4, 4):
            raise ValueError(f"{transforms}: transform_matrix must be 4x4, got {c2w_gl.shape}")
        poses.append(c2w_gl @ OPENGL_TO_OPENCV)  # nerfstudio cameras look down -z with y up (OpenGL)
        image = scene / f["file_path"]
        if not image.suffix:
            image = image.with_suffix(".png")
        paths.append(image)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{transforms}: {len(missing)} frame image(s) missing, e.g. {missing[0]}")
    caption_file = scene / "caption.txt"
    caption = caption_file.read_text(encoding="utf-8").strip() if caption_file.is_file() else ""
    return _row(str(scene.relative_to(root)) or scene.name, "dl3dv", "camera", frames=paths, caption=caption,
                num_frames=len(paths), fps=None, height=height, width=width, intrinsics=K, cam_to_world=np.stack(poses))


def load_camera_trajectories(root, image_size=None):
    """Camera trajectories -> Dataset (task "camera": `intrinsics` (3, 3) pixels, `cam_to_world` (T, 4, 4) OpenCV).

    Finds RealEstate10K camera files (`<seq>.txt`, frames in `<seq>/` named by timestamp or a `<seq>.mp4`) and
    DL3DV / nerfstudio scenes (`transforms.json` with `fl_x fl_y cx cy w h` and per-frame `transform_matrix`,
    camera-to-world in OpenGL axes, converted here to OpenCV).
    """
    root = _check_dir(root)
    rows = []
    for transforms in sorted(root.rglob("transforms.json"), key=lambda p: str(p)):
        rows.append(_dl3dv_row(transforms, root))
    for txt in sorted(root.rglob("*.txt"), key=lambda p: str(p)):
        if txt.name == "caption.txt":
            continue
        first = txt.read_text(encoding="utf-8").splitlines()[:2]
        if len(first) == 2 and len(first[1].split()) == 19:
            rows.append(_realestate10k_row(txt, root, image_size))
    return _dataset(rows, root)
