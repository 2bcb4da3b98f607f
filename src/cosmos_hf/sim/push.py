"""The pushing task (a Bridge analogue): a kinematic gripper driven by 7-D actions pushes objects on a table.

State and action conventions (those of the Bridge data used by Cosmos action-conditioned post-training):
- `ee_states[t]` = (x, y, z, roll, pitch, yaw, gripper): the point between the fingertips in world metres, the
  gripper orientation as roll/pitch/yaw (R = Rz(yaw) Ry(pitch) Rx(roll)) relative to the home orientation
  (fingers pointing straight down), and the gripper opening in [0, 1] (1 = open, absolute).
- `actions[t]` (T-1 of them) takes state t to state t+1: xyz = R_t^T (p_{t+1} - p_t) (the translation expressed
  in the previous end-effector frame), rpy = euler(R_t^T R_{t+1}), gripper = gripper_{t+1} (absolute).
  `apply_action` is the exact inverse, so replaying `actions` reproduces `ee_states`.
The gripper is "kinematic": its parts are rigid bodies pinned by stiff fixed constraints to the commanded pose,
which is interpolated over the physics sub-steps, so it pushes objects with real contact forces.
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
    SimObject,
    SimWorld,
    check_frames,
    check_size,
    euler_to_matrix,
    intrinsics_from_fov,
    look_at,
    matrix_to_euler,
    matrix_to_quat,
    orbit_eye,
)

POLICIES = ("random", "scripted", "goal")
WORKSPACE_LOW = np.array([-0.35, -0.35, 0.01])
WORKSPACE_HIGH = np.array([0.35, 0.35, 0.30])
HOME_ROTATION = euler_to_matrix((math.pi, 0.0, 0.0))  # end-effector z axis pointing down at the table
MAX_SPEED = 0.30  # m/s
MAX_OPENING = 0.08  # m between the fingers when gripper = 1
PUSH_VIEWS = ((0.0, 50.0), (50.0, 40.0), (-50.0, 40.0), (0.0, 80.0))
PUSH_TARGET, PUSH_DISTANCE = (0.0, 0.0, 0.04), 0.95


def ee_rotation(rpy) -> np.ndarray:
    """World rotation of the end-effector frame for a state's roll/pitch/yaw."""
    return euler_to_matrix(rpy) @ HOME_ROTATION


def apply_action(state, action) -> np.ndarray:
    """Next end-effector state from a state (7,) and a Bridge-format action (7,)."""
    state, action = np.asarray(state, np.float64), np.asarray(action, np.float64)
    rot = euler_to_matrix(state[3:6])
    next_rot = rot @ euler_to_matrix(action[3:6])
    return np.concatenate([state[:3] + rot @ action[:3], matrix_to_euler(next_rot), action[6:7]])


def actions_from_states(states) -> np.ndarray:
    """Bridge-format relative actions (T-1, 7) from end-effector states (T, 7)."""
    states = np.asarray(states, np.float64)
    actions = np.zeros((len(states) - 1, 7))
    for t in range(len(states) - 1):
        rot, next_rot = euler_to_matrix(states[t, 3:6]), euler_to_matrix(states[t + 1, 3:6])
        actions[t, :3] = rot.T @ (states[t + 1, :3] - states[t, :3])
        actions[t, 3:6] = matrix_to_euler(rot.T @ next_rot)
        actions[t, 6] = states[t + 1, 6]
    return actions


class Gripper:
    """Palm + two fingers, each a rigid body held by a fixed constraint at the commanded pose."""

    PALM_HALF = (0.02, 0.065, 0.012)
    FINGER_HALF = (0.012, 0.01, 0.035)

    def __init__(self, world: SimWorld, state):
        pb, c = world.pb, world.client
        self.world = world
        color = (0.25, 0.25, 0.28)
        self.bodies, self.constraints = [], []
        for half in (self.PALM_HALF, self.FINGER_HALF, self.FINGER_HALF):
            col = c.createCollisionShape(pb.GEOM_BOX, halfExtents=half)
            vis = c.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=(*color, 1))
            body = c.createMultiBody(0.5, col, vis, basePosition=(0, 0, 1))
            c.changeDynamics(body, -1, lateralFriction=0.8, linearDamping=0, angularDamping=0)
            self.bodies.append(body)
        for i, a in enumerate(self.bodies):
            for b in self.bodies[i + 1:]:
                c.setCollisionFilterPair(a, b, -1, -1, 0)
        poses = self.part_poses(state)
        for body, (pos, orn) in zip(self.bodies, poses):
            c.resetBasePositionAndOrientation(body, pos, orn)
            cid = c.createConstraint(body, -1, -1, -1, pb.JOINT_FIXED, (0, 0, 0), (0, 0, 0), pos, childFrameOrientation=orn)
            c.changeConstraint(cid, pos, jointChildFrameOrientation=orn, maxForce=2000)
            self.constraints.append(cid)
        self.object = world.register(SimObject(len(world.objects) + 1, "gripper", "gripper", "dark grey", color,
                                               self.bodies[0], -1, 1.5, self.PALM_HALF, False, self.bodies[1:]))

    def part_poses(self, state):
        rot = ee_rotation(state[3:6])
        opening = float(np.clip(state[6], 0, 1)) * MAX_OPENING
        fh, ph = self.FINGER_HALF, self.PALM_HALF
        # Offsets in the end-effector frame, whose z points from the palm toward the fingertips.
        offsets = [(0, 0, -(2 * fh[2] + ph[2])),
                   (0, opening / 2 + fh[1], -fh[2]),
                   (0, -(opening / 2 + fh[1]), -fh[2])]
        orn = matrix_to_quat(rot)
        return [(tuple(np.asarray(state[:3]) + rot @ np.array(o)), orn) for o in offsets]

    def command(self, state):
        for cid, (pos, orn) in zip(self.constraints, self.part_poses(state)):
            self.world.client.changeConstraint(cid, pos, jointChildFrameOrientation=orn, maxForce=2000)


# ----------------------------------------------------------------------------------------------- policies


def _step_toward(state, target_xyz, target_yaw, gripper, fps):
    """Next state moving at most MAX_SPEED / fps toward a target position (and turning toward a yaw)."""
    step = MAX_SPEED / fps
    delta = np.asarray(target_xyz) - state[:3]
    dist = np.linalg.norm(delta)
    new = state.copy()
    new[:3] = state[:3] + (delta if dist <= step else delta * step / dist)
    dyaw = (target_yaw - state[5] + math.pi) % (2 * math.pi) - math.pi
    new[5] = state[5] + float(np.clip(dyaw, -1.5 / fps, 1.5 / fps))
    new[6] = gripper
    return new


class RandomPolicy:
    """Smooth random motion (an Ornstein-Uhlenbeck velocity), small wrist turns, occasional gripper toggles."""

    def __init__(self, rng, fps):
        self.rng, self.fps = rng, fps
        self.velocity = np.zeros(3)

    def __call__(self, k, state, world, objects):
        self.velocity = 0.85 * self.velocity + self.rng.normal(0, 0.08, 3) * np.array([1, 1, 0.5])
        self.velocity = np.clip(self.velocity, -MAX_SPEED, MAX_SPEED)
        new = state.copy()
        new[:3] = state[:3] + self.velocity / self.fps
        new[3:5] = np.clip(state[3:5] + self.rng.normal(0, 0.02, 2), -0.2, 0.2)
        new[5] = state[5] + self.rng.normal(0, 0.05)
        if self.rng.random() < 0.05:
            new[6] = 1.0 - state[6]
        return new


class ScriptedPushPolicy:
    """Open-loop push: above a pre-push point behind an object, down, push a set distance, up."""

    def __init__(self, rng, fps, objects, initial_positions):
        self.fps = fps
        self.target = int(rng.integers(0, len(objects)))
        angle = float(rng.uniform(-math.pi, math.pi))
        direction = np.array([math.cos(angle), math.sin(angle), 0.0])
        obj_pos = initial_positions[self.target]
        reach = objects[self.target].size[0] + 0.035
        push = float(rng.uniform(0.12, 0.22))
        start = obj_pos - reach * direction
        end = start + push * direction
        z_low, z_high = 0.015, 0.15
        self.direction, self.distance = direction, push
        self.yaw = angle + math.pi / 2  # fingers across the push direction: the palm's broad side leads
        self.waypoints = [(np.array([start[0], start[1], z_high]), 1.0), (np.array([start[0], start[1], z_low]), 0.0),
                          (np.array([end[0], end[1], z_low]), 0.0), (np.array([end[0], end[1], z_high]), 1.0)]
        self.index = 0

    def __call__(self, k, state, world, objects):
        while self.index < len(self.waypoints) - 1 and np.linalg.norm(state[:3] - self.waypoints[self.index][0]) < 1e-4:
            self.index += 1
        target, gripper = self.waypoints[self.index]
        return _step_toward(state, target, self.yaw, gripper, self.fps)


class GoalPushPolicy:
    """Closed-loop push of one object to a goal position: get behind it (lifting to go around), then push."""

    def __init__(self, rng, fps, objects, initial_positions):
        self.fps = fps
        self.target = int(rng.integers(0, len(objects)))
        start = initial_positions[self.target]
        for _ in range(100):
            angle = float(rng.uniform(-math.pi, math.pi))
            dist = float(rng.uniform(0.12, 0.25))
            goal = start + dist * np.array([math.cos(angle), math.sin(angle), 0.0])
            if np.all(np.abs(goal[:2]) < 0.28):
                break
        self.goal = goal
        self.reach = objects[self.target].size[0] + 0.035

    def __call__(self, k, state, world, objects):
        pos = world.pose(objects[self.target])[0]
        to_goal = self.goal[:2] - pos[:2]
        if np.linalg.norm(to_goal) < 0.01:
            return _step_toward(state, np.array([state[0], state[1], 0.15]), state[5], 1.0, self.fps)
        direction = np.array([*(to_goal / np.linalg.norm(to_goal)), 0.0])
        behind = np.array([pos[0], pos[1], 0.015]) - self.reach * direction
        yaw = math.atan2(direction[1], direction[0]) + math.pi / 2
        offset = state[:3] - behind
        along = float(np.dot(offset[:2], direction[:2]))
        across = float(np.linalg.norm(offset[:2] - along * direction[:2]))
        if across < 0.02 and -0.03 < along < 0.03 and state[2] < 0.03:
            # In place behind the object: push through it toward the goal.
            return _step_toward(state, behind + 0.05 * direction, yaw, 0.0, self.fps)
        if np.linalg.norm(offset[:2]) > 0.02:
            # Travel high so the fingers do not sweep other objects, then descend behind the object.
            if state[2] < 0.12:
                return _step_toward(state, np.array([state[0], state[1], 0.15]), yaw, 1.0, self.fps)
            return _step_toward(state, np.array([behind[0], behind[1], 0.15]), yaw, 1.0, self.fps)
        return _step_toward(state, behind, yaw, 0.0, self.fps)


# ----------------------------------------------------------------------------------------------- task


def _place_objects(world, rng, n):
    colors, placed = list(OBJECT_COLORS), []
    color_names = [colors[i] for i in rng.permutation(len(colors))[:n]]
    objects = []
    for i in range(n):
        shape = "cube" if rng.random() < 0.6 else "cylinder"
        s = float(rng.uniform(0.04, 0.06))
        for _ in range(200):
            xy = rng.uniform(-0.22, 0.22, 2)
            if all(np.linalg.norm(xy - p) > 0.18 for p in placed):
                break
        placed.append(xy)
        size = (s, s, s) if shape == "cube" else (s, s)
        yaw = float(rng.uniform(-math.pi, math.pi))
        objects.append(world.add_object(f"{color_names[i]}_{shape}", shape, size, color_names[i],
                                        (float(xy[0]), float(xy[1]), s + 0.0005),
                                        matrix_to_quat(euler_to_matrix((0, 0, yaw))), mass=float(rng.uniform(0.2, 0.6)),
                                        friction=0.5, restitution=0.0))
    return objects


def _direction_word(delta) -> str:
    """Direction as seen from the front camera (view 0 looks along +y: +x is right, +y is away)."""
    if abs(delta[0]) >= abs(delta[1]):
        return "to the right" if delta[0] > 0 else "to the left"
    return "away from the camera" if delta[1] > 0 else "toward the camera"


def simulate_push(seed: int = 0, num_frames: int = 24, height: int = 64, width: int = 64, fps: float = 8.0,
                  view: int = 0, policy: str = "scripted", actions=None, num_objects: int | None = None,
                  physics_hz: float = 480.0, fov: float = 45.0) -> WorldRecord:
    """Simulate the pushing task.

    Args:
        seed: draws objects, their poses, the start pose, policy choices, floor and lighting.
        policy: "random", "scripted" (open-loop push of one object in a random direction) or "goal"
            (closed-loop push of one object to a sampled goal position). Ignored when `actions` is given.
        actions: optional (num_frames - 1, 7) Bridge-format actions to replay from the seed's start state.
        view: fixed camera 0..3 (0 front, 1/2 oblique left/right, 3 nearly top-down).
        fps: control and video rate (Bridge records at 5 Hz; default 8).

    Returns a `WorldRecord` whose extras hold `actions` (T-1, 7), `ee_states` (T, 7), `goal_object_positions`
    (N, 3), `goal_image` (H, W, 3) and `target_object_id`. Actions are recomputed from the realised commanded
    states (after workspace clipping), so they always replay exactly.
    """
    check_size(height, width)
    check_frames(num_frames, fps)
    if num_frames < 2:
        raise ValueError(f"the push task needs num_frames >= 2 (actions link consecutive frames), got {num_frames}")
    if not isinstance(view, (int, np.integer)) or not 0 <= view < len(PUSH_VIEWS):
        raise ValueError(f"view must be an integer in 0..{len(PUSH_VIEWS) - 1}, got {view!r}")
    if actions is None and policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if actions is not None:
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (num_frames - 1, 7) or not np.all(np.isfinite(actions)):
            raise ValueError(f"actions must be finite and shaped ({num_frames - 1}, 7), got {actions.shape}")
        policy = "replay"
    if num_objects is not None and not 1 <= num_objects <= 4:
        raise ValueError(f"num_objects must be between 1 and 4, got {num_objects}")

    rng = np.random.default_rng(seed)
    floor = list(FLOOR_COLORS)[int(rng.integers(0, len(FLOOR_COLORS)))]
    lighting = Lighting.random(rng)
    n = int(num_objects or rng.integers(1, 4))
    with SimWorld(physics_hz=physics_hz, floor_color=floor) as world:
        objects = _place_objects(world, rng, n)
        start = np.array([*rng.uniform(-0.2, 0.2, 2), rng.uniform(0.1, 0.18), 0.0, 0.0,
                          rng.uniform(-math.pi, math.pi), 1.0])
        gripper = Gripper(world, start)
        initial_positions = world.state()[0][:n]
        target_id, goal = None, None
        if policy == "random":
            controller = RandomPolicy(rng, fps)
        elif policy == "scripted":
            controller = ScriptedPushPolicy(rng, fps, objects, initial_positions)
            target_id = controller.target + 1
        elif policy == "goal":
            controller = GoalPushPolicy(rng, fps, objects, initial_positions)
            target_id, goal = controller.target + 1, controller.goal
        else:
            controller = None

        az, el = PUSH_VIEWS[view]
        cam_to_world = look_at(orbit_eye(PUSH_TARGET, PUSH_DISTANCE, az, el), PUSH_TARGET)
        intrinsics = intrinsics_from_fov(height, width, fov)

        goal_image = None
        if goal is not None:  # render the goal state: the target object moved to its goal, nothing else changed
            body = objects[target_id - 1].body
            pos, orn = world.client.getBasePositionAndOrientation(body)
            world.client.resetBasePositionAndOrientation(body, (goal[0], goal[1], pos[2]), orn)
            goal_image = world.render(cam_to_world, intrinsics, height, width, lighting)[0]
            world.client.resetBasePositionAndOrientation(body, pos, orn)

        states = [start]
        video = np.empty((num_frames, height, width, 3), np.uint8)
        masks = np.empty((num_frames, height, width), np.uint8)
        depth = np.empty((num_frames, height, width), np.float32)
        positions, orientations = [], []
        for k in range(num_frames):
            if k:
                prev = states[-1]
                nxt = apply_action(prev, actions[k - 1]) if controller is None else controller(k, prev, world, objects)
                nxt = np.asarray(nxt, np.float64)
                nxt[:3] = np.clip(nxt[:3], WORKSPACE_LOW, WORKSPACE_HIGH)
                nxt[3:5] = np.clip(nxt[3:5], -0.5, 0.5)
                nxt[5] = (nxt[5] + math.pi) % (2 * math.pi) - math.pi
                nxt[6] = float(np.clip(nxt[6], 0.0, 1.0))
                states.append(nxt)

                def before_substep(alpha, a=prev, b=nxt):
                    mid = a + alpha * (b - a)
                    mid[5] = a[5] + alpha * ((b[5] - a[5] + math.pi) % (2 * math.pi) - math.pi)
                    gripper.command(mid)

                world.advance(1.0 / fps, before_substep=before_substep)
            video[k], depth[k], masks[k] = world.render(cam_to_world, intrinsics, height, width, lighting)
            pos, orn = world.state()
            positions.append(pos)
            orientations.append(orn)
        positions, orientations = np.stack(positions), np.stack(orientations)
        object_meta = [o.metadata() for o in world.objects]
        names = [describe_object(o) for o in objects]

    states = np.stack(states)
    realised_actions = actions_from_states(states)
    moved = np.linalg.norm(positions[-1, :n, :2] - positions[0, :n, :2], axis=-1)
    if policy in ("scripted", "goal"):
        k = target_id - 1
        delta = positions[-1, k] - positions[0, k]
        verb = "toward a goal" if policy == "goal" else ""
        caption = (f"A robot gripper pushes the {names[k]} {_direction_word(delta)} {verb}".rstrip()
                   + f" on a {floor} table.")
    else:
        caption = f"A robot gripper moves around a {floor} table"
        caption += (f", bumping the {names[int(np.argmax(moved))]}." if moved.max() > 0.02 else ".")
    if n > 1:
        others = [names[i] for i in range(n) if target_id is None or i != target_id - 1]
        caption += f" On the table: {join_words(_article(x) for x in names)}." if target_id is None else (
            f" {join_words(_article(x) for x in others)[0].upper()}{join_words(_article(x) for x in others)[1:]} "
            f"{'stands' if len(others) == 1 else 'stand'} nearby.")
    goal_positions = positions[-1].copy()
    if goal is not None:
        goal_positions = positions[0].copy()
        goal_positions[target_id - 1, :2] = goal[:2]
    extras = {
        "actions": realised_actions.astype(np.float32),
        "ee_states": states.astype(np.float32),
        "goal_object_positions": goal_positions.astype(np.float32),
        "goal_image": goal_image if goal_image is not None else video[-1].copy(),
        "target_object_id": target_id,
        "policy": policy,
    }
    params = {"floor_color": floor, "lighting": lighting.as_dict(), "physics_hz": physics_hz, "fov_degrees": fov,
              "policy": policy, "num_objects": n, "gripper_object_id": n + 1,
              "goal_distance": float(np.linalg.norm(positions[-1, target_id - 1, :2] - goal[:2])) if goal is not None
              else None}
    return WorldRecord(task="push", scene="push", seed=int(seed), view=int(view), fps=float(fps), video=video,
                       masks=masks, depth=depth, object_positions=positions.astype(np.float32),
                       object_orientations=orientations.astype(np.float32), intrinsics=intrinsics,
                       cam_to_world=np.repeat(cam_to_world[None], num_frames, axis=0), objects=object_meta,
                       caption=caption, params=params, extras=extras)
