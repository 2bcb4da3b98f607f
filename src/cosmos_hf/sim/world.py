"""The pybullet world every task builds on: a DIRECT-mode client, bodies with object ids, cameras and rendering.

Conventions (used by every record in `cosmos_hf.sim`):
- World frame: metres, z up, the floor's top surface is z = 0, gravity -9.81 m/s^2 along z.
- Cameras follow OpenCV: `cam_to_world` is a 4x4 matrix whose rotation columns are the camera's x (right),
  y (down) and z (forward, viewing direction) axes in world coordinates, and whose last column is the
  camera centre. `intrinsics` K is 3x3 in pixels: u = fx * x / z + cx, v = fy * y / z + cy, where the centre
  of pixel (row i, column j) is (u, v) = (j, i) (OpenCV's convention; the image centre is ((W-1)/2, (H-1)/2)).
  This is calibrated against TinyRenderer's rasteriser and checked by tests (projected object centres land
  on mask centroids).
- Masks hold object ids: 0 is background (floor and sky), 1..N index `objects` (id -> name, shape, colour).
- Depth is the z-distance along the optical axis in metres (what K back-projects); 0 where nothing was hit.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

GRAVITY = 9.81

# Few, saturated colours: objects stay legible at 64x64 and captions can name them.
OBJECT_COLORS = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.75, 0.20),
    "blue": (0.10, 0.30, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "magenta": (0.90, 0.15, 0.80),
    "cyan": (0.10, 0.80, 0.90),
    "orange": (1.00, 0.50, 0.05),
    "purple": (0.50, 0.15, 0.85),
}
# Plain, muted floors so objects stand out.
FLOOR_COLORS = {
    "grey": (0.55, 0.55, 0.55),
    "light grey": (0.75, 0.75, 0.75),
    "beige": (0.78, 0.72, 0.60),
    "dark grey": (0.35, 0.35, 0.37),
    "pale blue": (0.62, 0.68, 0.75),
}
STATIC_COLORS = {"white": (0.92, 0.92, 0.92), "brown": (0.55, 0.38, 0.22), "dark grey": (0.30, 0.30, 0.32)}

MIN_SIZE, MAX_SIZE = 16, 1024


def check_size(height: int, width: int) -> None:
    """Frame sizes must be multiples of 8 in [16, 1024] (video codecs and the 8x tokenizers need it)."""
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if value < MIN_SIZE or value > MAX_SIZE or value % 8:
            raise ValueError(f"{name} must be a multiple of 8 between {MIN_SIZE} and {MAX_SIZE}, got {value}")


def check_frames(num_frames: int, fps: float) -> None:
    if not isinstance(num_frames, (int, np.integer)) or isinstance(num_frames, bool) or not 1 <= num_frames <= 2048:
        raise ValueError(f"num_frames must be an integer between 1 and 2048, got {num_frames!r}")
    if not isinstance(fps, (int, float, np.integer, np.floating)) or not 1 <= fps <= 240:
        raise ValueError(f"fps must be a number between 1 and 240, got {fps!r}")


# ----------------------------------------------------------------------------------------------- geometry


def euler_to_matrix(rpy) -> np.ndarray:
    """Roll/pitch/yaw (radians) -> rotation matrix R = Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    roll, pitch, yaw = rpy
    cr, sr, cp, sp, cy, sy = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def matrix_to_euler(rot) -> np.ndarray:
    """Inverse of `euler_to_matrix` (pitch in [-pi/2, pi/2])."""
    rot = np.asarray(rot)
    pitch = -math.asin(max(-1.0, min(1.0, rot[2, 0])))
    if abs(rot[2, 0]) < 1 - 1e-9:
        roll = math.atan2(rot[2, 1], rot[2, 2])
        yaw = math.atan2(rot[1, 0], rot[0, 0])
    else:  # gimbal lock: put everything in yaw
        roll = 0.0
        yaw = math.atan2(-rot[0, 1], rot[1, 1])
    return np.array([roll, pitch, yaw])


def quat_to_matrix(q) -> np.ndarray:
    """pybullet quaternion (x, y, z, w) -> 3x3 rotation matrix."""
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(rot) -> tuple:
    """3x3 rotation matrix -> (x, y, z, w)."""
    m = np.asarray(rot, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 0.5 / math.sqrt(trace + 1.0)
        w, x, y, z = 0.25 / s, (m[2, 1] - m[1, 2]) * s, (m[0, 2] - m[2, 0]) * s, (m[1, 0] - m[0, 1]) * s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x, y, z = (m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x, y, z = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x, y, z = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s
    return (x, y, z, w)


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV cam_to_world (x right, y down, z forward) for a camera at `eye` looking at `target`."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight along `up`: any right vector will do
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    cam_to_world = np.eye(4)
    cam_to_world[:3, 0], cam_to_world[:3, 1], cam_to_world[:3, 2], cam_to_world[:3, 3] = right, down, forward, eye
    return cam_to_world


def orbit_eye(target, distance: float, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Camera centre on a sphere around `target`; azimuth 0 puts the camera on the -y side looking along +y."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    offset = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])
    return np.asarray(target, dtype=np.float64) + distance * offset


def intrinsics_from_fov(height: int, width: int, fov_y_deg: float) -> np.ndarray:
    """Pinhole K (pixels, OpenCV) for a vertical field of view, square pixels, principal point at the centre."""
    fy = (height / 2.0) / math.tan(math.radians(fov_y_deg) / 2.0)
    return np.array([[fy, 0.0, (width - 1) / 2.0], [0.0, fy, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


# ----------------------------------------------------------------------------------------------- world


@contextlib.contextmanager
def _quiet_native_output():
    """pybullet's C code prints banners ("pybullet build time", "argv[0]=") on fds 1/2; keep them off the console."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
    except (OSError, ValueError, AttributeError):  # no real fds (e.g. some notebook kernels): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


@dataclass
class SimObject:
    """One object (mask id `object_id`) made of pybullet body parts; its pose is that of `body` / `link`."""

    object_id: int
    name: str
    shape: str
    color_name: str
    color: tuple
    body: int
    link: int = -1
    mass: float = 0.0
    size: tuple = ()
    static: bool = False
    extra_bodies: list = field(default_factory=list)

    def metadata(self) -> dict:
        return {
            "id": self.object_id,
            "name": self.name,
            "shape": self.shape,
            "color": self.color_name,
            "rgb": [int(round(255 * c)) for c in self.color],
            "mass": round(float(self.mass), 6),
            "size": [round(float(s), 6) for s in self.size],
            "static": self.static,
        }


@dataclass
class Lighting:
    direction: tuple = (0.4, -0.5, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.45
    specular: float = 0.05
    shadow: bool = True

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Lighting":
        az = rng.uniform(0, 2 * math.pi)
        el = rng.uniform(math.radians(35), math.radians(80))
        direction = (math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el))
        return cls(
            direction=tuple(round(float(v), 6) for v in direction),
            ambient=round(float(rng.uniform(0.5, 0.7)), 6),
            diffuse=round(float(rng.uniform(0.3, 0.5)), 6),
            specular=round(float(rng.uniform(0.0, 0.1)), 6),
        )

    def as_dict(self) -> dict:
        return {"direction": list(self.direction), "ambient": self.ambient, "diffuse": self.diffuse,
                "specular": self.specular, "shadow": self.shadow}


class SimWorld:
    """A fresh pybullet DIRECT client with a floor, named objects and a fixed physics rate.

    The physics step is decoupled from the video frame rate: `advance(1 / fps)` runs as many sub-steps of at most
    `1 / physics_hz` seconds as needed, so the integration error does not depend on fps.
    """

    def __init__(self, physics_hz: float = 960.0, floor_color: str = "grey"):
        with _quiet_native_output():
            import pybullet
            from pybullet_utils import bullet_client

            self.pb = pybullet
            self.client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self.client.setGravity(0, 0, -GRAVITY)
        self.physics_hz = float(physics_hz)
        self.objects: list[SimObject] = []
        self.time = 0.0
        self.floor_color_name = floor_color
        self.floor_color = FLOOR_COLORS[floor_color]
        # A thick box rather than GEOM_PLANE: TinyRenderer shades and shadows it like any other surface.
        half = (6.0, 6.0, 0.05)
        col = self.client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half)
        vis = self.client.createVisualShape(pybullet.GEOM_BOX, halfExtents=half, rgbaColor=(*self.floor_color, 1))
        self.floor = self.client.createMultiBody(0, col, vis, basePosition=(0, 0, -half[2]))
        self.client.changeDynamics(self.floor, -1, lateralFriction=0.6, restitution=1.0)
        self._segmentation_lut = None

    def close(self):
        if self.client is not None:
            self.client.disconnect()
            self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------------------------- adding objects

    def _shape(self, shape: str, size, color):
        pb, c = self.pb, self.client
        rgba = (*color, 1.0)
        if shape == "sphere":
            col = c.createCollisionShape(pb.GEOM_SPHERE, radius=size[0])
            vis = c.createVisualShape(pb.GEOM_SPHERE, radius=size[0], rgbaColor=rgba)
        elif shape == "cylinder":  # size = (radius, half height), axis along local z
            col = c.createCollisionShape(pb.GEOM_CYLINDER, radius=size[0], height=2 * size[1])
            vis = c.createVisualShape(pb.GEOM_CYLINDER, radius=size[0], length=2 * size[1], rgbaColor=rgba)
        elif shape in ("box", "cube", "plank", "ramp", "domino"):  # size = half extents
            col = c.createCollisionShape(pb.GEOM_BOX, halfExtents=size)
            vis = c.createVisualShape(pb.GEOM_BOX, halfExtents=size, rgbaColor=rgba)
        else:
            raise ValueError(f"unknown shape {shape!r}")
        return col, vis

    def add_object(self, name, shape, size, color_name, position, orientation=(0, 0, 0, 1), mass=1.0,
                   friction=0.5, restitution=0.2, static=False, color=None, linear_velocity=None,
                   angular_velocity=None) -> SimObject:
        """Add one rigid body (sphere, box/cube/plank/ramp/domino, cylinder). `static` bodies have mass 0."""
        color = color if color is not None else {**OBJECT_COLORS, **STATIC_COLORS}[color_name]
        body_mass = 0.0 if static else float(mass)
        col, vis = self._shape(shape, size, color)
        body = self.client.createMultiBody(body_mass, col, vis, basePosition=position, baseOrientation=orientation)
        # No air drag: pybullet's default damping (0.04) would bend free fall away from 1/2 g t^2.
        self.client.changeDynamics(body, -1, lateralFriction=friction, restitution=restitution,
                                   linearDamping=0.0, angularDamping=0.0, rollingFriction=0.0, spinningFriction=0.0)
        if linear_velocity is not None or angular_velocity is not None:
            self.client.resetBaseVelocity(body, linear_velocity or (0, 0, 0), angular_velocity or (0, 0, 0))
        return self.register(SimObject(len(self.objects) + 1, name, shape, color_name, tuple(color), body, -1,
                                       body_mass if not static else 0.0, tuple(size), static))

    def register(self, obj: SimObject) -> SimObject:
        self.objects.append(obj)
        self._segmentation_lut = None
        return obj

    # ---------------------------------------------------------------------------------- stepping / state

    def advance(self, seconds: float, before_substep=None) -> None:
        """Advance the simulation by `seconds` with equal sub-steps no longer than 1/physics_hz."""
        substeps = max(1, math.ceil(seconds * self.physics_hz - 1e-9))
        dt = seconds / substeps
        self.client.setTimeStep(dt)
        for k in range(substeps):
            if before_substep is not None:
                before_substep((k + 1) / substeps)
            self.client.stepSimulation()
        self.time += seconds

    def pose(self, obj: SimObject):
        if obj.link >= 0:
            state = self.client.getLinkState(obj.body, obj.link, computeForwardKinematics=True)
            return np.array(state[4]), np.array(state[5])
        pos, orn = self.client.getBasePositionAndOrientation(obj.body)
        return np.array(pos), np.array(orn)

    def state(self):
        """(positions (N,3), orientations (N,4) xyzw) of all objects, in id order."""
        poses = [self.pose(o) for o in self.objects]
        if not poses:
            return np.zeros((0, 3)), np.zeros((0, 4))
        return np.stack([p for p, _ in poses]), np.stack([q for _, q in poses])

    # ---------------------------------------------------------------------------------- rendering

    def _lut(self) -> np.ndarray:
        if self._segmentation_lut is None:
            bodies = [self.floor] + [b for o in self.objects for b in [o.body, *o.extra_bodies]]
            lut = np.zeros(max(bodies) + 2, dtype=np.uint8)  # index = body id + 1 (pybullet's -1 = nothing)
            for o in self.objects:
                for b in [o.body, *o.extra_bodies]:
                    lut[b + 1] = o.object_id
            self._segmentation_lut = lut
        return self._segmentation_lut

    def render(self, cam_to_world, intrinsics, height: int, width: int, lighting: Lighting,
               near: float = 0.02, far: float = 20.0):
        """Render RGB (H,W,3 uint8), depth (H,W float32 metres, 0 = nothing) and object-id masks (H,W uint8).

        The OpenGL matrices pybullet needs are built from the OpenCV pose/intrinsics, so what is recorded is
        exactly what is rendered.
        """
        cam_to_world = np.asarray(cam_to_world, dtype=np.float64)
        world_to_cam = np.linalg.inv(cam_to_world)
        view_gl = np.diag([1.0, -1.0, -1.0, 1.0]) @ world_to_cam  # OpenCV (y down, z fwd) -> OpenGL (y up, z back)
        fx, fy = intrinsics[0, 0], intrinsics[1, 1]
        # TinyRenderer puts the point projected at GL pixel coords (cx_gl, cy_gl) at the centre of pixel
        # (row cy_gl - 1, column cx_gl) (measured on-axis, exact at every size), so shift rows by one.
        cx, cy = intrinsics[0, 2], intrinsics[1, 2] + 1.0
        proj = np.zeros((4, 4))
        proj[0, 0] = 2 * fx / width
        proj[1, 1] = 2 * fy / height
        proj[0, 2] = 1 - 2 * cx / width
        proj[1, 2] = 2 * cy / height - 1
        proj[2, 2] = -(far + near) / (far - near)
        proj[2, 3] = -2 * far * near / (far - near)
        proj[3, 2] = -1.0
        _, _, rgba, depth_buffer, seg = self.client.getCameraImage(
            width, height,
            viewMatrix=view_gl.T.reshape(-1).tolist(),
            projectionMatrix=proj.T.reshape(-1).tolist(),
            renderer=self.pb.ER_TINY_RENDERER,
            lightDirection=list(lighting.direction),
            lightColor=[1.0, 1.0, 1.0],
            lightAmbientCoeff=lighting.ambient,
            lightDiffuseCoeff=lighting.diffuse,
            lightSpecularCoeff=lighting.specular,
            shadow=int(lighting.shadow),
        )
        rgba = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)
        depth_buffer = np.asarray(depth_buffer, dtype=np.float64).reshape(height, width)
        seg = np.asarray(seg, dtype=np.int64).reshape(height, width)
        depth = far * near / (far - (far - near) * depth_buffer)
        depth[seg < 0] = 0.0
        lut = self._lut()
        masks = lut[np.clip(seg, -1, len(lut) - 2) + 1]
        return np.ascontiguousarray(rgba[..., :3]), depth.astype(np.float32), masks
