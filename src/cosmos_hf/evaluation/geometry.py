"""3D consistency of a video: SIFT matches, Sampson error, and relative-pose recovery between frames (OpenCV).

Conventions:
- Matching: OpenCV SIFT on grayscale frames, brute-force L2 matching, Lowe's ratio test at 0.75.
- Sampson error is in **pixels** of the evaluated video: for a match (x, x') and a fundamental matrix F it is the
  first-order geometric distance sqrt((x'^T F x)^2 / ((Fx)_1^2 + (Fx)_2^2 + (F^T x')_1^2 + (F^T x')_2^2)),
  i.e. the square root of Hartley & Zisserman's Sampson distance (eq. 11.9). F is fitted to the pair's matches
  with OpenCV's USAC_ACCURATE robust estimator (RANSAC family with local optimisation; 1 px threshold,
  confidence 0.999); a pair's Sampson error is the mean over *all* ratio-test
  matches (so inconsistent content raises it), the median is reported too.
- Pose recovery: essential matrix from the matches and the intrinsics K (USAC_ACCURATE, 1 px, 0.999), then
  `cv2.recoverPose`. A pair **succeeds** when it has >= 20 matches and recoverPose keeps >= 15 inliers that pass
  the cheirality check and those are >= 50% of the matches. A video succeeds when every evaluated pair does.
  (An essential matrix needs translation: a camera that only rotates, or moves very little relative to the scene
  depth, gives unreliable poses by construction. Plain RANSAC without local optimisation was 5-20x less accurate on
  the synthetic room of `synthetic.render_room`, hence USAC_ACCURATE.)
- Frames are paired with their successor at `stride` (frame i with i+stride).
- Without known intrinsics, K assumes square pixels, a centred principal point and a 60 degree horizontal FOV.
"""

from dataclasses import dataclass

import numpy as np

RATIO_TEST = 0.75
RANSAC_THRESHOLD_PX = 1.0
RANSAC_CONFIDENCE = 0.999


@dataclass
class PoseSuccessRule:
    """When a frame pair counts as a recovered pose."""

    min_matches: int = 20
    min_inliers: int = 15
    min_inlier_ratio: float = 0.5


def default_intrinsics(height: int, width: int, horizontal_fov_degrees: float = 60.0) -> np.ndarray:
    focal = 0.5 * width / np.tan(np.radians(horizontal_fov_degrees) / 2)
    return np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=np.float64)


def _gray(image):
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def sift_matches(image_a, image_b, ratio: float = RATIO_TEST, max_keypoints: int = 4000):
    """Matched pixel coordinates (N, 2) float64 in each image (x = column, y = row), ratio-tested."""
    import cv2

    sift = cv2.SIFT_create(nfeatures=max_keypoints)
    keypoints_a, descriptors_a = sift.detectAndCompute(_gray(image_a), None)
    keypoints_b, descriptors_b = sift.detectAndCompute(_gray(image_b), None)
    if descriptors_a is None or descriptors_b is None or len(keypoints_a) < 2 or len(keypoints_b) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(descriptors_a, descriptors_b, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    points_a = np.array([keypoints_a[m.queryIdx].pt for m in good], dtype=np.float64).reshape(-1, 2)
    points_b = np.array([keypoints_b[m.trainIdx].pt for m in good], dtype=np.float64).reshape(-1, 2)
    return points_a, points_b


def sampson_errors(fundamental, points_a, points_b) -> np.ndarray:
    """Per-match first-order geometric error in pixels (square root of the Sampson distance), shape (N,)."""
    fundamental = np.asarray(fundamental, dtype=np.float64)
    xa = np.concatenate([points_a, np.ones((len(points_a), 1))], axis=1)
    xb = np.concatenate([points_b, np.ones((len(points_b), 1))], axis=1)
    f_xa = xa @ fundamental.T  # rows: F x_a (epipolar lines in image b)
    ft_xb = xb @ fundamental  # rows: F^T x_b (epipolar lines in image a)
    numerator = np.sum(xb * f_xa, axis=1) ** 2
    denominator = f_xa[:, 0] ** 2 + f_xa[:, 1] ** 2 + ft_xb[:, 0] ** 2 + ft_xb[:, 1] ** 2
    return np.sqrt(numerator / np.maximum(denominator, 1e-300))


def fundamental_from_poses(intrinsics_a, intrinsics_b, rotation, translation) -> np.ndarray:
    """F such that x_b^T F x_a = 0 for cameras related by X_b = R X_a + t (exact epipolar geometry)."""
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    t_cross = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    essential = t_cross @ np.asarray(rotation, dtype=np.float64)
    return np.linalg.inv(intrinsics_b).T @ essential @ np.linalg.inv(intrinsics_a)


def analyse_pair(image_a, image_b, intrinsics, rule: PoseSuccessRule = PoseSuccessRule()) -> dict:
    """SIFT matches, Sampson error (pixels) and relative pose (X_b = R X_a + t, |t| = 1) of one frame pair."""
    import cv2

    points_a, points_b = sift_matches(image_a, image_b)
    result = {
        "num_matches": int(len(points_a)),
        "sampson_error_px": float("nan"),
        "sampson_error_median_px": float("nan"),
        "fundamental_inlier_ratio": float("nan"),
        "pose_inliers": 0,
        "pose_success": False,
        "rotation": None,
        "translation": None,
    }
    if len(points_a) >= 8:
        try:
            fundamental, inliers = cv2.findFundamentalMat(
                points_a, points_b, cv2.USAC_ACCURATE, RANSAC_THRESHOLD_PX, RANSAC_CONFIDENCE
            )
        except cv2.error:  # USAC asserts on degenerate samples (e.g. all matches on a line): no model
            fundamental, inliers = None, None
        if fundamental is not None and fundamental.shape == (3, 3):
            errors = sampson_errors(fundamental, points_a, points_b)
            result["sampson_error_px"] = float(errors.mean())
            result["sampson_error_median_px"] = float(np.median(errors))
            result["fundamental_inlier_ratio"] = float(inliers.mean()) if inliers is not None else float("nan")
    if len(points_a) >= max(5, rule.min_matches):
        intrinsics = np.asarray(intrinsics, dtype=np.float64)
        try:
            essential, mask = cv2.findEssentialMat(
                points_a,
                points_b,
                intrinsics,
                method=cv2.USAC_ACCURATE,
                prob=RANSAC_CONFIDENCE,
                threshold=RANSAC_THRESHOLD_PX,
            )
        except cv2.error:  # degenerate sample set: no essential matrix, the pair fails
            essential, mask = None, None
        if essential is not None and essential.shape == (3, 3):
            num_inliers, rotation, translation, _ = cv2.recoverPose(
                essential, points_a, points_b, intrinsics, mask=mask
            )
            result["pose_inliers"] = int(num_inliers)
            result["rotation"] = rotation
            result["translation"] = translation.reshape(3)
            result["pose_success"] = bool(
                num_inliers >= rule.min_inliers and num_inliers >= rule.min_inlier_ratio * len(points_a)
            )
    return result


def _validate_video(video):
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"video must be uint8 (T, H, W, 3), got {video.dtype} {video.shape}")
    if len(video) < 2:
        raise ValueError(f"3D consistency needs at least 2 frames, got {len(video)}")
    return video


def geometric_consistency(
    video, intrinsics=None, stride: int = 1, rule: PoseSuccessRule = PoseSuccessRule(), progress: bool = False
) -> dict:
    """Sampson error and pose-recovery success over the frame pairs (i, i+stride) of one video."""
    from tqdm.auto import tqdm

    video = _validate_video(video)
    if stride < 1 or stride >= len(video):
        raise ValueError(f"stride must be in [1, {len(video) - 1}] for a {len(video)}-frame video, got {stride}")
    if intrinsics is None:
        intrinsics = default_intrinsics(*video.shape[1:3])
    pairs = []
    for i in tqdm(range(len(video) - stride), desc="frame pairs", disable=not progress):
        pair = analyse_pair(video[i], video[i + stride], intrinsics, rule)
        pairs.append({k: v for k, v in pair.items() if k not in ("rotation", "translation")})
    errors = [p["sampson_error_px"] for p in pairs if not np.isnan(p["sampson_error_px"])]
    successes = [p["pose_success"] for p in pairs]
    return {
        "num_pairs": len(pairs),
        "sampson_error_px": float(np.mean(errors)) if errors else float("nan"),
        "pose_success_rate": float(np.mean(successes)),
        "video_pose_success": bool(all(successes)),
        "mean_matches": float(np.mean([p["num_matches"] for p in pairs])),
        "pairs": pairs,
        "stride": stride,
    }
