"""The paper's eight physics-alignment scenes, randomised, simulated with pybullet and rendered from 4 fixed views.

`simulate(scene, seed=...)` builds a fresh world from a numpy Generator seeded with `seed` (shapes, sizes, masses,
colours, initial poses and velocities, friction/restitution, floor colour and lighting), steps physics at
`physics_hz` (sub-steps decoupled from fps) and renders each frame with pybullet's TinyRenderer on the CPU.
Same arguments -> identical bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .record import WorldRecord
from .world import (
    FLOOR_COLORS,
    OBJECT_COLORS,
    STATIC_COLORS,
    Lighting,
    SimObject,
    SimWorld,
    check_frames,
    check_size,
    euler_to_matrix,
    intrinsics_from_fov,
    look_at,
    matrix_to_quat,
    orbit_eye,
    quat_to_matrix,
)

SCENES = ("free_fall", "tilted_slope", "u_slope", "stable_stack", "unstable_stack", "dominoes", "seesaw", "gyroscope")

# The 4 fixed viewpoints: (azimuth offset from the scene's front, elevation, distance scale), degrees.
VIEWS = ((0.0, 15.0, 1.0), (40.0, 25.0, 1.0), (-40.0, 25.0, 1.0), (0.0, 55.0, 1.1))
NUM_VIEWS = len(VIEWS)

SHAPE_WORDS = {"sphere": "ball", "cube": "cube", "box": "box", "cylinder": "cylinder", "plank": "plank",
               "domino": "domino", "top": "spinning top"}
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


@dataclass
class SceneSetup:
    """What a scene builder returns: where the cameras look, parameters to record, and a caption writer."""

    target: tuple
    distance: float
    params: dict
    describe: Callable[[np.ndarray, np.ndarray], str]  # (positions (T,N,3), orientations (T,N,4)) -> caption
    front_azimuth: float = 0.0


def _r(x, nd=4):
    """Round for JSON params (the simulation itself always uses the full-precision values)."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_r(v, nd) for v in x]
    return round(float(x), nd)


def describe_object(obj: SimObject) -> str:
    return f"{obj.color_name} {SHAPE_WORDS.get(obj.shape, obj.shape)}"


def join_words(items) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _pick_colors(rng, n: int) -> list:
    names = list(OBJECT_COLORS)
    return [names[i] for i in rng.permutation(len(names))[:n]]


def _tilt_degrees(quat) -> float:
    """Angle between the body's local z axis and world z."""
    return math.degrees(math.acos(max(-1.0, min(1.0, quat_to_matrix(quat)[2, 2]))))


# ----------------------------------------------------------------------------------------------- scenes


def _free_fall(world: SimWorld, rng: np.random.Generator) -> SceneSetup:
    n = int(rng.integers(1, 4))
    colors = _pick_colors(rng, n)
    xs = np.linspace(-0.35, 0.35, n) if n > 1 else np.zeros(1)
    restitution = float(rng.uniform(0.2, 0.8))
    specs = []
    for i in range(n):
        shape = ["sphere", "cube", "cylinder"][int(rng.integers(0, 3))]
        s = float(rng.uniform(0.07, 0.11))
        size = (s,) if shape == "sphere" else (s, s, s) if shape == "cube" else (s, s)
        height = float(rng.uniform(0.4, 0.8))
        pos = (float(xs[i] + rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.1, 0.1)), height)
        orn = matrix_to_quat(euler_to_matrix(rng.uniform(-math.pi, math.pi, 3)))
        vel = (float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)), 0.0)
        ang = tuple(float(v) for v in rng.uniform(-3, 3, 3))
        mass = float(rng.uniform(0.2, 2.0))
        world.add_object(f"{colors[i]}_{shape}", shape, size, colors[i], pos, orn, mass=mass, friction=0.5,
                         restitution=restitution, linear_velocity=vel, angular_velocity=ang)
        specs.append({"initial_position": _r(pos), "initial_velocity": _r(vel), "initial_angular_velocity": _r(ang)})

    def describe(pos, orn):
        names = join_words(_article(describe_object(o)) for o in world.objects)
        heights = [s["initial_position"][2] for s in specs]
        # A bounce is the height rising again after having come down.
        z = pos[:, :, 2]
        # (a 1-frame clip cannot show one; .max() of its empty differences raised)
        bounced = len(z) > 1 and any((z[1:, i] - np.minimum.accumulate(z[:, i])[:-1]).max() > 0.02
                                     for i in range(z.shape[1]))
        what = "bounce" if bounced else "land"
        verb = "falls" if n == 1 else "fall"
        where = (f"about {heights[0]:.1f} m" if n == 1 else f"between {min(heights):.1f} and {max(heights):.1f} m")
        return (f"{names[0].upper()}{names[1:]} {verb} from {where} onto a {world.floor_color_name} floor "
                f"and {what if n > 1 else what + 's'}.")

    return SceneSetup(target=(0.0, 0.0, 0.35), distance=1.8, describe=describe,
                      params={"restitution": _r(restitution), "objects": specs, "gravity": 9.81})


def _ramp(world, name, angle, half_length, half_width, center_on_surface, downhill_sign, color_name):
    """A static slab whose top surface passes through `center_on_surface`, sloping down toward x*downhill_sign."""
    th = 0.02
    rot = euler_to_matrix((0.0, downhill_sign * angle, 0.0))
    normal = rot @ np.array([0.0, 0.0, 1.0])
    center = np.asarray(center_on_surface) - th * normal
    world.add_object(name, "ramp", (half_length, half_width, th), color_name, tuple(center), matrix_to_quat(rot),
                     static=True, friction=0.8, restitution=0.1)
    return rot, normal


def _tilted_slope(world, rng):
    angle = math.radians(float(rng.uniform(15, 35)))
    L, W = 0.55, 0.25
    slope_color = ["white", "brown", "dark grey"][int(rng.integers(0, 3))]
    surface_center = np.array([0.0, 0.0, L * math.sin(angle)])
    rot, normal = _ramp(world, "slope", angle, L, W, surface_center, 1, slope_color)
    downhill = rot @ np.array([1.0, 0.0, 0.0])
    shape = ["sphere", "cube", "cylinder"][int(rng.integers(0, 3))]
    color = _pick_colors(rng, 1)[0]
    s = float(rng.uniform(0.06, 0.09))
    friction = float(rng.uniform(0.05, 0.6)) if shape == "cube" else 0.8
    start = surface_center - 0.7 * L * downhill + (s + 0.002) * normal
    if shape == "sphere":
        size, orn_m = (s,), rot
    elif shape == "cube":
        size, orn_m = (s, s, s), rot
    else:  # lying on its side, axis across the slope, so it rolls
        size, orn_m = (s, 0.8 * s), rot @ euler_to_matrix((math.pi / 2, 0.0, 0.0))
    world.add_object(f"{color}_{shape}", shape, size, color, tuple(start), matrix_to_quat(orn_m), mass=0.5,
                     friction=friction, restitution=0.1)

    def describe(pos, orn):
        travel = float(np.dot(pos[-1, 1] - pos[0, 1], downhill))
        verb = {"sphere": "rolls", "cylinder": "rolls", "cube": "slides"}[shape]
        obj = describe_object(world.objects[1])
        slope = f"a {slope_color} slope tilted {math.degrees(angle):.0f} degrees"
        if travel > 0.05:
            return f"A {obj} {verb} down {slope} on a {world.floor_color_name} floor."
        return f"A {obj} rests on {slope} on a {world.floor_color_name} floor without sliding down."

    return SceneSetup(target=(0.0, 0.0, 0.22), distance=1.7, describe=describe,
                      params={"slope_degrees": _r(math.degrees(angle)), "friction": _r(friction),
                              "initial_position": _r(start)})


def _u_slope(world, rng):
    angle = math.radians(float(rng.uniform(20, 35)))
    L, W = 0.35, 0.25
    a = float(rng.uniform(0.1, 0.25))
    slope_color = ["white", "brown", "dark grey"][int(rng.integers(0, 3))]
    left_surface = np.array([-a - L * math.cos(angle), 0.0, L * math.sin(angle)])
    right_surface = np.array([a + L * math.cos(angle), 0.0, L * math.sin(angle)])
    rot_l, n_l = _ramp(world, "left_slope", angle, L, W, left_surface, 1, slope_color)
    rot_r, n_r = _ramp(world, "right_slope", angle, L, W, right_surface, -1, slope_color)
    side = 1 if rng.random() < 0.5 else -1  # +1: start on the left ramp
    rot, normal, surface = (rot_l, n_l, left_surface) if side == 1 else (rot_r, n_r, right_surface)
    uphill = -(rot @ np.array([1.0, 0.0, 0.0])) * side
    color = _pick_colors(rng, 1)[0]
    r = float(rng.uniform(0.06, 0.09))
    start = surface + float(rng.uniform(0.3, 0.7)) * L * uphill + (r + 0.002) * normal
    world.add_object(f"{color}_sphere", "sphere", (r,), color, tuple(start), mass=0.5, friction=0.9,
                     restitution=0.1)

    def describe(pos, orn):
        x = pos[:, 2, 0]
        crossed = bool(np.any(np.sign(x) != np.sign(x[0])))
        obj = describe_object(world.objects[2])
        start_side = "left" if side == 1 else "right"
        if crossed:
            return (f"A {obj} released on the {start_side} side of a {slope_color} U-shaped valley rolls down, "
                    f"across the bottom and up the opposite slope.")
        return f"A {obj} released on the {start_side} side of a {slope_color} U-shaped valley rolls down into it."

    return SceneSetup(target=(0.0, 0.0, 0.15), distance=2.0, describe=describe,
                      params={"slope_degrees": _r(math.degrees(angle)), "flat_half_width": _r(a),
                              "start_side": "left" if side == 1 else "right", "initial_position": _r(start)})


def _stack(world, rng, stable: bool):
    n = int(rng.integers(2, 5)) if stable else int(rng.integers(3, 5))
    colors = _pick_colors(rng, n)
    shift_dir = rng.uniform(-math.pi, math.pi)
    direction = np.array([math.cos(shift_dir), math.sin(shift_dir), 0.0])
    z, center, specs = 0.0, np.zeros(3), []
    for i in range(n):
        if stable:
            hx, hy = float(rng.uniform(0.07, 0.12)), float(rng.uniform(0.07, 0.12))
            hz = float(rng.uniform(0.05, 0.09))
            offset = rng.uniform(-0.1, 0.1, 2) * min(hx, hy) if i else np.zeros(2)
            center = center + np.array([offset[0], offset[1], 0.0])
            yaw = float(rng.uniform(-0.2, 0.2))
        else:
            hx = hy = float(rng.uniform(0.08, 0.1))
            hz = float(rng.uniform(0.06, 0.09))
            # Each block overhangs the one below by more than half its width: its centre of mass is unsupported.
            if i:
                center = center + float(rng.uniform(1.15, 1.5)) * hx * direction
            yaw = shift_dir
        mass = float(rng.uniform(0.3, 1.5))
        pos = (float(center[0]), float(center[1]), z + hz + 0.0005)
        shape = "cube" if abs(hx - hy) < 1e-9 and abs(hx - hz) < 1e-9 else "box"
        world.add_object(f"{colors[i]}_box", "box", (hx, hy, hz), colors[i], pos,
                         matrix_to_quat(euler_to_matrix((0, 0, yaw))), mass=mass, friction=0.8, restitution=0.0)
        specs.append({"half_extents": _r((hx, hy, hz)), "initial_position": _r(pos), "mass": _r(mass)})
        z += 2 * hz

    def describe(pos, orn):
        moved = float(np.linalg.norm(pos[-1, -1] - pos[0, -1]))
        names = " on ".join(f"{o.color_name}" for o in reversed(world.objects))
        what = f"a stack of {NUMBER_WORDS[n]} boxes ({names}, top to bottom) on a {world.floor_color_name} floor"
        if moved < 0.03:
            return f"{what[0].upper()}{what[1:]} stays standing."
        return f"{what[0].upper()}{what[1:]} is off balance and topples over."

    return SceneSetup(target=(0.0, 0.0, min(z / 2, 0.4)), distance=max(1.2, 1.8 * z + 0.7), describe=describe,
                      params={"blocks": specs, "stable": stable}, front_azimuth=math.degrees(shift_dir))


def _stable_stack(world, rng):
    return _stack(world, rng, stable=True)


def _unstable_stack(world, rng):
    return _stack(world, rng, stable=False)


def _dominoes(world, rng):
    n = int(rng.integers(4, 8))
    hx, hy, hz = 0.025, 0.08, float(rng.uniform(0.11, 0.14))
    spacing = float(rng.uniform(0.45, 0.65)) * 2 * hz
    palette = _pick_colors(rng, 2)
    xs = (np.arange(n) - (n - 1) / 2) * spacing
    omega = float(rng.uniform(2.5, 4.0))
    for i, x in enumerate(xs):
        color = palette[i % 2]
        kwargs = {"linear_velocity": (omega * hz, 0.0, 0.0), "angular_velocity": (0.0, omega, 0.0)} if i == 0 else {}
        world.add_object(f"domino_{i}", "domino", (hx, hy, hz), color, (float(x), 0.0, hz + 0.0005),
                         mass=0.2, friction=0.6, restitution=0.0, **kwargs)

    def describe(pos, orn):
        fallen = sum(_tilt_degrees(q) > 20 for q in orn[-1])
        colors = " and ".join(palette)
        if fallen == n:
            return (f"A row of {NUMBER_WORDS[n]} {colors} dominoes on a {world.floor_color_name} floor: the first is "
                    f"pushed and all of them fall in turn.")
        return (f"A row of {NUMBER_WORDS[n]} {colors} dominoes on a {world.floor_color_name} floor: the first is "
                f"pushed and {NUMBER_WORDS.get(fallen, str(fallen))} of them fall.")

    return SceneSetup(target=(0.0, 0.0, 0.12), distance=max(1.2, 1.2 * n * spacing + 0.5), describe=describe,
                      params={"num_dominoes": n, "spacing": _r(spacing), "half_extents": _r((hx, hy, hz)),
                              "initial_angular_velocity": _r(omega)})


def _seesaw(world, rng):
    pb, c = world.pb, world.client
    pivot_h, plank_half = 0.18, (0.5, 0.09, 0.015)
    fulcrum_half = (0.05, 0.1, (pivot_h - plank_half[2]) / 2)
    world.add_object("fulcrum", "box", fulcrum_half, "dark grey", (0, 0, fulcrum_half[2]), static=True)
    plank_color = ["white", "brown"][int(rng.integers(0, 2))]
    col = c.createCollisionShape(pb.GEOM_BOX, halfExtents=plank_half)
    vis = c.createVisualShape(pb.GEOM_BOX, halfExtents=plank_half, rgbaColor=(*STATIC_COLORS[plank_color], 1))
    # An invisible fixed base at the pivot with the plank on a revolute joint about y: a true hinge.
    body = c.createMultiBody(0, -1, -1, basePosition=(0, 0, pivot_h), linkMasses=[0.5],
                             linkCollisionShapeIndices=[col], linkVisualShapeIndices=[vis],
                             linkPositions=[(0, 0, 0)], linkOrientations=[(0, 0, 0, 1)],
                             linkInertialFramePositions=[(0, 0, 0)], linkInertialFrameOrientations=[(0, 0, 0, 1)],
                             linkParentIndices=[0], linkJointTypes=[pb.JOINT_REVOLUTE], linkJointAxis=[(0, 1, 0)])
    c.setJointMotorControl2(body, 0, pb.VELOCITY_CONTROL, force=0)
    c.changeDynamics(body, 0, lateralFriction=0.9, linearDamping=0, angularDamping=0, jointDamping=0)
    c.setCollisionFilterPair(body, world.objects[0].body, 0, -1, 0)
    plank = world.register(SimObject(len(world.objects) + 1, "plank", "plank", plank_color,
                                     STATIC_COLORS[plank_color], body, 0, 0.5, plank_half))
    heavy_mass = float(rng.uniform(1.5, 3.0))
    light_mass = heavy_mass * float(rng.uniform(0.15, 0.4))
    heavy_side = 1 if rng.random() < 0.5 else -1  # +1: heavy load on +x (the right, seen from the front)
    colors = _pick_colors(rng, 2)
    arm = 0.38
    loads = {}
    for label, mass, side, color in (("heavy", heavy_mass, heavy_side, colors[0]),
                                     ("light", light_mass, -heavy_side, colors[1])):
        half = 0.065 * (mass / 2.0) ** (1 / 3)  # same density: the heavier block is visibly bigger
        pos = (side * arm, 0.0, pivot_h + plank_half[2] + half + 0.0005)
        loads[label] = world.add_object(f"{label}_{color}_cube", "cube", (half, half, half), color, pos, mass=mass,
                                        friction=0.9, restitution=0.0)

    def describe(pos, orn):
        rot = quat_to_matrix(orn[-1, plank.object_id - 1])
        tip = rot @ np.array([1.0, 0.0, 0.0])  # plank long axis; tip[2] < 0 means the +x end went down
        down_side = 1 if tip[2] < 0 else -1
        side_word = {1: "right", -1: "left"}
        h, l = loads["heavy"], loads["light"]
        heavy_txt = f"a large {describe_object(h)} ({heavy_mass:.1f} kg) on the {side_word[heavy_side]}"
        light_txt = f"a small {describe_object(l)} ({light_mass:.1f} kg) on the {side_word[-heavy_side]}"
        if abs(tip[2]) < 0.02:
            return f"A seesaw with {heavy_txt} and {light_txt} stays level."
        return f"A seesaw with {heavy_txt} and {light_txt} tips to the {side_word[down_side]}."

    return SceneSetup(target=(0.0, 0.0, 0.2), distance=1.6, describe=describe,
                      params={"heavy_mass": _r(heavy_mass), "light_mass": _r(light_mass),
                              "heavier_side": "right" if heavy_side == 1 else "left", "arm": arm,
                              "pivot_height": pivot_h})


def _gyroscope(world, rng):
    pb, c = world.pb, world.client
    radius = float(rng.uniform(0.1, 0.14))
    disc_half, axle_r, axle_half, tip_r = 0.02, 0.012, 0.14, 0.015
    axle_z, tip_z = -0.03, -0.17  # body frame origin = disc centre; the tip is below it
    color, marker = _pick_colors(rng, 2)
    rgba = (*OBJECT_COLORS[color], 1)
    col = c.createCollisionShapeArray(
        shapeTypes=[pb.GEOM_CYLINDER, pb.GEOM_CYLINDER, pb.GEOM_SPHERE],
        radii=[radius, axle_r, tip_r], lengths=[2 * disc_half, 2 * axle_half, 0],
        collisionFramePositions=[(0, 0, 0), (0, 0, axle_z), (0, 0, tip_z)])
    vis = c.createVisualShapeArray(
        shapeTypes=[pb.GEOM_CYLINDER, pb.GEOM_CYLINDER, pb.GEOM_SPHERE, pb.GEOM_BOX],
        radii=[radius, axle_r, tip_r, 0], lengths=[2 * disc_half, 2 * axle_half, 0, 0],
        halfExtents=[(0, 0, 0), (0, 0, 0), (0, 0, 0), (0.03, 0.02, disc_half + 0.002)],
        rgbaColors=[rgba, (0.2, 0.2, 0.2, 1), (0.2, 0.2, 0.2, 1), (*OBJECT_COLORS[marker], 1)],
        visualFramePositions=[(0, 0, 0), (0, 0, axle_z), (0, 0, tip_z), (radius - 0.03, 0, 0)])
    mass = 0.5
    tilt = math.radians(float(rng.uniform(8, 20)))
    tilt_axis_angle = float(rng.uniform(-math.pi, math.pi))
    rot = euler_to_matrix((0, 0, tilt_axis_angle)) @ euler_to_matrix((tilt, 0, 0))
    spin = float(rng.uniform(60, 90)) * (1 if rng.random() < 0.5 else -1)
    pos = np.array([0.0, 0.0, tip_r + 0.0005]) - rot @ np.array([0.0, 0.0, tip_z])
    body = c.createMultiBody(mass, col, vis, basePosition=tuple(pos), baseOrientation=matrix_to_quat(rot),
                             useMaximalCoordinates=True)
    # Maximal coordinates (a btRigidBody) keep the gyroscopic term stable; its inertia comes from the compound
    # shape. (Overriding localInertiaDiagonal on such a body makes pybullet 3.2.7 return NaNs.)
    lever = -tip_z
    c.changeDynamics(body, -1, lateralFriction=0.6, restitution=0.0)
    c.resetBaseVelocity(body, (0, 0, 0), tuple(rot @ np.array([0.0, 0.0, spin])))
    world.register(SimObject(1, f"{color}_top", "top", color, OBJECT_COLORS[color], body, -1, mass,
                             (radius, disc_half, lever)))

    def describe(pos, orn):
        tilts = [_tilt_degrees(q) for q in orn[:, 0]]
        if max(tilts) > 60:
            return (f"A {color} spinning top with a {marker} mark, started tilted {math.degrees(tilt):.0f} degrees "
                    f"on a {world.floor_color_name} floor, slows its wobble and falls over.")
        motion = "wobbles and precesses" if max(tilts) - min(tilts) > 15 else "precesses"
        return (f"A {color} spinning top with a {marker} mark spins fast on a {world.floor_color_name} floor, "
                f"tilted about {math.degrees(tilt):.0f} degrees, and {motion} without falling.")

    return SceneSetup(target=(0.0, 0.0, 0.12), distance=1.0, describe=describe,
                      params={"spin_rad_per_s": _r(spin), "tilt_degrees": _r(math.degrees(tilt)),
                              "disc_radius": _r(radius)})


SCENE_BUILDERS = {
    "free_fall": _free_fall,
    "tilted_slope": _tilted_slope,
    "u_slope": _u_slope,
    "stable_stack": _stable_stack,
    "unstable_stack": _unstable_stack,
    "dominoes": _dominoes,
    "seesaw": _seesaw,
    "gyroscope": _gyroscope,
}


def camera_pose_for_view(setup: SceneSetup, view: int) -> np.ndarray:
    az, el, scale = VIEWS[view]
    eye = orbit_eye(setup.target, setup.distance * scale, setup.front_azimuth + az, el)
    return look_at(eye, setup.target)


def check_view(view: int, num_views: int = NUM_VIEWS) -> None:
    if not isinstance(view, (int, np.integer)) or isinstance(view, bool) or not 0 <= view < num_views:
        raise ValueError(f"view must be an integer in 0..{num_views - 1}, got {view!r}")


def simulate(scene: str, seed: int = 0, num_frames: int = 24, height: int = 64, width: int = 64, fps: float = 24.0,
             view: int = 0, physics_hz: float = 960.0, fov: float = 45.0) -> WorldRecord:
    """Simulate one of the eight physics scenes (`SCENES`) and render it from fixed viewpoint `view` (0..3).

    Args:
        scene: one of `SCENES`.
        seed: seeds a numpy Generator that draws every random choice; same arguments -> identical bytes.
        num_frames, fps: clip length; frame k shows the world at t = k / fps (frame 0 = initial state).
        height, width: multiples of 8 in [16, 1024].
        view: 0 = front, 1 / 2 = front-left / front-right (40 degrees), 3 = high front view.
        physics_hz: physics rate; each frame interval runs ceil(physics_hz / fps) equal sub-steps.
        fov: vertical field of view in degrees.

    Returns a `WorldRecord` (see its docstring for shapes; cameras in OpenCV convention).
    """
    if scene not in SCENE_BUILDERS:
        raise ValueError(f"unknown scene {scene!r}; choose one of {', '.join(SCENES)}")
    check_size(height, width)
    check_frames(num_frames, fps)
    check_view(view)
    if not 30 <= physics_hz <= 10000:
        raise ValueError(f"physics_hz must be between 30 and 10000, got {physics_hz}")
    if not 10 <= fov <= 120:
        raise ValueError(f"fov must be between 10 and 120 degrees, got {fov}")
    rng = np.random.default_rng(seed)
    floor = list(FLOOR_COLORS)[int(rng.integers(0, len(FLOOR_COLORS)))]
    lighting = Lighting.random(rng)
    with SimWorld(physics_hz=physics_hz, floor_color=floor) as world:
        setup = SCENE_BUILDERS[scene](world, rng)
        cam_to_world = camera_pose_for_view(setup, view)
        intrinsics = intrinsics_from_fov(height, width, fov)
        video, masks, depth, positions, orientations = run_and_render(
            world, num_frames, fps, lambda t: cam_to_world, intrinsics, height, width, lighting)
        caption = setup.describe(positions, orientations)
        objects = [o.metadata() for o in world.objects]
    params = {"floor_color": floor, "lighting": lighting.as_dict(), "physics_hz": physics_hz, "fov_degrees": fov,
              **setup.params}
    return WorldRecord(task="physics", scene=scene, seed=int(seed), view=int(view), fps=float(fps), video=video,
                       masks=masks, depth=depth, object_positions=positions.astype(np.float32),
                       object_orientations=orientations.astype(np.float32), intrinsics=intrinsics,
                       cam_to_world=np.repeat(cam_to_world[None], num_frames, axis=0), objects=objects,
                       caption=caption, params=params)


def run_and_render(world: SimWorld, num_frames, fps, camera_at, intrinsics, height, width, lighting):
    """Render frame k at t = k / fps, then advance physics one frame interval. `camera_at(k)` gives cam_to_world."""
    video = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.empty((num_frames, height, width), np.uint8)
    depth = np.empty((num_frames, height, width), np.float32)
    positions, orientations = [], []
    for k in range(num_frames):
        if k:
            world.advance(1.0 / fps)
        video[k], depth[k], masks[k] = world.render(camera_at(k), intrinsics, height, width, lighting)
        pos, orn = world.state()
        positions.append(pos)
        orientations.append(orn)
    return video, masks, depth, np.stack(positions), np.stack(orientations)
