"""Loaders for the real-world formats (tiny files written here) return the world-dataset schema."""

import json

import cv2
import numpy as np
import pytest

from cosmos_hf.data import (
    WorldVideoDataset,
    load_bridge_trajectories,
    load_camera_trajectories,
    load_video_caption_folder,
    write_video,
)
from cosmos_hf.sim.world import euler_to_matrix, look_at

CORE = {"id", "source", "task", "video", "frames", "caption", "num_frames", "fps", "height", "width",
        "actions", "ee_states", "intrinsics", "cam_to_world"}


def _frames(T=5, H=16, W=24, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (T, H, W, 3), dtype=np.uint8)


def test_video_caption_folder_cosmos_layout_and_flat(tmp_path):
    root = tmp_path / "cosmos"
    write_video(root / "videos" / "b.mp4", _frames(5), fps=10)
    write_video(root / "videos" / "a.mp4", _frames(3), fps=10)
    (root / "metas").mkdir()
    (root / "metas" / "a.txt").write_text("a red ball rolls\n")
    (root / "metas" / "b.txt").write_text("a blue cube falls\n")
    ds = load_video_caption_folder(root)
    assert set(ds.column_names) == CORE
    assert ds["id"] == ["a", "b"] and ds["caption"] == ["a red ball rolls", "a blue cube falls"]
    assert ds["num_frames"] == [3, 5] and ds[0]["height"] == 16 and ds[0]["width"] == 24 and ds[0]["fps"] == 10
    item = WorldVideoDataset(ds)[1]
    assert tuple(item["video"].shape) == (3, 5, 16, 24) and item["caption"] == "a blue cube falls"

    flat = tmp_path / "flat"
    write_video(flat / "clip.mp4", _frames(2), fps=8)
    with pytest.raises(ValueError, match="no caption for .*clip.mp4"):
        load_video_caption_folder(flat)
    assert load_video_caption_folder(flat, require_captions=False)[0]["caption"] == ""
    (flat / "clip.txt").write_text("text")
    assert load_video_caption_folder(flat)[0]["caption"] == "text"


def _bridge_states(T=6, seed=0):
    rng = np.random.default_rng(seed)
    xyz = np.cumsum(rng.normal(0, 0.01, (T, 3)), 0)
    rpy = np.cumsum(rng.normal(0, 0.05, (T, 3)), 0)
    gripper = (rng.random(T) > 0.5).astype(float)
    return np.concatenate([xyz, rpy, gripper[:, None]], 1)


def test_bridge_annotation_json_and_trajectory_folder(tmp_path):
    states = _bridge_states()
    # (1) the annotation format of Cosmos action-conditioned training
    write_video(tmp_path / "videos" / "ep1" / "rgb.mp4", _frames(6), fps=5)
    ann = {"episode_id": "ep1", "texts": ["put the spoon in the pot"], "state": states[:, :6].tolist(),
           "continuous_gripper_state": states[:, 6].tolist(), "videos": [{"video_path": "videos/ep1/rgb.mp4"}]}
    (tmp_path / "annotation").mkdir()
    (tmp_path / "annotation" / "ep1.json").write_text(json.dumps(ann))
    # (2) a raw trajectory folder: frames + states + language
    traj = tmp_path / "raw" / "traj0"
    (traj / "images0").mkdir(parents=True)
    for k, frame in enumerate(_frames(6, seed=1)):
        cv2.imwrite(str(traj / "images0" / f"im_{k}.png"), frame)
    np.save(traj / "states.npy", states)
    (traj / "lang.txt").write_text("wipe the table\nconfidence: 1\n")

    ds = load_bridge_trajectories(tmp_path)
    assert set(ds.column_names) == CORE and len(ds) == 2
    by_source = {row["id"]: row for row in ds}
    raw, annotated = by_source["raw/traj0"], by_source["ep1"]
    assert raw["caption"] == "wipe the table" and annotated["caption"] == "put the spoon in the pot"
    for row in (raw, annotated):
        actions = np.asarray(row["actions"])
        assert actions.shape == (5, 7) and row["task"] == "push"
        for t in range(5):  # Bridge convention, computed independently here
            rot = euler_to_matrix(states[t, 3:6])
            np.testing.assert_allclose(actions[t, :3], rot.T @ (states[t + 1, :3] - states[t, :3]), atol=1e-9)
            np.testing.assert_allclose(euler_to_matrix(actions[t, 3:6]), rot.T @ euler_to_matrix(states[t + 1, 3:6]),
                                       atol=1e-9)
            assert actions[t, 6] == states[t + 1, 6]
    item = WorldVideoDataset(ds, num_frames=4, action_scale=20.0)[[r["id"] for r in ds].index("raw/traj0")]
    assert tuple(item["video"].shape) == (3, 4, 16, 24) and tuple(item["actions"].shape) == (3, 7)
    np.testing.assert_allclose(item["actions"].numpy(), 20 * np.asarray(raw["actions"])[:3], rtol=1e-5, atol=1e-6)

    # pickled Bridge files are refused unless the caller trusts them
    (traj / "states.npy").unlink()
    (traj / "obs_dict.pkl").write_bytes(b"not really a pickle")
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_bridge_trajectories(tmp_path / "raw")


def test_realestate10k_camera_file(tmp_path):
    H, W = 16, 24
    stamps = [1000000, 1033333, 1066666]
    poses = [look_at((1.0 + 0.1 * k, -2.0, 1.0), (0, 0, 0)) for k in range(3)]
    lines = ["https://www.youtube.com/watch?v=example"]
    for stamp, c2w in zip(stamps, poses):
        w2c = np.linalg.inv(c2w)[:3]
        lines.append(" ".join(str(v) for v in [stamp, 0.5, 0.75, 0.5, 0.5, 0, 0, *w2c.reshape(-1)]))
    (tmp_path / "seq1.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "seq1").mkdir()
    for stamp, frame in zip(stamps, _frames(3, H, W)):
        cv2.imwrite(str(tmp_path / "seq1" / f"{stamp}.png"), frame)
    ds = load_camera_trajectories(tmp_path)
    row = ds[0]
    assert set(ds.column_names) == CORE and row["source"] == "realestate10k" and row["num_frames"] == 3
    K = np.asarray(row["intrinsics"])
    np.testing.assert_allclose(K, [[0.5 * W, 0, 0.5 * W - 0.5], [0, 0.75 * H, 0.5 * H - 0.5], [0, 0, 1]])
    np.testing.assert_allclose(np.asarray(row["cam_to_world"]), np.stack(poses), atol=1e-9)
    assert row["fps"] == pytest.approx(30.0, rel=1e-3)
    item = WorldVideoDataset(ds)[0]
    assert tuple(item["cam_to_world"].shape) == (3, 4, 4) and tuple(item["video"].shape) == (3, 3, H, W)

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "seq2.txt").write_text("url\n" + " ".join(["1"] * 19) + "\n1 2 3\n")
    with pytest.raises(ValueError, match="expected 19 numbers"):
        load_camera_trajectories(tmp_path / "bad", image_size=(H, W))


def test_dl3dv_transforms_json_converts_opengl_to_opencv(tmp_path):
    scene = tmp_path / "scene_a"
    (scene / "images").mkdir(parents=True)
    c2w_cv = [look_at((2.0, -1.0, 1.0 + 0.2 * k), (0, 0, 0.1)) for k in range(2)]
    frames = []
    for k, pose in enumerate(c2w_cv):
        cv2.imwrite(str(scene / "images" / f"frame_{k:05d}.png"), _frames(1, 16, 24, seed=k)[0])
        gl = pose @ np.diag([1.0, -1.0, -1.0, 1.0])  # nerfstudio stores OpenGL axes (y up, z back)
        frames.append({"file_path": f"images/frame_{k:05d}.png", "transform_matrix": gl.tolist()})
    meta = {"fl_x": 20.0, "fl_y": 21.0, "cx": 12.0, "cy": 8.0, "w": 24, "h": 16, "frames": frames}
    (scene / "transforms.json").write_text(json.dumps(meta))
    (scene / "caption.txt").write_text("a living room")
    row = load_camera_trajectories(tmp_path)[0]
    assert row["source"] == "dl3dv" and row["caption"] == "a living room" and len(row["frames"]) == 2
    np.testing.assert_allclose(np.asarray(row["cam_to_world"]), np.stack(c2w_cv), atol=1e-12)
    np.testing.assert_allclose(np.asarray(row["intrinsics"]), [[20, 0, 11.5], [0, 21, 7.5], [0, 0, 1]])
    # the optical axis (+z in OpenCV) points at the scene
    pose = np.asarray(row["cam_to_world"])[0]
    to_target = np.array([0, 0, 0.1]) - pose[:3, 3]
    assert pose[:3, 2] @ to_target > 0.99 * np.linalg.norm(to_target)

    frames[1]["file_path"] = "images/missing.png"
    (scene / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(FileNotFoundError, match="frame image"):
        load_camera_trajectories(tmp_path)


def _realestate10k_lines(num_lines):
    lines = ["https://www.youtube.com/watch?v=example"]
    for k in range(num_lines):
        w2c = np.linalg.inv(look_at((1.0 + 0.1 * k, -2.0, 1.0), (0, 0, 0)))[:3]
        lines.append(" ".join(str(v) for v in [1000000 + 33333 * k, 0.5, 0.75, 0.5, 0.5, 0, 0, *w2c.reshape(-1)]))
    return "\n".join(lines) + "\n"


def test_realestate10k_video_with_another_frame_count_than_camera_lines_is_refused(tmp_path):
    # pose k belongs to frame k: a 6-frame video for 3 camera lines paired frames 0-2 with the poses and gave
    # frames 3-5 none, without an error (a frames folder was already checked this way)
    (tmp_path / "seq1.txt").write_text(_realestate10k_lines(3))
    write_video(tmp_path / "seq1.mp4", _frames(6), fps=30)
    with pytest.raises(ValueError, match="6 frames for 3 camera lines"):
        load_camera_trajectories(tmp_path)
    write_video(tmp_path / "seq1.mp4", _frames(3), fps=30)
    row = load_camera_trajectories(tmp_path)[0]
    assert row["num_frames"] == 3 and len(row["cam_to_world"]) == 3


def test_bridge_annotation_with_another_state_count_than_video_frames_is_refused(tmp_path):
    # action t takes frame t to frame t+1: 6 states for an 8-frame video gave 5 actions for 7 frame steps, silently
    states = _bridge_states(T=6)
    ann = {"episode_id": "ep1", "texts": ["push"], "state": states[:, :6].tolist(),
           "continuous_gripper_state": states[:, 6].tolist(), "videos": [{"video_path": "videos/ep1.mp4"}]}
    (tmp_path / "ep1.json").write_text(json.dumps(ann))
    write_video(tmp_path / "videos" / "ep1.mp4", _frames(8), fps=5)
    with pytest.raises(ValueError, match="8 video frames but 6 states"):
        load_bridge_trajectories(tmp_path)
    write_video(tmp_path / "videos" / "ep1.mp4", _frames(6), fps=5)
    row = load_bridge_trajectories(tmp_path)[0]
    assert row["num_frames"] == 6 and len(row["actions"]) == 5
