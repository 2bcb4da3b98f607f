"""The camera task (a DL3DV / RealEstate10K analogue): a static scene filmed along orbit, dolly and pan paths.

Every frame comes with its exact OpenCV pose (`cam_to_world`, x right / y down / z forward) and intrinsics K, which
is what camera-controlled world models condition on (Plücker rays) and what 3D-consistency metrics check against.
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
    orbit_eye,
)

TRAJECTORIES = ("orbit", "dolly", "pan")


def _build_static_scene(world: SimWorld, rng: np.random.Generator):
    """4-6 objects of different shapes and heights scattered on the floor (heights give parallax)."""
    n = int(rng.integers(4, 7))
    colors = [list(OBJECT_COLORS)[i] for i in rng.permutation(len(OBJECT_COLORS))[:n]]
    placed = []
    for i in range(n):
        shape = ["cube", "sphere", "cylinder", "box"][int(rng.integers(0, 4))]
        for _ in range(200):
            xy = rng.uniform(-0.55, 0.55, 2)
            if all(np.linalg.norm(xy - p) > 0.28 for p in placed):
                break
        placed.append(xy)
        s = float(rng.uniform(0.07, 0.12))
        if shape == "sphere":
            size, z = (s,), s
        elif shape == "cube":
            size, z = (s, s, s), s
        elif shape == "cylinder":
            size = (s, float(rng.uniform(0.1, 0.25)))
            z = size[1]
        else:  # a tall box, a pillar
            size = (s * 0.8, s * 0.8, float(rng.uniform(0.15, 0.3)))
            z = size[2]
        orn = matrix_to_quat(euler_to_matrix((0, 0, float(rng.uniform(-math.pi, math.pi)))))
        world.add_object(f"{colors[i]}_{shape}", shape, size, colors[i], (float(xy[0]), float(xy[1]), z), orn,
                         static=True, color=OBJECT_COLORS[colors[i]])
    return n


def camera_path(trajectory: str, rng: np.random.Generator, num_frames: int):
    """(T, 4, 4) OpenCV cam_to_world poses along an orbit, dolly or pan, and a dict of the path's parameters."""
    target = np.array([0.0, 0.0, 0.1])
    t = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    if trajectory == "orbit":
        radius, elevation = float(rng.uniform(1.3, 1.9)), float(rng.uniform(15, 40))
        start = float(rng.uniform(-180, 180))
        sweep = float(rng.uniform(30, 120)) * (1 if rng.random() < 0.5 else -1)
        poses = [look_at(orbit_eye(target, radius, start + sweep * s, elevation), target) for s in t]
        params = {"radius": radius, "elevation_degrees": elevation, "start_azimuth_degrees": start,
                  "sweep_degrees": sweep}
    elif trajectory == "dolly":
        azimuth, elevation = float(rng.uniform(-180, 180)), float(rng.uniform(15, 35))
        far, near = float(rng.uniform(1.8, 2.3)), float(rng.uniform(0.9, 1.3))
        if rng.random() < 0.5:
            far, near = near, far  # dolly out
        poses = [look_at(orbit_eye(target, far + (near - far) * s, azimuth, elevation), target) for s in t]
        params = {"azimuth_degrees": azimuth, "elevation_degrees": elevation, "start_distance": far,
                  "end_distance": near}
    elif trajectory == "pan":
        azimuth, elevation = float(rng.uniform(-180, 180)), float(rng.uniform(20, 35))
        eye = orbit_eye(target, float(rng.uniform(1.5, 2.0)), azimuth, elevation)
        base = target - eye
        sweep = math.radians(float(rng.uniform(25, 50))) * (1 if rng.random() < 0.5 else -1)
        poses = []
        for s in t:  # rotate the viewing direction about the world z axis through the (fixed) camera centre
            angle = sweep * (s - 0.5)
            rot = euler_to_matrix((0, 0, angle))
            poses.append(look_at(eye, eye + rot @ base))
        params = {"eye": eye.tolist(), "sweep_degrees": math.degrees(sweep)}
    else:
        raise ValueError(f"unknown camera trajectory {trajectory!r}; choose one of {', '.join(TRAJECTORIES)}")
    return np.stack(poses), {k: (round(v, 4) if isinstance(v, float) else v) for k, v in params.items()}


def simulate_camera(seed: int = 0, num_frames: int = 24, height: int = 64, width: int = 64, fps: float = 24.0,
                    trajectory: str | None = None, fov: float | None = None) -> WorldRecord:
    """Film a random static scene along a camera trajectory ("orbit", "dolly", "pan"; drawn from the seed if None).

    `cam_to_world` (T, 4, 4) is exact per frame; `intrinsics` is fixed per clip (vertical fov drawn in [40, 60]
    degrees unless given).
    """
    check_size(height, width)
    check_frames(num_frames, fps)
    if trajectory is not None and trajectory not in TRAJECTORIES:
        raise ValueError(f"unknown camera trajectory {trajectory!r}; choose one of {', '.join(TRAJECTORIES)}")
    rng = np.random.default_rng(seed)
    floor = list(FLOOR_COLORS)[int(rng.integers(0, len(FLOOR_COLORS)))]
    lighting = Lighting.random(rng)
    trajectory = trajectory or TRAJECTORIES[int(rng.integers(0, len(TRAJECTORIES)))]
    fov = float(fov) if fov is not None else float(rng.uniform(40, 60))
    if not 10 <= fov <= 120:
        raise ValueError(f"fov must be between 10 and 120 degrees, got {fov}")
    with SimWorld(floor_color=floor) as world:
        n = _build_static_scene(world, rng)
        poses, path_params = camera_path(trajectory, rng, num_frames)
        intrinsics = intrinsics_from_fov(height, width, fov)
        video = np.empty((num_frames, height, width, 3), np.uint8)
        masks = np.empty((num_frames, height, width), np.uint8)
        depth = np.empty((num_frames, height, width), np.float32)
        for k in range(num_frames):  # nothing moves: no physics steps needed
            video[k], depth[k], masks[k] = world.render(poses[k], intrinsics, height, width, lighting)
        pos, orn = world.state()
        objects = [o.metadata() for o in world.objects]
        names = [describe_object(o) for o in world.objects]
    motion = {"orbit": "orbits around", "dolly": "dollies " + ("in toward" if path_params.get("end_distance", 0) <
                                                                  path_params.get("start_distance", 0) else "out from"),
              "pan": "pans across"}[trajectory]
    caption = (f"The camera {motion} a still scene of {join_words(_article(x) for x in names)} on a {floor} floor.")
    # what is seen, not how the camera moves: the caption of camera-control training, where the poses say that
    scene_caption = f"A still scene of {join_words(_article(x) for x in names)} on a {floor} floor."
    params = {"floor_color": floor, "lighting": lighting.as_dict(), "fov_degrees": round(fov, 4),
              "trajectory": trajectory, **path_params, "num_objects": n}
    return WorldRecord(task="camera", scene=trajectory, seed=int(seed), view=0, fps=float(fps), video=video,
                       masks=masks, depth=depth,
                       object_positions=np.repeat(pos[None], num_frames, 0).astype(np.float32),
                       object_orientations=np.repeat(orn[None], num_frames, 0).astype(np.float32),
                       intrinsics=intrinsics, cam_to_world=poses, objects=objects, caption=caption, params=params,
                       extras={"trajectory": trajectory, "scene_caption": scene_caption})
