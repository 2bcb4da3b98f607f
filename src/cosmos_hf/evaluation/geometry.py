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
- Frame pairs: by parallax (default). From an anchor frame, the next frame whose ratio-tested matches with the
  anchor moved a median of at least `min_parallax_px` (default 8 % of the frame width) is its partner and the next
  anchor; consecutive frames of a 30 fps handheld video have almost no baseline, so pairing them (the old default)
  failed pose recovery on perfectly consistent footage. A pair too unlike its anchor to measure parallax (fewer
  matches than the success rule needs) is evaluated as it is, so shuffled or inconsistent frames still fail. With
  `stride`, frames are paired with their successor at that stride instead (frame i with i+stride).
- SIFT runs once per frame that is used (features are cached), matching keeps at most `MAX_KEYPOINTS` per frame.
- Without known intrinsics, K assumes square pixels, a centred principal point and a 60 degree horizontal FOV.
"""

from dataclasses import dataclass

import numpy as np

RATIO_TEST = 0.75
RANSAC_THRESHOLD_PX = 1.0
RANSAC_CONFIDENCE = 0.999
MAX_KEYPOINTS = 2000  # per frame; matching cost grows with the square of it
DEFAULT_MIN_PARALLAX = 0.08  # of the frame width: the median match displacement that makes a pair


@dataclass
class PoseSuccessRule:
    """When a frame pair counts as a recovered pose."""

    min_matches: int = 20
    min_inliers: int = 15
    min_inlier_ratio: float = 0.5


def default_intrinsics(height: int, width: int, horizontal_fov_degrees: float = 60.0) -> np.ndarray:
    # Outside (0, 180) the focal length is infinite, zero or negative (mirrored axes: poses "succeed", wrongly).
    if not 0 < horizontal_fov_degrees < 180:
        raise ValueError(f"horizontal field of view must be in (0, 180) degrees, got {horizontal_fov_degrees}")
    focal = 0.5 * width / np.tan(np.radians(horizontal_fov_degrees) / 2)
    return np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=np.float64)


def check_intrinsics(intrinsics) -> np.ndarray:
    """K as float64 (3, 3), or a ValueError: a negative focal length mirrors the image axes and OpenCV recovers a
    mirrored pose without complaint; a zero or infinite one, or a last row other than [0, 0, 1], fails every pair."""
    matrix = np.asarray(intrinsics, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.isfinite(matrix).all() or matrix[0, 0] <= 0 or matrix[1, 1] <= 0 \
            or not np.array_equal(matrix[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"intrinsics must be a finite 3x3 K with focal lengths fx, fy > 0 and last row [0, 0, 1] "
                         f"(pixels, OpenCV), got {matrix.tolist()}")
    return matrix


def _gray(image):
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def sift_features(image, max_keypoints: int = 4000):
    """(points (N, 2) float64 as (x, y), descriptors (N, 128) float32 or None) of one image."""
    import cv2

    keypoints, descriptors = cv2.SIFT_create(nfeatures=max_keypoints).detectAndCompute(_gray(image), None)
    return np.array([k.pt for k in keypoints], dtype=np.float64).reshape(-1, 2), descriptors


def match_features(features_a, features_b, ratio: float = RATIO_TEST):
    """Ratio-tested matches between two `sift_features` results: matched points (N, 2) in each image."""
    import cv2

    (points_a, descriptors_a), (points_b, descriptors_b) = features_a, features_b
    if descriptors_a is None or descriptors_b is None or len(points_a) < 2 or len(points_b) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(descriptors_a, descriptors_b, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    index_a = np.array([m.queryIdx for m in good], dtype=int)
    index_b = np.array([m.trainIdx for m in good], dtype=int)
    return points_a[index_a].reshape(-1, 2), points_b[index_b].reshape(-1, 2)


def sift_matches(image_a, image_b, ratio: float = RATIO_TEST, max_keypoints: int = 4000):
    """Matched pixel coordinates (N, 2) float64 in each image (x = column, y = row), ratio-tested."""
    return match_features(sift_features(image_a, max_keypoints), sift_features(image_b, max_keypoints), ratio)


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


def analyse_pair(image_a, image_b, intrinsics, rule: PoseSuccessRule = PoseSuccessRule(), matches=None) -> dict:
    """SIFT matches, Sampson error (pixels) and relative pose (X_b = R X_a + t, |t| = 1) of one frame pair.
    `matches`: (points_a, points_b) already matched (then the images are not used)."""
    import cv2

    points_a, points_b = matches if matches is not None else sift_matches(image_a, image_b)
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
    video,
    intrinsics=None,
    stride: int | None = None,
    rule: PoseSuccessRule = PoseSuccessRule(),
    progress: bool = False,
    min_parallax_px: float | None = None,
    max_frames: int | None = None,
) -> dict:
    """Sampson error and pose-recovery success over frame pairs of one video.

    Pairs are chosen by parallax (see the module docstring; `min_parallax_px` defaults to 8 % of the frame width),
    or are (i, i+stride) for every i when `stride` is given. `max_frames`: use only the first that many frames.
    """
    from tqdm.auto import tqdm

    video = _validate_video(video)
    if max_frames is not None:
        if max_frames < 2:
            raise ValueError(f"max_frames must be >= 2 (a pair needs two frames), got {max_frames}")
        video = video[:max_frames]
    if stride is not None and (stride < 1 or stride >= len(video)):
        raise ValueError(f"stride must be in [1, {len(video) - 1}] for a {len(video)}-frame video, got {stride}")
    if min_parallax_px is None:
        min_parallax_px = DEFAULT_MIN_PARALLAX * video.shape[2]
    if min_parallax_px < 0:
        raise ValueError(f"min_parallax_px must be >= 0, got {min_parallax_px}")
    intrinsics = default_intrinsics(*video.shape[1:3]) if intrinsics is None else check_intrinsics(intrinsics)

    features = {}

    def matches(i, j):
        for k in (i, j):
            if k not in features:
                features[k] = sift_features(video[k], MAX_KEYPOINTS)
        return match_features(features[i], features[j])

    pairs = []
    bar = tqdm(total=len(video) - 1, desc="frame pairs", unit="frame", disable=not progress)

    def evaluate(i, j, matched, parallax):
        pair = analyse_pair(None, None, intrinsics, rule, matches=matched)
        pair = {k: v for k, v in pair.items() if k not in ("rotation", "translation")}
        pairs.append({"frames": [int(i), int(j)], "parallax_px": parallax, **pair})

    if stride is not None:
        for i in range(len(video) - stride):
            matched = matches(i, i + stride)
            evaluate(i, i + stride, matched, _median_displacement(*matched))
            bar.update(1)
    else:
        def far_enough(i, j):
            matched = matches(i, j)
            parallax = _median_displacement(*matched)
            return len(matched[0]) < rule.min_matches or parallax >= min_parallax_px, matched, parallax

        anchor, step = 0, 1
        while anchor < len(video) - 1:
            # Widen the gap (doubling) until the matches moved enough, or too few remain to measure it; then
            # bisect back to the nearest such frame, so pairs have about the parallax asked for, not up to twice it.
            near, j = anchor, min(anchor + step, len(video) - 1)
            while True:
                enough, matched, parallax = far_enough(anchor, j)
                if enough or j == len(video) - 1:
                    break
                near, j, step = j, min(j + step, len(video) - 1), step * 2
            while enough and j - near > 1:
                middle = (near + j) // 2
                closer = far_enough(anchor, middle)
                if closer[0]:
                    j, (enough, matched, parallax) = middle, closer
                else:
                    near = middle
            if not enough and pairs:
                break  # the rest of the video has too little parallax for another pair
            evaluate(anchor, j, matched, parallax)
            pairs[-1]["low_parallax"] = not enough
            bar.update(j - anchor)
            # Free the features of frames that can no longer be an anchor or partner.
            for k in [k for k in features if k < j]:
                del features[k]
            step = max(1, (j - anchor) // 2)
            anchor = j
    bar.close()
    errors = [p["sampson_error_px"] for p in pairs if not np.isnan(p["sampson_error_px"])]
    successes = [p["pose_success"] for p in pairs]
    return {
        "num_pairs": len(pairs),
        "num_frames": len(video),
        "sampson_error_px": float(np.mean(errors)) if errors else float("nan"),
        "pose_success_rate": float(np.mean(successes)),
        "video_pose_success": bool(all(successes)),
        "mean_matches": float(np.mean([p["num_matches"] for p in pairs])),
        "pairs": pairs,
        "stride": stride,
        "min_parallax_px": None if stride is not None else float(min_parallax_px),
    }


def _median_displacement(points_a, points_b) -> float:
    """Median distance (pixels) that matched keypoints moved between two frames; 0 without matches."""
    if len(points_a) == 0:
        return 0.0
    return float(np.median(np.linalg.norm(points_b - points_a, axis=1)))
