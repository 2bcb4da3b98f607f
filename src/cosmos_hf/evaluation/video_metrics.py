"""Pixel metrics for videos: PSNR as TokenBench defines it, SSIM per frame, object-mask IoU.

Conventions (stated once, used everywhere in the evaluation suite):
- Videos are uint8 numpy arrays shaped (T, H, W, 3) with values in [0, 255]; an image (H, W, 3) is a 1-frame video.
- Value range: uint8 videos are on the [0, 255] scale. Float videos need `data_range=` (1.0 for [0, 1] frames,
  255.0 for 0-255 floats, 2.0 for [-1, 1]) unless their values exceed 1 (then they can only be 0-255): float frames in
  [0, 1] read as 0-255 would turn a 25 dB prediction into ~68 dB, so that case is an error, never a guess. Values
  spanning more than `data_range` are an error too.
- PSNR (TokenBench): the mean squared error is taken over the *whole* video (all frames, pixels and channels at
  once) in float64, then PSNR = 20 * log10(data_range / sqrt(MSE)) (data range 255 for uint8). Identical inputs
  give +inf (TokenBench adds float32 eps to sqrt(MSE), which caps identical inputs at ~186 dB; we report inf).
- SSIM: the definition of Wang et al. 2004 with the defaults of `skimage.metrics.structural_similarity` that
  TokenBench calls: a 7x7 *uniform* window, K1=0.01, K2=0.03, the data range (255 for uint8), sample covariance
  (N/(N-1)), the 3-pixel border where the window does not fit excluded, averaged over the 3 channels; a video's SSIM
  is the mean of its per-frame SSIMs.
- IoU: |A and B| / |A or B| of boolean masks. Frames where both masks are empty carry no information and are left
  out of averages (NaN per frame); a video whose frames are all empty in both has IoU NaN.
"""

import numpy as np

UINT8_MAX = 255.0
SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(video_a, video_b, data_range=None, name: str = "videos"):
    """(a, b, data_range): both videos as float64 (T, H, W, 3), and the value range the metrics use."""
    video_a = np.asarray(video_a)
    video_b = np.asarray(video_b)
    if video_a.shape != video_b.shape:
        raise ValueError(f"{name} must have the same shape, got {video_a.shape} and {video_b.shape}")
    if video_a.ndim == 3:
        video_a, video_b = video_a[None], video_b[None]
    if video_a.ndim != 4 or video_a.shape[-1] != 3:
        raise ValueError(f"{name} must be shaped (T, H, W, 3) or (H, W, 3), got {video_a.shape}")
    if video_a.size == 0:
        raise ValueError(f"{name} are empty (shape {video_a.shape})")
    if data_range is not None:
        if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.number)) \
                or not np.isfinite(data_range) or data_range <= 0:
            raise ValueError(f"data_range must be a finite number > 0 (1.0 for [0, 1] frames, 255 for 0-255), "
                             f"got {data_range!r}")
    for video in (video_a, video_b):
        if video.dtype == np.uint8:
            continue
        if not np.issubdtype(video.dtype, np.number) or np.issubdtype(video.dtype, np.complexfloating):
            raise TypeError(f"{name} must be uint8 or real-valued arrays, got dtype {video.dtype}")
        if not np.isfinite(video).all():
            raise ValueError(f"{name} contain NaN or inf values")
        if data_range is None and (video.min() < 0 or video.max() > UINT8_MAX):
            raise ValueError(f"{name} must hold values in [0, 255] (or pass data_range=), got range "
                             f"[{video.min()}, {video.max()}]")
    if data_range is None:
        for video in (video_a, video_b):
            if video.dtype != np.uint8 and video.max() <= 1.0:
                raise ValueError(
                    f"{name}: float values in [0, 1] are ambiguous (frames in [0, 1], or very dark 0-255 frames?): "
                    f"pass data_range=1.0 for [0, 1] frames or data_range=255 for 0-255 frames"
                )
    if data_range is None:
        data_range = UINT8_MAX
    low = min(video_a.min(), video_b.min())
    high = max(video_a.max(), video_b.max())
    if float(high) - float(low) > data_range * (1 + 1e-6):
        raise ValueError(f"{name} span [{low}, {high}], more than data_range={data_range}: pass the range the values "
                         f"were written on (1.0 for [0, 1], 255 for 0-255, 2.0 for [-1, 1])")
    return video_a.astype(np.float64), video_b.astype(np.float64), float(data_range)


def _psnr_from_mse(mse, data_range: float = UINT8_MAX):
    mse = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(mse > 0, 20.0 * np.log10(data_range / np.sqrt(np.maximum(mse, 1e-300))), np.inf)


def psnr(video_a, video_b, data_range: float | None = None) -> float:
    """TokenBench PSNR in dB: one MSE over the whole video. +inf when identical.

    `data_range`: the span of the values (255 for uint8, the default there; 1.0 for float frames in [0, 1]).
    """
    a, b, data_range = _check_pair(video_a, video_b, data_range)
    return float(_psnr_from_mse(np.mean((a - b) ** 2), data_range))


def psnr_per_frame(video_a, video_b, data_range: float | None = None) -> np.ndarray:
    """PSNR of each frame (MSE over that frame's pixels and channels), shape (T,)."""
    a, b, data_range = _check_pair(video_a, video_b, data_range)
    return _psnr_from_mse(np.mean((a - b) ** 2, axis=(1, 2, 3)), data_range)


def ssim_per_frame(video_a, video_b, data_range: float | None = None) -> np.ndarray:
    """SSIM of each frame (7x7 uniform window, channel-averaged; see module docstring), shape (T,)."""
    from scipy.ndimage import uniform_filter

    a, b, data_range = _check_pair(video_a, video_b, data_range)
    height, width = a.shape[1:3]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {height}x{width}")
    # Local statistics over a 7x7 window in each frame and channel (size 1 along time and channel axes).
    window = (1, SSIM_WINDOW, SSIM_WINDOW, 1)
    mean_a = uniform_filter(a, size=window)
    mean_b = uniform_filter(b, size=window)
    mean_aa = uniform_filter(a * a, size=window)
    mean_bb = uniform_filter(b * b, size=window)
    mean_ab = uniform_filter(a * b, size=window)
    num_samples = SSIM_WINDOW * SSIM_WINDOW
    cov_norm = num_samples / (num_samples - 1)  # unbiased (sample) covariance, as skimage's default
    var_a = cov_norm * (mean_aa - mean_a * mean_a)
    var_b = cov_norm * (mean_bb - mean_b * mean_b)
    cov_ab = cov_norm * (mean_ab - mean_a * mean_b)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mean_a * mean_b + c1) * (2 * cov_ab + c2)) / ((mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2))
    pad = (SSIM_WINDOW - 1) // 2  # the border where the window hangs off the image is not scored
    ssim_map = ssim_map[:, pad : height - pad, pad : width - pad, :]
    return ssim_map.mean(axis=(1, 2, 3))


def ssim(video_a, video_b, data_range: float | None = None) -> float:
    """Mean over frames of the per-frame SSIM (TokenBench's video SSIM); `data_range` as for `psnr`."""
    return float(np.mean(ssim_per_frame(video_a, video_b, data_range)))


def mask_iou_per_frame(masks_a, masks_b) -> np.ndarray:
    """IoU of boolean masks per frame, shape (T,); NaN where both masks are empty."""
    masks_a = np.asarray(masks_a, dtype=bool)
    masks_b = np.asarray(masks_b, dtype=bool)
    if masks_a.shape != masks_b.shape:
        raise ValueError(f"masks must have the same shape, got {masks_a.shape} and {masks_b.shape}")
    if masks_a.ndim == 2:
        masks_a, masks_b = masks_a[None], masks_b[None]
    if masks_a.ndim != 3:
        raise ValueError(f"masks must be shaped (T, H, W) or (H, W), got {masks_a.shape}")
    intersection = np.logical_and(masks_a, masks_b).sum(axis=(1, 2)).astype(np.float64)
    union = np.logical_or(masks_a, masks_b).sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.maximum(union, 1), np.nan)


def nanmean_or_nan(values) -> float:
    """Mean ignoring NaNs; NaN (not a warning) when there is nothing to average."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def mask_iou(masks_a, masks_b) -> float:
    """Mean per-frame IoU over the frames where at least one mask is non-empty (NaN if none)."""
    return nanmean_or_nan(mask_iou_per_frame(masks_a, masks_b))
