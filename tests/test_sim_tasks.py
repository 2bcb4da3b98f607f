"""The push, camera and multi-view tasks: actions, poses and rigs are exact and consistent."""

import math

import numpy as np
import pytest

from cosmos_hf.sim import actions_from_states, apply_action, simulate_camera, simulate_multiview, simulate_push
from cosmos_hf.sim.world import euler_to_matrix, matrix_to_euler


def test_bridge_actions_are_relative_in_previous_frame_and_invert_exactly():
    rng = np.random.default_rng(0)
    states = np.concatenate([rng.uniform(-0.3, 0.3, (6, 3)), rng.uniform(-0.6, 0.6, (6, 3)), rng.uniform(0, 1, (6, 1))], 1)
    actions = actions_from_states(states)
    assert actions.shape == (5, 7)
    for t in range(5):
        rot = euler_to_matrix(states[t, 3:6])
        # translation expressed in the previous end-effector frame, gripper absolute
        np.testing.assert_allclose(rot @ actions[t, :3], states[t + 1, :3] - states[t, :3], atol=1e-12)
        np.testing.assert_allclose(rot @ euler_to_matrix(actions[t, 3:6]), euler_to_matrix(states[t + 1, 3:6]),
                                   atol=1e-12)
        assert actions[t, 6] == states[t + 1, 6]
        np.testing.assert_allclose(apply_action(states[t], actions[t]), states[t + 1], atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler(euler_to_matrix([0.1, -0.2, 2.5])), [0.1, -0.2, 2.5], atol=1e-12)


@pytest.mark.parametrize("policy", ["random", "scripted", "goal"])
def test_push_records_actions_consistent_with_states_and_replay(policy):
    record = simulate_push(seed=1, num_frames=16, height=32, width=32, policy=policy)
    actions, states = record.extras["actions"], record.extras["ee_states"]
    assert actions.shape == (15, 7) and states.shape == (16, 7)
    for t in range(15):
        np.testing.assert_allclose(apply_action(states[t], actions[t]), states[t + 1], atol=2e-5)
    gripper_id = record.params["gripper_object_id"]
    assert record.objects[gripper_id - 1]["name"] == "gripper"
    assert (record.masks == gripper_id).any()
    replay = simulate_push(seed=1, num_frames=16, height=32, width=32, actions=actions)
    np.testing.assert_allclose(replay.extras["ee_states"], states, atol=1e-5)
    assert replay.extras["policy"] == "replay"


def test_scripted_push_moves_its_object_and_goal_push_approaches_goal():
    for seed in (0, 2):
        scripted = simulate_push(seed=seed, num_frames=32, height=16, width=16, policy="scripted")
        k = scripted.extras["target_object_id"] - 1
        assert np.linalg.norm(scripted.object_positions[-1, k, :2] - scripted.object_positions[0, k, :2]) > 0.05
        assert "pushes the" in scripted.caption

        goal = simulate_push(seed=seed, num_frames=40, height=16, width=16, policy="goal")
        k = goal.extras["target_object_id"] - 1
        target = goal.extras["goal_object_positions"][k, :2]
        start = np.linalg.norm(goal.object_positions[0, k, :2] - target)
        end = np.linalg.norm(goal.object_positions[-1, k, :2] - target)
        assert end < 0.5 * start, (start, end)
        assert goal.extras["goal_image"].shape == (16, 16, 3)


def test_camera_trajectories_have_exact_geometry():
    orbit = simulate_camera(seed=0, num_frames=8, height=32, width=32, trajectory="orbit")
    centres = orbit.cam_to_world[:, :3, 3]
    target = np.array([0.0, 0.0, 0.1])
    np.testing.assert_allclose(np.linalg.norm(centres - target, axis=1), orbit.params["radius"], atol=1e-3)
    # optical axis (z column) points at the target; rotations are orthonormal with det +1
    for pose in orbit.cam_to_world:
        direction = (target - pose[:3, 3]) / np.linalg.norm(target - pose[:3, 3])
        np.testing.assert_allclose(pose[:3, 2], direction, atol=1e-9)
        np.testing.assert_allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-9)
        assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
        assert pose[2, 1] < 0  # image y (down) has a downward world component: camera is upright

    dolly = simulate_camera(seed=1, num_frames=8, height=32, width=32, trajectory="dolly")
    dist = np.linalg.norm(dolly.cam_to_world[:, :3, 3] - target, axis=1)
    assert np.all(np.diff(dist) < 0) or np.all(np.diff(dist) > 0)

    pan = simulate_camera(seed=2, num_frames=8, height=32, width=32, trajectory="pan")
    np.testing.assert_allclose(pan.cam_to_world[:, :3, 3], pan.cam_to_world[:1, :3, 3].repeat(8, 0), atol=1e-12)
    yaw = np.unwrap(np.arctan2(pan.cam_to_world[:, 1, 2], pan.cam_to_world[:, 0, 2]))
    assert abs(math.degrees(yaw[-1] - yaw[0])) == pytest.approx(abs(pan.params["sweep_degrees"]), rel=0.05)
    K = pan.intrinsics
    assert K[0, 2] == pytest.approx(15.5) and K[1, 2] == pytest.approx(15.5)
    # static scene: objects never move
    assert np.ptp(pan.object_positions, axis=0).max() == 0


def test_camera_task_projection_matches_masks():
    from test_sim_physics import _projection_errors

    errors = []
    for seed in range(6):
        record = simulate_camera(seed=seed, num_frames=4, height=96, width=96)
        errors.extend(_projection_errors(record, record.masks, record.cam_to_world))
    errors = np.asarray(errors)
    assert len(errors) >= 5
    assert np.abs(errors).max() < 0.5, np.abs(errors).max()


def test_multiview_rig_is_synchronised_and_composed():
    record = simulate_multiview(seed=0, num_frames=4, height=16, width=16)
    V, T = 6, 4
    assert record.video.shape == (V, T, 16, 16, 3)
    assert record.extras["camera_names"] == ["front", "front_left", "front_right", "rear", "rear_left", "rear_right"]
    rig, cam_to_rig = record.extras["rig_to_world"], record.extras["camera_to_rig"]
    for v in range(V):
        for t in range(T):
            np.testing.assert_allclose(record.cam_to_world[v, t], rig[t] @ cam_to_rig[v], atol=1e-12)
    # all cameras share one rig centre per instant; the rig moves
    np.testing.assert_allclose(record.cam_to_world[:, 1, :3, 3], np.repeat(rig[1:2, :3, 3], V, 0), atol=1e-12)
    assert np.linalg.norm(rig[-1, :3, 3] - rig[0, :3, 3]) > 0.01
    # the front camera looks along the rig's x axis (slightly down), the rear one opposite
    assert cam_to_rig[0, 0, 2] > 0.9 and cam_to_rig[3, 0, 2] < -0.9
    moving = np.linalg.norm(record.object_positions[-1] - record.object_positions[0], axis=-1)
    assert (moving > 0.01).any()
