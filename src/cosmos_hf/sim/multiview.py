"""The multi-view task (a driving-rig analogue): N synchronised cameras on a moving rig among moving objects.

The rig frame is x forward, y left, z up (vehicle convention); `camera_to_rig` (V, 4, 4) is fixed, `rig_to_world`
(T, 4, 4) follows the rig's trajectory, and each camera's OpenCV pose is `cam_to_world = rig_to_world @ camera_to_rig`.
The default 6 cameras mirror the paper's rig: front, front-left, front-right, rear, rear-left, rear-right.
"""

from __future__ import annotations

import math

import numpy as np

from .physics_scenes import join_words, _article, describe_object
from .record import WorldRecord
from .world import (
    FLOOR_COLORS,
    OBJECT_COLORS,
    Lighting,
    SimWorld,
    check_frames,
    check_size,
    euler_to_matrix,
    intrinsics_from_fov,
    look_at,
    matrix_to_quat,
)

SIX_CAMERAS = (("front", 0.0), ("front_left", 60.0), ("front_right", -60.0), ("rear", 180.0),
               ("rear_left", 120.0), ("rear_right", -120.0))
RIG_HEIGHT = 0.35
CAMERA_PITCH_DEGREES = 12.0  # cameras look slightly down at the ground


def rig_cameras(num_cameras: int):
    """Names and camera_to_rig (V, 4, 4) for a ring of cameras (the paper's 6-camera layout when V = 6)."""
    if num_cameras == 6:
        layout = SIX_CAMERAS
    else:
        layout = tuple((f"cam_{i}", 360.0 * i / num_cameras) for i in range(num_cameras))
    names, poses = [], []
    for name, yaw in layout:
        yaw_r, pitch = math.radians(yaw), math.radians(CAMERA_PITCH_DEGREES)
        forward = np.array([math.cos(yaw_r) * math.cos(pitch), math.sin(yaw_r) * math.cos(pitch), -math.sin(pitch)])
        pose = look_at(np.zeros(3), forward)  # OpenCV camera in the rig frame (rig z is up)
        names.append(name)
        poses.append(pose)
    return names, np.stack(poses)


def simulate_multiview(seed: int = 0, num_frames: int = 24, height: int = 64, width: int = 64, fps: float = 24.0,
                       num_cameras: int = 6, fov: float = 70.0, physics_hz: float = 480.0) -> WorldRecord:
    """Simulate a rig of `num_cameras` synchronised cameras driving among rolling and sliding objects.

    Returns a `WorldRecord` whose `video`, `masks`, `depth` and `cam_to_world` carry a leading view axis
    (V, T, ...); extras hold `camera_names`, `camera_to_rig` (V, 4, 4) and `rig_to_world` (T, 4, 4).
    """
    check_size(height, width)
    check_frames(num_frames, fps)
    if not isinstance(num_cameras, (int, np.integer)) or not 1 <= num_cameras <= 12:
        raise ValueError(f"num_cameras must be an integer between 1 and 12, got {num_cameras!r}")
    if not 10 <= fov <= 120:
        raise ValueError(f"fov must be between 10 and 120 degrees, got {fov}")
    rng = np.random.default_rng(seed)
    floor = list(FLOOR_COLORS)[int(rng.integers(0, len(FLOOR_COLORS)))]
    lighting = Lighting.random(rng)
    lighting.shadow = False  # grazing views of the floor turn TinyRenderer's shadow map into stripes
    names, camera_to_rig = rig_cameras(num_cameras)
    heading = float(rng.uniform(-math.pi, math.pi))
    speed = float(rng.uniform(0.2, 0.5))
    turn_rate = float(rng.uniform(-0.4, 0.4))  # rad/s: the rig drives along an arc
    start = np.array([*rng.uniform(-0.3, 0.3, 2), RIG_HEIGHT])

    with SimWorld(physics_hz=physics_hz, floor_color=floor) as world:
        n = int(rng.integers(5, 9))
        colors = [list(OBJECT_COLORS)[i % len(OBJECT_COLORS)] for i in rng.permutation(max(n, len(OBJECT_COLORS)))[:n]]
        for i in range(n):
            shape = ["sphere", "cube", "cylinder"][int(rng.integers(0, 3))]
            s = float(rng.uniform(0.08, 0.14))
            radius, angle = float(rng.uniform(0.7, 2.0)), float(rng.uniform(-math.pi, math.pi))
            xy = start[:2] + radius * np.array([math.cos(angle), math.sin(angle)])
            size = (s,) if shape == "sphere" else (s, s, s) if shape == "cube" else (s, s)
            velocity = (*rng.uniform(-0.6, 0.6, 2), 0.0)
            world.add_object(f"{colors[i]}_{shape}", shape, size, colors[i], (float(xy[0]), float(xy[1]), s + 0.0005),
                             matrix_to_quat(euler_to_matrix((0, 0, float(rng.uniform(-math.pi, math.pi))))),
                             mass=float(rng.uniform(0.3, 1.0)), friction=0.3 if shape != "sphere" else 0.8,
                             restitution=0.3, linear_velocity=tuple(float(v) for v in velocity))
        intrinsics = intrinsics_from_fov(height, width, fov)
        rig_to_world = np.zeros((num_frames, 4, 4))
        for k in range(num_frames):
            t = k / fps
            yaw = heading + turn_rate * t
            if abs(turn_rate) > 1e-6:
                offset = speed / turn_rate * np.array([math.sin(yaw) - math.sin(heading), -math.cos(yaw) + math.cos(heading)])
            else:
                offset = speed * t * np.array([math.cos(heading), math.sin(heading)])
            rig_to_world[k] = np.eye(4)
            rig_to_world[k, :3, :3] = euler_to_matrix((0, 0, yaw))
            rig_to_world[k, :3, 3] = [start[0] + offset[0], start[1] + offset[1], RIG_HEIGHT]
        cam_to_world = np.einsum("tij,vjk->vtik", rig_to_world, camera_to_rig)
        V = num_cameras
        video = np.empty((V, num_frames, height, width, 3), np.uint8)
        masks = np.empty((V, num_frames, height, width), np.uint8)
        depth = np.empty((V, num_frames, height, width), np.float32)
        positions, orientations = [], []
        for k in range(num_frames):
            if k:
                world.advance(1.0 / fps)
            for v in range(V):  # all cameras see the same instant: synchronised
                video[v, k], depth[v, k], masks[v, k] = world.render(cam_to_world[v, k], intrinsics, height, width,
                                                                     lighting)
            pos, orn = world.state()
            positions.append(pos)
            orientations.append(orn)
        objects = [o.metadata() for o in world.objects]
        obj_names = [describe_object(o) for o in world.objects]
    turn = "straight ahead" if abs(turn_rate) < 0.1 else ("in a left curve" if turn_rate > 0 else "in a right curve")
    caption = (f"A rig of {V} cameras moves {turn} across a {floor} floor while "
               f"{join_words(_article(x) for x in obj_names)} roll and slide around it.")
    # what is seen, not how the rig moves: the caption of trajectory-conditioned training, where the path says that
    seen = join_words(_article(x) for x in obj_names)
    scene_caption = f"{seen[:1].upper()}{seen[1:]} roll and slide across a {floor} floor."
    params = {"floor_color": floor, "lighting": lighting.as_dict(), "fov_degrees": fov, "physics_hz": physics_hz,
              "rig_speed": round(speed, 4), "rig_turn_rate": round(turn_rate, 4), "rig_height": RIG_HEIGHT}
    return WorldRecord(task="multiview", scene="multiview", seed=int(seed), view=-1, fps=float(fps), video=video,
                       masks=masks, depth=depth, object_positions=np.stack(positions).astype(np.float32),
                       object_orientations=np.stack(orientations).astype(np.float32), intrinsics=intrinsics,
                       cam_to_world=cam_to_world, objects=objects, caption=caption, params=params,
                       extras={"camera_names": names, "camera_to_rig": camera_to_rig, "rig_to_world": rig_to_world,
                               "scene_caption": scene_caption})
