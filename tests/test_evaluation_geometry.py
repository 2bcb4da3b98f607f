"""3D consistency and camera-control errors on a synthetic room with exactly known cameras."""

import math

import numpy as np
import pytest

from cosmos_hf.evaluation.camera import camera_control_errors, rotation_angle_degrees, trajectory_errors
from cosmos_hf.evaluation.geometry import fundamental_from_poses, geometric_consistency, sampson_errors
from cosmos_hf.evaluation.synthetic import intrinsics_from_fov, orbit_path, render_room


def test_sampson_error_is_in_pixels_for_rectified_stereo():
    # Rectified stereo (X_b = X_a + (1, 0, 0)): epipolar lines are image rows. A match off its row by d pixels has
    # first-order geometric error d / sqrt(2) (the correction is split evenly between the two images).
    fundamental = fundamental_from_poses(np.eye(3), np.eye(3), np.eye(3), [1.0, 0.0, 0.0])
    points_a = np.array([[10.0, 20.0], [30.0, 5.0], [7.0, 7.0]])
    offsets = np.array([0.0, 2.0, 5.0])
    points_b = points_a + np.stack([[3.0, -1.0, 8.0], offsets], axis=1)
    np.testing.assert_allclose(sampson_errors(fundamental, points_a, points_b), offsets / math.sqrt(2), atol=1e-9)


def test_exact_projections_have_zero_sampson_error():
    rng = np.random.default_rng(0)
    K = intrinsics_from_fov(120, 160)
    poses = orbit_path(2, -10, 10, radius=2.0)
    points = rng.uniform([-1, -1, 2], [1, 1, 4], size=(50, 3))  # in camera a's frame
    relative = np.linalg.inv(poses[1]) @ poses[0]
    points_b = points @ relative[:3, :3].T + relative[:3, 3]
    project = lambda p: (p @ K.T)[:, :2] / p[:, 2:3]  # noqa: E731
    F = fundamental_from_poses(K, K, relative[:3, :3], relative[:3, 3])
    assert sampson_errors(F, project(points), project(points_b)).max() < 1e-8


@pytest.fixture(scope="module")
def room_video():
    height, width = 240, 320
    K = intrinsics_from_fov(height, width)
    poses = orbit_path(8, -20, 20, radius=2.0)  # ~5.7 degrees and 0.2 m per step, walls 1-5 m away
    return render_room(poses, K, height, width), poses, K


def test_synthetic_camera_path_is_recovered_almost_exactly(room_video):
    video, poses, K = room_video
    errors = camera_control_errors(video, poses, K)
    assert errors["pose_success_rate"] == 1.0
    assert errors["rotation_error_deg"] < 0.5
    assert errors["translation_error"] < 0.03
    consistency = geometric_consistency(video, K)
    assert consistency["video_pose_success"]
    assert consistency["sampson_error_px"] < 0.5


def test_shuffled_frames_break_the_requested_trajectory(room_video):
    video, poses, K = room_video
    order = np.array([0, 5, 2, 7, 1, 6, 3, 4])
    errors = camera_control_errors(video[order], poses, K)
    assert errors["rotation_error_deg"] > 5.0
    assert errors["translation_error"] > 0.2


def test_shuffled_wide_pan_fails_pose_recovery():
    # A 240-degree pan: consecutive frames overlap, random pairs mostly do not share any wall texture.
    height, width = 120, 160
    K = intrinsics_from_fov(height, width)
    poses = orbit_path(16, -120, 120, radius=2.0)
    video = render_room(poses, K, height, width, half_extent=(5.0, 3.0, 5.0))
    ordered = geometric_consistency(video, K)
    shuffled = geometric_consistency(video[np.random.default_rng(0).permutation(16)], K)
    assert ordered["video_pose_success"] and ordered["pose_success_rate"] == 1.0
    assert not shuffled["video_pose_success"]
    assert shuffled["pose_success_rate"] < 0.3


def test_trajectory_errors_of_known_perturbations():
    poses = orbit_path(5, -20, 20, radius=2.0)
    assert trajectory_errors(poses, poses)["rotation_error_deg"] == pytest.approx(0.0, abs=1e-6)
    # Rotating every camera after the first by 3 degrees about its own z axis: rotation error exactly 3 degrees.
    c, s = math.cos(math.radians(3)), math.sin(math.radians(3))
    roll = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    perturbed = poses.copy()
    perturbed[1:] = poses[1:] @ roll
    errors = trajectory_errors(perturbed, poses)
    assert errors["rotation_error_deg"] == pytest.approx(3.0, abs=1e-6)
    assert errors["translation_error"] == pytest.approx(0.0, abs=1e-9)
    assert rotation_angle_degrees(np.eye(3), roll[:3, :3]) == pytest.approx(3.0)


def test_camera_inputs_are_validated(room_video):
    video, poses, K = room_video
    with pytest.raises(ValueError, match="must match"):
        camera_control_errors(video, poses[:5], K)
    with pytest.raises(ValueError, match="3x3"):
        camera_control_errors(video, poses, np.eye(4))
    with pytest.raises(ValueError, match="not rotations"):
        bad = poses.copy()
        bad[2, :3, :3] *= 2
        camera_control_errors(video, bad, K)
    with pytest.raises(ValueError, match="at least 2 frames"):
        geometric_consistency(video[:1], K)


@pytest.fixture(scope="module")
def dense_orbit():
    """48 frames over a 20 degree orbit: consecutive frames are ~0.4 degrees and 1.5 cm apart (like 30 fps video
    from a slowly moving handheld camera), too little baseline for a relative pose."""
    height, width = 120, 160
    K = intrinsics_from_fov(height, width)
    poses = orbit_path(48, -10, 10, radius=2.0)
    return render_room(poses, K, height, width), K


def test_consistent_video_with_small_frame_to_frame_motion_succeeds_by_parallax_pairing(dense_orbit):
    video, K = dense_orbit
    consecutive = geometric_consistency(video, K, stride=1)  # the old default: no baseline between neighbours
    assert consecutive["pose_success_rate"] < 0.2 and consecutive["sampson_error_px"] < 0.5
    result = geometric_consistency(video, K)
    assert result["video_pose_success"] and result["pose_success_rate"] == 1.0
    assert result["sampson_error_px"] < 0.5
    threshold = result["min_parallax_px"]
    assert threshold == pytest.approx(0.08 * 160)
    assert all(p["parallax_px"] >= threshold and not p["low_parallax"] for p in result["pairs"])
    chained = [p["frames"] for p in result["pairs"]]
    # Each pair's second frame anchors the next pair.
    assert chained[0][0] == 0 and all(a[1] == b[0] for a, b in zip(chained, chained[1:]))
    assert 2 <= result["num_pairs"] <= 6


def test_max_frames_and_static_video(dense_orbit):
    video, K = dense_orbit
    assert geometric_consistency(video, K, max_frames=20)["num_frames"] == 20
    with pytest.raises(ValueError, match="max_frames must be >= 2"):
        geometric_consistency(video, K, max_frames=1)
    # A camera that never moves: one pair is still evaluated (flagged low_parallax) and fails; nothing is skipped.
    still = geometric_consistency(np.repeat(video[:1], 10, axis=0), K)
    assert still["num_pairs"] == 1 and still["pairs"][0]["low_parallax"] and not still["video_pose_success"]


def test_cli_geometry_pairs_by_parallax_and_refuses_bad_max_frames(dense_orbit, tmp_path, capsys):
    from cosmos_hf.cli import main

    video, K = dense_orbit
    np.save(tmp_path / "orbit.npy", video)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    out = tmp_path / "out"
    assert main(["eval", "geometry", "--video", str(tmp_path / "orbit.npy"), "--intrinsics", f"{fx},{fy},{cx},{cy}",
                 "--max-frames", "40", "--out", str(out), "--no-progress"]) == 0
    import json

    result = json.loads((out / "results.json").read_text())
    assert result["pose_success_rate_videos"] == 1.0 and result["per_video"][0]["num_frames"] == 40
    assert result["config"]["max_frames"] == 40 and result["config"]["stride"] is None
    for bad in ("0", "-3"):
        with pytest.raises(SystemExit):
            main(["eval", "geometry", "--video", str(tmp_path / "orbit.npy"), "--max-frames", bad, "--out", str(out)])
        assert f"argument --max-frames: must be a positive integer (>= 1), got {bad}" in capsys.readouterr().err


def test_field_of_view_and_intrinsics_outside_their_range_are_refused(tmp_path, capsys):
    """`--fov -60` (or a negative focal length in --intrinsics) mirrors the image axes: camera eval of a perfect
    orbit reported 100% pose success with a 35 degree rotation error. `--fov 0` / `180` gave an infinite / zero focal
    length that failed every pair. Each is now an error naming the valid range."""
    from cosmos_hf.cli import main
    from cosmos_hf.evaluation.geometry import default_intrinsics

    for fov in (-60.0, 0.0, 180.0, 250.0, float("nan")):
        with pytest.raises(ValueError, match=r"horizontal field of view must be in \(0, 180\) degrees"):
            default_intrinsics(120, 160, fov)
    video = np.zeros((2, 16, 16, 3), np.uint8)
    poses = np.repeat(np.eye(4)[None], 2, axis=0)
    mirrored = np.array([[-20.0, 0, 8], [0, 20, 8], [0, 0, 1]])
    for bad in (mirrored, np.diag([20.0, 0.0, 1.0]), np.array([[20.0, 0, np.inf], [0, 20, 8], [0, 0, 1]]),
                np.array([[20.0, 0, 8], [0, 20, 8], [0, 0, 2]])):
        with pytest.raises(ValueError, match=r"intrinsics must be a finite 3x3 K with focal lengths fx, fy > 0"):
            geometric_consistency(video, bad)
        with pytest.raises(ValueError, match=r"intrinsics must be a finite 3x3 K with focal lengths fx, fy > 0"):
            camera_control_errors(video, poses, bad)
    np.save(tmp_path / "v.npy", video)
    np.savez(tmp_path / "poses.npz", cam_to_world=poses)
    for command in (["geometry"], ["camera", "--poses", str(tmp_path / "poses.npz")]):
        assert main(["eval", *command, "--video", str(tmp_path / "v.npy"), "--fov", "-60",
                     "--out", str(tmp_path / "out")]) == 2
        assert "horizontal field of view must be in (0, 180) degrees, got -60.0" in capsys.readouterr().err
        assert main(["eval", *command, "--video", str(tmp_path / "v.npy"), "--intrinsics=-20,20,8,8",
                     "--out", str(tmp_path / "out")]) == 2
        assert "focal lengths fx, fy > 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
