"""Camera-control accuracy: the trajectory recovered from a generated video against the requested one.

Recovery: consecutive frames (i, i+1) give a relative pose with `geometry.analyse_pair` (SIFT, essential matrix,
recoverPose). Monocular pose recovery knows each step's translation only up to scale, so each recovered step gets
the length of the requested step (the metric judges direction and rotation, and their accumulated drift, not
speed); a failed pair contributes no motion (identity rotation, zero translation) and is counted.

Matchers (`matcher=`): "sift" (default; the geometry metric's SIFT + ratio test) or "klt": Shi-Tomasi corners
tracked with pyramidal Lucas-Kanade and kept when tracking back lands within 0.5 px of the start. SIFT needs texture
and resolution: on the built-in world's 64x64 camera-task clips (flat-coloured objects on a plain floor) it finds
5-12 matches per pair and recovers no pose even from the true rendering, so a 64x64 video cannot be told from a
still one; KLT tracks the objects' corners and recovers about half the orbit pairs and 80% of the dolly pairs of the
true rendering (training/report_camera_control.py). Pose estimation and the success rule are the same for both.

Errors, with all poses expressed relative to the first frame (OpenCV camera axes, cam_to_world matrices):
- rotation error of frame i: the geodesic angle in degrees between the recovered and requested rotations,
  arccos((trace(R_gen^T R_req) - 1) / 2); `rotation_error_deg` is the mean over frames 1..T-1;
- translation error of frame i: || c_gen_i - c_req_i || of the camera centres divided by the requested
  trajectory's extent (max_i || c_req_i ||), so 1.0 means "off by the whole path length";
  `translation_error` is the mean over frames 1..T-1. It is None (undefined) when the requested camera centre does
  not move (a pan or a still camera: nothing to normalise by); the rotation error is still reported.
"""

import numpy as np

from .geometry import PoseSuccessRule, analyse_pair, check_intrinsics


def rotation_angle_degrees(rotation_a, rotation_b) -> float:
    """Geodesic distance between two rotation matrices, in degrees.

    atan2 of the sine (from the skew part) and the cosine (from the trace): arccos of the cosine alone loses
    precision near 0 (two rounding steps of the trace read as 1.7e-6 degrees for identical rotations)."""
    relative = np.asarray(rotation_a, dtype=np.float64).T @ np.asarray(rotation_b, dtype=np.float64)
    cosine = (np.trace(relative) - 1.0) / 2.0
    sine = 0.5 * np.linalg.norm([relative[2, 1] - relative[1, 2], relative[0, 2] - relative[2, 0],
                                 relative[1, 0] - relative[0, 1]])
    return float(np.degrees(np.arctan2(sine, cosine)))


def _relative_to_first(cam_to_world):
    cam_to_world = np.asarray(cam_to_world, dtype=np.float64)
    return np.linalg.inv(cam_to_world[0])[None] @ cam_to_world


def validate_poses(cam_to_world, num_frames: int | None = None) -> np.ndarray:
    cam_to_world = np.asarray(cam_to_world, dtype=np.float64)
    if cam_to_world.ndim != 3 or cam_to_world.shape[1:] != (4, 4):
        raise ValueError(f"camera poses must be cam_to_world matrices shaped (T, 4, 4), got {cam_to_world.shape}")
    if not np.isfinite(cam_to_world).all():
        raise ValueError("camera poses contain NaN or inf")
    rotations = cam_to_world[:, :3, :3]
    if np.abs(rotations @ rotations.transpose(0, 2, 1) - np.eye(3)).max() > 1e-3:
        raise ValueError("camera poses' 3x3 blocks are not rotations (R R^T != I)")
    if num_frames is not None and len(cam_to_world) != num_frames:
        raise ValueError(f"{len(cam_to_world)} camera poses for a {num_frames}-frame video; they must match")
    return cam_to_world


MATCHERS = ("sift", "klt")
KLT_MAX_CORNERS = 400
KLT_MIN_CORNER_DISTANCE_PX = 3
KLT_WINDOW_PX = 9
KLT_FORWARD_BACKWARD_PX = 0.5


def klt_matches(image_a, image_b):
    """Corners of `image_a` tracked into `image_b` (pyramidal Lucas-Kanade, forward-backward checked): matched
    pixel coordinates (N, 2) float64 in each image, as `geometry.sift_matches` returns them."""
    import cv2

    gray_a, gray_b = (cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2GRAY) for image in (image_a, image_b))
    corners = cv2.goodFeaturesToTrack(gray_a, KLT_MAX_CORNERS, 0.01, KLT_MIN_CORNER_DISTANCE_PX)
    if corners is None:
        return np.zeros((0, 2)), np.zeros((0, 2))
    window = (KLT_WINDOW_PX, KLT_WINDOW_PX)
    tracked, found, _ = cv2.calcOpticalFlowPyrLK(gray_a, gray_b, corners, None, winSize=window, maxLevel=2)
    back, found_back, _ = cv2.calcOpticalFlowPyrLK(gray_b, gray_a, tracked, None, winSize=window, maxLevel=2)
    keep = (found[:, 0] == 1) & (found_back[:, 0] == 1)
    keep &= np.linalg.norm((back - corners)[:, 0], axis=1) < KLT_FORWARD_BACKWARD_PX
    return corners[keep, 0].astype(np.float64), tracked[keep, 0].astype(np.float64)


def _pair_matches(image_a, image_b, matcher: str):
    from .geometry import sift_matches

    return sift_matches(image_a, image_b) if matcher == "sift" else klt_matches(image_a, image_b)


def recover_trajectory(
    video, intrinsics, requested_cam_to_world, rule: PoseSuccessRule = PoseSuccessRule(), matcher: str = "sift"
) -> dict:
    """cam_to_world (T, 4, 4) relative to frame 0 recovered from `video`, with step lengths from the request."""
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r}; choose one of {', '.join(MATCHERS)}")
    video = np.asarray(video)
    requested = _relative_to_first(validate_poses(requested_cam_to_world, len(video)))
    poses = [np.eye(4)]
    successes = []
    for i in range(len(video) - 1):
        pair = analyse_pair(None, None, intrinsics, rule, matches=_pair_matches(video[i], video[i + 1], matcher))
        # Requested step as world_to_cam(i+1) @ cam_to_world(i): X_{i+1} = R X_i + t.
        step = np.linalg.inv(requested[i + 1]) @ requested[i]
        step_length = np.linalg.norm(step[:3, 3])
        relative = np.eye(4)
        if pair["pose_success"]:
            relative[:3, :3] = pair["rotation"]
            relative[:3, 3] = pair["translation"] / max(np.linalg.norm(pair["translation"]), 1e-12) * step_length
        successes.append(bool(pair["pose_success"]))
        poses.append(poses[-1] @ np.linalg.inv(relative))  # cam_to_world(i+1) = cam_to_world(i) @ cam_i_from_cam_{i+1}
    return {"cam_to_world": np.stack(poses), "pair_success": successes}


def trajectory_errors(recovered_cam_to_world, requested_cam_to_world) -> dict:
    """Rotation (degrees) and normalised translation errors per frame and their means over frames 1..T-1."""
    recovered = _relative_to_first(validate_poses(recovered_cam_to_world))
    requested = _relative_to_first(validate_poses(requested_cam_to_world, len(recovered)))
    if len(requested) < 2:
        raise ValueError("a trajectory needs at least 2 frames")
    rotation = np.array([rotation_angle_degrees(a[:3, :3], b[:3, :3]) for a, b in zip(recovered, requested)])
    extent = np.linalg.norm(requested[:, :3, 3], axis=1).max()
    # A pan (or a still camera) keeps the camera centre fixed: expressing its poses relative to the first frame
    # leaves only rounding noise (~1e-16 of the scene's scale) as "extent", and dividing by it would score any
    # recovered path as off by the whole path. Its translation error is undefined (None); rotation still counts.
    scene_scale = max(1.0, float(np.abs(np.asarray(requested_cam_to_world, dtype=np.float64)[:, :3, 3]).max()))
    if extent <= 1e-9 * scene_scale:
        translation = [None] * len(requested)
        translation_mean = None
    else:
        translation = (np.linalg.norm(recovered[:, :3, 3] - requested[:, :3, 3], axis=1) / extent).tolist()
        translation_mean = float(np.mean(translation[1:]))
    return {
        "rotation_error_deg": float(rotation[1:].mean()),
        "translation_error": translation_mean,
        "rotation_error_per_frame": rotation.tolist(),
        "translation_error_per_frame": translation,
    }


def camera_control_errors(
    video, requested_cam_to_world, intrinsics, rule: PoseSuccessRule = PoseSuccessRule(), matcher: str = "sift"
) -> dict:
    """The camera-control table's numbers for one generated video and the trajectory it was asked to follow
    (`matcher`: "sift" or "klt", see the module docstring)."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or len(video) < 2:
        raise ValueError(f"video must be uint8 (T>=2, H, W, 3), got {video.dtype} {video.shape}")
    intrinsics = check_intrinsics(intrinsics)
    recovered = recover_trajectory(video, intrinsics, requested_cam_to_world, rule, matcher)
    errors = trajectory_errors(recovered["cam_to_world"], requested_cam_to_world)
    errors["pose_success_rate"] = float(np.mean(recovered["pair_success"]))
    errors["matcher"] = matcher
    errors["recovered_cam_to_world"] = recovered["cam_to_world"].tolist()
    return errors
