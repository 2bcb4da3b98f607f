"""Same seed -> identical bytes; bad arguments -> clear errors."""

import numpy as np
import pytest

from cosmos_hf.sim import simulate, simulate_camera, simulate_multiview, simulate_push


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: simulate("dominoes", seed=seed, num_frames=6, height=32, width=32),
        lambda seed: simulate("unstable_stack", seed=seed, num_frames=6, height=32, width=32, view=3),
        lambda seed: simulate_push(seed=seed, num_frames=5, height=32, width=32, policy="goal"),
        lambda seed: simulate_camera(seed=seed, num_frames=4, height=32, width=32),
        lambda seed: simulate_multiview(seed=seed, num_frames=3, height=16, width=16, num_cameras=3),
    ],
    ids=["dominoes", "unstable_stack_view3", "push_goal", "camera", "multiview"],
)
def test_same_seed_same_bytes_and_other_seed_differs(make):
    a, b, c = make(7), make(7), make(8)
    assert a.video.tobytes() == b.video.tobytes()
    assert a.masks.tobytes() == b.masks.tobytes()
    assert a.depth.tobytes() == b.depth.tobytes()
    assert a.object_positions.tobytes() == b.object_positions.tobytes()
    assert a.caption == b.caption
    assert a.video.tobytes() != c.video.tobytes()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: simulate("bouncy_castle"), "unknown scene 'bouncy_castle'; choose one of free_fall"),
        (lambda: simulate("free_fall", num_frames=0), "num_frames must be an integer between 1 and 2048, got 0"),
        (lambda: simulate("free_fall", height=63), "height must be a multiple of 8 between 16 and 1024, got 63"),
        (lambda: simulate("free_fall", width=8), "width must be a multiple of 8 between 16 and 1024, got 8"),
        (lambda: simulate("free_fall", height=64.0), "height must be an integer"),
        (lambda: simulate("free_fall", view=4), "view must be an integer in 0..3, got 4"),
        (lambda: simulate("free_fall", fps=0), "fps must be a number between 1 and 240"),
        (lambda: simulate_push(policy="teleport"), "unknown policy 'teleport'"),
        (lambda: simulate_push(num_frames=1), "needs num_frames >= 2"),
        (lambda: simulate_push(num_frames=4, actions=np.zeros((4, 7))), r"actions must be finite and shaped \(3, 7\)"),
        (lambda: simulate_camera(trajectory="zoom"), "unknown camera trajectory 'zoom'; choose one of orbit"),
        (lambda: simulate_multiview(num_cameras=0), "num_cameras must be an integer between 1 and 12"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
