"""`cosmos_hf.video_io`: a written video keeps the frame rate it was given; a frame rate that is no rate is refused."""

import math

import numpy as np
import pytest

from cosmos_hf.video_io import read_video, write_video


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
