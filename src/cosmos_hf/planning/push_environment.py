"""The pushing task as a steppable environment (for closed-loop control), and object positions read off frames.

`cosmos_hf.sim.push.simulate_push` records a whole clip in one call; a planner needs to act, look, and act again, and
a simulator used *as the planner's model* needs to branch many futures from one state. `PushEnvironment` builds the
same scene as `simulate_push(seed, ...)` (the random draws happen in the same order, so seed s is the same table,
objects, start pose, lighting and goal) and keeps the pybullet world open: `step(action)` advances one frame,
`save_state` / `restore_state` branch. `test_planning.py` checks that stepping reproduces `simulate_push`'s frames.

`ObjectLocator` turns a frame into the goal object's position on the table, which is how a plan's cost is computed
from predicted frames (see `cosmos_hf.planning.mpc`): colour matching against the object's colours in the observed
frame (`cosmos_hf.evaluation.object_masks`), the centroid of the matched pixels cast as a camera ray onto the
horizontal plane at the object's centre height, and a constant offset that makes the estimate exact on the observed
frame (the visible blob's centroid is not the projection of the object's centre; the offset removes that bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..evaluation.object_masks import background_colours, rendered_object_colours, segment_by_colour
from ..sim.push import (
    PUSH_DISTANCE,
    PUSH_TARGET,
    PUSH_VIEWS,
    WORKSPACE_HIGH,
    WORKSPACE_LOW,
    Gripper,
    GoalPushPolicy,
    _place_objects,
    actions_from_states,
    apply_action,
)
from ..sim.world import FLOOR_COLORS, Lighting, SimWorld, check_size, intrinsics_from_fov, look_at, orbit_eye

SUCCESS_RADIUS_M = 0.05  # an episode succeeds when the goal object ends within 5 cm of its goal (table plane)


def clip_state(state) -> np.ndarray:
    """The commanded state as `simulate_push` realises it: workspace box, tilt limits, wrapped yaw, gripper 0..1."""
    state = np.asarray(state, np.float64).copy()
    state[:3] = np.clip(state[:3], WORKSPACE_LOW, WORKSPACE_HIGH)
    state[3:5] = np.clip(state[3:5], -0.5, 0.5)
    state[5] = (state[5] + math.pi) % (2 * math.pi) - math.pi
    state[6] = float(np.clip(state[6], 0.0, 1.0))
    return state


def realise_actions(state, actions) -> tuple[np.ndarray, np.ndarray]:
    """End-effector states (N+1, 7) and the actions as executed (N, 7, after workspace clipping) from `state`.

    Pure kinematics: the gripper is position-controlled, so where it goes needs no world model. Batched over a
    leading axis when `actions` is (B, N, 7) (then (B, N+1, 7) and (B, N, 7)).
    """
    actions = np.asarray(actions, np.float64)
    if actions.ndim == 3:
        pairs = [realise_actions(state, a) for a in actions]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    states = [np.asarray(state, np.float64)]
    for action in actions:
        states.append(clip_state(apply_action(states[-1], action)))
    states = np.stack(states)
    return states, actions_from_states(states)


@dataclass
class PushGoal:
    """Push object `object_id` (1-based mask id) to `position` (x, y on the table, metres)."""

    object_id: int
    position: np.ndarray


class PushEnvironment:
    """The push task of `simulate_push(seed, height, width, fps, view)`, one frame per `step`.

    The goal is the one `simulate_push(seed, policy="goal")` draws (an object and a point 12-25 cm from it).
    Use as a context manager (it owns a pybullet client).
    """

    def __init__(self, seed: int, height: int = 64, width: int = 64, fps: float = 8.0, view: int = 0,
                 physics_hz: float = 480.0, fov: float = 45.0, num_objects: int | None = None):
        check_size(height, width)
        if not isinstance(view, (int, np.integer)) or not 0 <= view < len(PUSH_VIEWS):
            raise ValueError(f"view must be an integer in 0..{len(PUSH_VIEWS) - 1}, got {view!r}")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.seed, self.height, self.width, self.fps = int(seed), height, width, float(fps)
        # the draws below follow simulate_push's order exactly: floor, lighting, objects, start, then the goal policy
        rng = np.random.default_rng(seed)
        floor = list(FLOOR_COLORS)[int(rng.integers(0, len(FLOOR_COLORS)))]
        self.lighting = Lighting.random(rng)
        n = int(num_objects or rng.integers(1, 4))
        self.world = SimWorld(physics_hz=physics_hz, floor_color=floor)
        self.objects = _place_objects(self.world, rng, n)
        self.ee_state = np.array([*rng.uniform(-0.2, 0.2, 2), rng.uniform(0.1, 0.18), 0.0, 0.0,
                                  rng.uniform(-math.pi, math.pi), 1.0])
        self.steps_taken = 0
        self.gripper = Gripper(self.world, self.ee_state)
        goal_policy = GoalPushPolicy(rng, fps, self.objects, self.world.state()[0][:n])
        self.goal = PushGoal(goal_policy.target + 1, np.asarray(goal_policy.goal[:2], np.float64))
        az, el = PUSH_VIEWS[view]
        self.cam_to_world = look_at(orbit_eye(PUSH_TARGET, PUSH_DISTANCE, az, el), PUSH_TARGET)
        self.intrinsics = intrinsics_from_fov(height, width, fov)

    # ------------------------------------------------------------------------------------------ state

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.world.close()

    def render(self):
        """(RGB uint8 (H, W, 3), object-id mask (H, W)) of the current state."""
        rgb, _, mask = self.world.render(self.cam_to_world, self.intrinsics, self.height, self.width, self.lighting)
        return rgb, mask

    def object_positions(self) -> np.ndarray:
        """(N, 3) world positions of the objects, in mask-id order (the gripper is the last)."""
        return self.world.state()[0]

    def goal_distance(self) -> float:
        """Table-plane distance (m) from the goal object to its goal."""
        return float(np.linalg.norm(self.object_positions()[self.goal.object_id - 1, :2] - self.goal.position))

    def save_state(self):
        """A snapshot to branch from (pybullet's in-memory state + the commanded end-effector state). A restored
        branch matches the original to micrometres, not bits (the contact solver's warm start is not part of it)."""
        return self.world.client.saveState(), self.ee_state.copy(), self.steps_taken

    def restore_state(self, snapshot):
        state_id, ee_state, self.steps_taken = snapshot
        self.world.client.restoreState(state_id)
        self.ee_state = ee_state.copy()
        self.gripper.command(self.ee_state)

    def remove_state(self, snapshot):
        self.world.client.removeState(snapshot[0])

    def step(self, action) -> np.ndarray:
        """Apply one Bridge-format action (simulate_push's realisation: clipped, interpolated over the sub-steps);
        returns the action as executed."""
        prev = self.ee_state
        nxt = clip_state(apply_action(prev, action))

        def before_substep(alpha, a=prev, b=nxt):
            mid = a + alpha * (b - a)
            mid[5] = a[5] + alpha * ((b[5] - a[5] + math.pi) % (2 * math.pi) - math.pi)
            self.gripper.command(mid)

        self.world.advance(1.0 / self.fps, before_substep=before_substep)
        self.ee_state = nxt
        self.steps_taken += 1
        return actions_from_states(np.stack([prev, nxt]))[0]


class ObjectLocator:
    """Table-plane (x, y) of one object in frames of the environment's camera, by colour (module docstring).

    Built from an observed frame and its simulator mask (a stand-in for a detector on the real robot's camera).
    `locate` falls back to the observed position where no pixel matches (the object left the view or was erased).
    """

    def __init__(self, frame, mask, object_id: int, position, cam_to_world, intrinsics, all_object_ids):
        self.object_id = int(object_id)
        self.position = np.asarray(position, np.float64)
        self.cam_to_world, self.intrinsics = np.asarray(cam_to_world), np.asarray(intrinsics)
        self.colours = rendered_object_colours(frame[None], mask[None], [self.object_id])
        others = [int(i) for i in all_object_ids if int(i) != self.object_id]
        # the other objects (and the gripper) are prototypes too, so their pixels are not mistaken for the target
        self.colours.update(rendered_object_colours(frame[None], mask[None], others))
        self.background = background_colours(frame[None], mask[None], list(all_object_ids))
        self.offset = np.zeros(2)
        raw = self._raw(frame[None])[0]
        self.offset = self.position[:2] - raw if np.all(np.isfinite(raw)) else np.zeros(2)

    @classmethod
    def from_environment(cls, env: PushEnvironment, frame=None, mask=None):
        if frame is None:
            frame, mask = env.render()
        ids = [o.object_id for o in env.world.objects]
        return cls(frame, mask, env.goal.object_id, env.object_positions()[env.goal.object_id - 1],
                   env.cam_to_world, env.intrinsics, ids)

    def _raw(self, frames) -> np.ndarray:
        """(T, 2) ray-plane intersections of the matched pixels' centroids (NaN where none matched)."""
        labels = segment_by_colour(frames, self.colours, self.background)
        out = np.full((len(frames), 2), np.nan)
        k_inv = np.linalg.inv(self.intrinsics)
        rot, eye = self.cam_to_world[:3, :3], self.cam_to_world[:3, 3]
        for t, label in enumerate(labels):
            rows, cols = np.nonzero(label == self.object_id)
            if len(rows) < 2:
                continue
            ray = rot @ (k_inv @ np.array([cols.mean(), rows.mean(), 1.0]))
            if ray[2] >= -1e-9:
                continue
            out[t] = (eye + (self.position[2] - eye[2]) / ray[2] * ray)[:2]
        return out

    def locate(self, frames, return_found: bool = False):
        """(T, 2) table positions of the object in uint8 frames (T, H, W, 3) (or (2,) for one frame); with
        `return_found`, also (T,) booleans: False where no pixel matched and the observed position stands in."""
        frames = np.asarray(frames)
        single = frames.ndim == 3
        raw = self._raw(frames[None] if single else frames) + self.offset
        found = np.isfinite(raw).all(1)
        raw[~found] = self.position[:2]
        if single:
            raw, found = raw[0], found[0]
        return (raw, found) if return_found else raw
