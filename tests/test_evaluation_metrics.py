"""Pixel metrics and colour-matched masks against closed-form answers."""

import math

import numpy as np
import pytest

from cosmos_hf.evaluation.object_masks import segment_by_colour
from cosmos_hf.evaluation.video_metrics import mask_iou, mask_iou_per_frame, psnr, psnr_per_frame, ssim, ssim_per_frame


def _video(seed=0, shape=(4, 32, 40, 3)):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_identical_videos_are_perfect():
    video = _video()
    assert psnr(video, video) == math.inf
    assert np.all(np.isinf(psnr_per_frame(video, video)))
    assert ssim(video, video) == pytest.approx(1.0, abs=1e-12)
    masks = video[..., 0] > 128
    assert mask_iou(masks, masks) == 1.0


@pytest.mark.parametrize("sigma", [2.0, 8.0, 20.0])
def test_psnr_of_known_gaussian_noise_matches_formula(sigma):
    rng = np.random.default_rng(1)
    clean = np.full((8, 64, 64, 3), 128, dtype=np.uint8)
    noisy = np.clip(np.round(128 + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
    assert psnr(clean, noisy) == pytest.approx(20 * math.log10(255 / sigma), abs=0.1)


def test_psnr_is_one_mse_over_the_whole_video_not_a_mean_of_frames():
    clean = np.full((2, 16, 16, 3), 100, dtype=np.uint8)
    noisy = clean.copy()
    noisy[0] += 10  # frame 0: error 10 everywhere, frame 1: exact
    # TokenBench: MSE over the video = 50 -> 20 log10(255 / sqrt(50)); a mean of per-frame PSNRs would be inf.
    assert psnr(clean, noisy) == pytest.approx(20 * math.log10(255 / math.sqrt(50)), abs=1e-9)
    assert psnr_per_frame(clean, noisy)[0] == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)


def test_ssim_of_flat_frames_has_closed_form():
    # Flat windows: variances and covariance vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1) exactly.
    a, b = 100.0, 140.0
    c1 = (0.01 * 255) ** 2
    frame_a = np.full((1, 16, 16, 3), a, dtype=np.uint8)
    frame_b = np.full((1, 16, 16, 3), b, dtype=np.uint8)
    assert ssim(frame_a, frame_b) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-12)


def test_ssim_is_the_mean_of_per_frame_ssim_and_drops_with_noise():
    video = _video(2, (3, 24, 24, 3))
    noise = np.random.default_rng(3).integers(-1, 2, video.shape)

    def noisy(amplitude):
        return np.clip(video.astype(int) + amplitude * noise, 0, 255).astype(np.uint8)

    per_frame = ssim_per_frame(video, noisy(40))
    assert per_frame.shape == (3,)
    assert ssim(video, noisy(40)) == pytest.approx(per_frame.mean())
    assert 1.0 > ssim(video, noisy(10)) > ssim(video, noisy(40)) > ssim(video, noisy(120))


def test_iou_of_overlapping_squares_and_empty_frames():
    a = np.zeros((2, 10, 10), bool)
    b = np.zeros((2, 10, 10), bool)
    a[0, 0:4, 0:4] = True  # 16 px
    b[0, 2:6, 0:4] = True  # 16 px, overlap 8 -> IoU 8 / 24
    per_frame = mask_iou_per_frame(a, b)
    assert per_frame[0] == pytest.approx(8 / 24)
    assert np.isnan(per_frame[1])  # both empty: no information, left out of the mean
    assert mask_iou(a, b) == pytest.approx(8 / 24)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        psnr(np.zeros((1, 8, 8, 3)), np.full((1, 8, 8, 3), 300.0))
    with pytest.raises(ValueError, match="NaN"):
        ssim(np.zeros((1, 8, 8, 3)), np.full((1, 8, 8, 3), np.nan))
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(np.zeros((1, 5, 5, 3), np.uint8), np.zeros((1, 5, 5, 3), np.uint8))


def test_colour_matching_finds_flat_objects_and_respects_the_threshold():
    frame = np.full((1, 20, 20, 3), (50, 120, 60), dtype=np.uint8)
    frame[0, 2:6, 2:6] = (220, 40, 40)
    frame[0, 10:14, 10:14] = (180, 60, 60)  # a "shaded" red at distance ~57 from the object colour
    colours = {1: (220, 40, 40)}
    labels = segment_by_colour(frame, colours, background=np.array([[50, 120, 60]]), max_colour_distance=48)
    truth = np.full((1, 20, 20), -1)
    truth[0, 2:6, 2:6] = 1
    np.testing.assert_array_equal(labels, truth)
    loose = segment_by_colour(frame, colours, background=np.array([[50, 120, 60]]), max_colour_distance=60)
    assert (loose == 1).sum() == 32  # the shaded square joins once the threshold allows it


def _prediction_at_25_db():
    """A [0, 1] float video and a prediction 25 dB away from it (noise std 10^(-25/20) of the range)."""
    rng = np.random.default_rng(4)
    truth = rng.uniform(0.2, 0.8, (4, 32, 32, 3))
    return truth, truth + rng.normal(0, 10 ** (-25 / 20), truth.shape)


def test_float_frames_in_0_1_need_an_explicit_data_range():
    truth, prediction = _prediction_at_25_db()
    # read as 0-255 this would score ~73 dB; refused instead of guessed
    for metric in (psnr, psnr_per_frame, ssim, ssim_per_frame):
        with pytest.raises(ValueError, match=r"float values in \[0, 1\] are ambiguous.*data_range=1.0"):
            metric(truth, prediction.clip(0, 1))
    assert psnr(truth, prediction, data_range=1.0) == pytest.approx(25.0, abs=0.1)
    assert psnr_per_frame(truth, prediction, data_range=1.0) == pytest.approx([25.0] * 4, abs=0.5)


def test_data_range_gives_the_same_scores_as_uint8_frames():
    video = _video(5, (2, 24, 24, 3))
    noisy = np.clip(video.astype(int) + np.random.default_rng(6).integers(-20, 21, video.shape), 0, 255)
    noisy = noisy.astype(np.uint8)
    assert psnr(video / 255, noisy / 255, data_range=1.0) == pytest.approx(psnr(video, noisy), abs=1e-9)
    assert ssim(video / 255, noisy / 255, data_range=1.0) == pytest.approx(ssim(video, noisy), abs=1e-9)
    assert psnr(video / 127.5 - 1, noisy / 127.5 - 1, data_range=2.0) == pytest.approx(psnr(video, noisy), abs=1e-9)
    # float 0-255 frames (values above 1) keep working without a range, as before
    assert psnr(video.astype(np.float32), noisy.astype(np.float32)) == pytest.approx(psnr(video, noisy), abs=1e-9)


def test_data_range_must_cover_the_values():
    video = _video(7, (1, 16, 16, 3))
    with pytest.raises(ValueError, match="more than data_range=1.0"):
        psnr(video, video, data_range=1.0)
    with pytest.raises(ValueError, match="data_range must be a finite number > 0"):
        ssim(video, video, data_range=0)
    with pytest.raises(ValueError, match="data_range must be a finite number > 0"):
        psnr(video, video, data_range=float("nan"))
