"""Synthetic videos with exactly known answers, for testing and sanity-checking the metrics.

- `moving_squares_sample`: flat-coloured squares moving at constant velocity over a smooth background, with
  exact masks, shaped like a physics-benchmark sample (the constant-velocity baseline is exact on it).
- `render_room`: a camera inside a textured box room, ray-cast in numpy with exact OpenCV intrinsics and poses
  (non-planar geometry, so essential-matrix pose recovery is well posed); `look_at` and `orbit_path` build paths.
"""

import functools
import zlib

import numpy as np

from .physics import PhysicsSample

SQUARE_COLOURS = {1: (220, 40, 40), 2: (40, 70, 220), 3: (240, 200, 30)}


def moving_squares_sample(
    scene: str = "squares",
    seed: int = 0,
    view: int = 0,
    num_frames: int = 12,
    height: int = 48,
    width: int = 48,
    fps: float = 10.0,
    num_objects: int = 2,
    size: int = 8,
) -> PhysicsSample:
    """Squares (ids 1..num_objects, colours SQUARE_COLOURS) moving by an integer number of pixels per frame."""
    rng = np.random.default_rng([seed, view, zlib.crc32(scene.encode())])
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([60 + 40 * yy / height, 90 + 30 * xx / width, 70 + 0 * xx], axis=-1).astype(np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0).copy()
    masks = np.zeros((num_frames, height, width), dtype=np.int64)
    for object_id in range(1, num_objects + 1):
        top = int(rng.integers(2, height - size - 2))
        left = int(rng.integers(2, width - size - 2))
        velocity = rng.integers(-1, 2, size=2)
        if not velocity.any():
            velocity[1] = 1
        for t in range(num_frames):
            r, c = top + velocity[0] * t, left + velocity[1] * t
            r0, r1 = max(r, 0), min(r + size, height)
            c0, c1 = max(c, 0), min(c + size, width)
            if r0 < r1 and c0 < c1:
                frames[t, r0:r1, c0:c1] = SQUARE_COLOURS[object_id]
                masks[t, r0:r1, c0:c1] = object_id
    return PhysicsSample(
        scene=scene,
        seed=seed,
        view=view,
        frames=frames,
        masks=masks,
        object_ids=list(range(1, num_objects + 1)),
        caption=f"{num_objects} squares sliding",
        object_colours={k: np.array(SQUARE_COLOURS[k], float) for k in range(1, num_objects + 1)},
    )


def intrinsics_from_fov(height: int, width: int, horizontal_fov_degrees: float = 60.0) -> np.ndarray:
    """OpenCV K with square pixels and the principal point at the image centre (same as geometry's default)."""
    from .geometry import default_intrinsics

    return default_intrinsics(height, width, horizontal_fov_degrees)


def look_at(position, target, up=(0.0, -1.0, 0.0)) -> np.ndarray:
    """cam_to_world (4x4, OpenCV axes: x right, y down, z forward) of a camera at `position` looking at `target`."""
    position, target, up = (np.asarray(v, dtype=np.float64) for v in (position, target, up))
    forward = target - position
    forward /= np.linalg.norm(forward)
    # Right-handed camera frame: right = down x forward, down = forward x right.
    right = np.cross(-up, forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, position
    return pose


def orbit_path(
    num_frames: int, yaw_start: float = -20.0, yaw_end: float = 20.0, radius: float = 1.0, height: float = 0.0
) -> np.ndarray:
    """(T, 4, 4) cam_to_world: a camera moving on an arc of `radius` around the room centre.

    At yaw angle a the camera sits at (r sin a, height, -r cos a) and looks along (sin(a + 0.3), 0.15, cos(a + 0.3))
    (y is down): it both translates and turns with the arc (pose recovery needs translation).
    """
    poses = []
    for yaw in np.radians(np.linspace(yaw_start, yaw_end, num_frames)):
        position = np.array([radius * np.sin(yaw), height, -radius * np.cos(yaw)])
        direction = np.array([np.sin(yaw + 0.3), 0.15, np.cos(yaw + 0.3)])
        poses.append(look_at(position, position + direction))
    return np.stack(poses)


@functools.lru_cache(maxsize=4)
def _face_textures(seed: int, size: int = 768) -> tuple:
    """Six random textures with structure at several scales (blobs and edges SIFT can latch onto)."""
    import cv2

    rng = np.random.default_rng(seed)
    textures = []
    for _ in range(6):
        texture = np.zeros((size, size, 3), dtype=np.float32)
        for sigma, weight in ((1.5, 0.6), (5.0, 1.0), (14.0, 1.2)):
            noise = rng.standard_normal((size, size, 3)).astype(np.float32)
            blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
            texture += weight * blurred / (blurred.std() + 1e-6)
        texture = (texture - texture.min()) / (texture.max() - texture.min())
        texture = (texture * 255).astype(np.float32)
        texture.flags.writeable = False  # cached and shared between calls
        textures.append(texture)
    return tuple(textures)


def render_room(
    cam_to_world, intrinsics, height: int, width: int, half_extent=(3.0, 2.0, 3.0), seed: int = 0
) -> np.ndarray:
    """uint8 (T, H, W, 3) views from inside a textured box [-hx,hx]x[-hy,hy]x[-hz,hz] (cameras must be inside)."""
    from scipy.ndimage import map_coordinates

    cam_to_world = np.asarray(cam_to_world, dtype=np.float64)
    if cam_to_world.ndim == 2:
        cam_to_world = cam_to_world[None]
    half_extent = np.asarray(half_extent, dtype=np.float64)
    textures = _face_textures(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([cols.ravel(), rows.ravel(), np.ones(rows.size)])  # OpenCV: (u, v) = (column, row)
    rays_cam = np.linalg.inv(intrinsics) @ pixels
    frames = []
    for pose in cam_to_world:
        origin = pose[:3, 3]
        if np.any(np.abs(origin) >= half_extent):
            raise ValueError(f"camera at {origin} is outside the room (half extent {half_extent})")
        directions = pose[:3, :3] @ rays_cam  # (3, N)
        # Distance along each ray to the wall it faces on every axis; the nearest is the wall it hits.
        with np.errstate(divide="ignore"):
            t_axis = (np.sign(directions) * half_extent[:, None] - origin[:, None]) / directions
        t_axis[~np.isfinite(t_axis)] = np.inf
        axis = np.argmin(t_axis, axis=0)
        t_hit = t_axis[axis, np.arange(axis.size)]
        hit = origin[:, None] + directions * t_hit
        image = np.zeros((3, axis.size))
        size = textures[0].shape[0]
        for face in range(6):
            a, positive = face // 2, face % 2 == 1
            select = (axis == a) & ((directions[a] > 0) == positive)
            if not select.any():
                continue
            u_axis, v_axis = [k for k in range(3) if k != a]
            u = (hit[u_axis, select] / half_extent[u_axis] + 1) / 2 * (size - 1)
            v = (hit[v_axis, select] / half_extent[v_axis] + 1) / 2 * (size - 1)
            for channel in range(3):
                image[channel, select] = map_coordinates(textures[face][..., channel], [v, u], order=1, mode="nearest")
        frames.append(image.T.reshape(height, width, 3))
    return np.clip(np.round(np.stack(frames)), 0, 255).astype(np.uint8)
