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
