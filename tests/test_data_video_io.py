"""`cosmos_hf.video_io`: a written video keeps the frame rate it was given; a frame rate that is no rate is refused."""

import math

import numpy as np
import pytest

from cosmos_hf.video_io import frames_to_tensor, read_video, write_video


def _frames(T=6, H=16, W=16):
    return np.random.default_rng(0).integers(0, 255, (T, H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize("fps", [24.0, 12.5, 7.5, 30000 / 1001, 0.4])
def test_write_video_keeps_a_fractional_frame_rate(tmp_path, fps):
    # the simulator takes any fps in [1, 240] and curation passes the source's (29.97...): it was rounded to
    # an integer (12.5 -> 12, 7.5 -> 8), 0.4 to 0 which came back as 24 fps
    path = write_video(tmp_path / "clip.mp4", _frames(), fps=fps)
    frames, read_fps = read_video(path)
    assert len(frames) == 6
    assert read_fps == pytest.approx(fps, rel=1e-6)


@pytest.mark.parametrize("fps", [0, -8, math.nan, math.inf])
def test_write_video_refuses_a_frame_rate_that_is_not_positive_and_finite(tmp_path, fps):
    with pytest.raises(ValueError, match="fps must be a finite number > 0"):
        write_video(tmp_path / "clip.mp4", _frames(), fps=fps)
    assert not (tmp_path / "clip.mp4").exists()


@pytest.mark.parametrize("fps", [0.0004, 0.0007])
def test_write_video_refuses_a_frame_rate_an_mp4_cannot_hold(tmp_path, fps):
    # the rate is kept as a fraction with denominator <= 1001: 0.0004 became 0 (read back as 24 fps), 0.0007 1/1001
    with pytest.raises(ValueError, match="use fps >= 0.001"):
        write_video(tmp_path / "clip.mp4", _frames(), fps=fps)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("max_frames", [0, -1])
def test_read_video_refuses_max_frames_below_one(tmp_path, max_frames):
    # the count was tested after appending a frame, so max_frames=0 or -1 returned one frame
    path = write_video(tmp_path / "clip.mp4", _frames(), fps=12)
    with pytest.raises(ValueError, match="max_frames must be None"):
        read_video(path, max_frames=max_frames)
    assert len(read_video(path, max_frames=2)[0]) == 2


def test_frames_to_tensor_refuses_frames_that_are_not_uint8():
    # float frames in [0, 1] were divided by 127.5 like 0-255 ones: a nearly black video in [-1, -0.99]
    with pytest.raises(ValueError, match="frames must be uint8"):
        frames_to_tensor(np.ones((2, 4, 4, 3), np.float32))
    tensor = frames_to_tensor(np.full((2, 4, 4, 3), 255, np.uint8))
    assert tensor.shape == (1, 3, 2, 4, 4) and float(tensor.min()) == 1.0
