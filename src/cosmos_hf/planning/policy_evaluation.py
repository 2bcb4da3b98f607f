"""Policy evaluation in imagination: rank push policies by the world model's rollouts instead of the simulator's.

Each policy is scripted and open loop: from the first observation (the goal object's position, its goal, the gripper
state) it writes the whole action sequence, so the same actions can be executed in the simulator (the truth) and
rolled out by the world model from the same first frame (imagination). The policies are of graded quality: the
right push, pushes aimed 30 / 60 / 90 / 180 degrees off, a push half as long as needed, a hover that never touches
the object, and the task's random policy. A policy's success rate is the fraction of scenes whose goal object ends
within `SUCCESS_RADIUS_M` of its goal: in the simulator from the true final position; in imagination from the
position read off the last imagined frame (`ObjectLocator`, calibrated on the real first frame). The world model is
useful for evaluation when the two rankings agree: `spearman` of the success rates (and of the mean final
distances, which has fewer ties) over the policies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from ..sim.push import RandomPolicy, _step_toward, actions_from_states
from .push_environment import SUCCESS_RADIUS_M, ObjectLocator, PushEnvironment, clip_state

PUSH_HEIGHT_M, TRAVEL_HEIGHT_M = 0.015, 0.12


@dataclass(frozen=True)
class ScriptedPolicy:
    """Go above the pre-push point, descend, push `distance_scale` x the needed distance along the goal direction
    turned by `angle_error_deg`, lift. `hover` keeps the gripper at travel height (it never touches anything);
    `random` ignores all of this and moves like the push task's random policy."""

    name: str
    angle_error_deg: float = 0.0
    distance_scale: float = 1.0
    hover: bool = False
    random: bool = False

    def actions(self, env: PushEnvironment, num_steps: int, rng) -> np.ndarray:
        """(num_steps, 7) Bridge-format actions, written from the environment's first observation."""
        state = env.ee_state.copy()
        states = [state]
        if self.random:
            policy = RandomPolicy(rng, env.fps)
            for k in range(num_steps):
                states.append(clip_state(policy(k, states[-1], None, None)))
            return actions_from_states(np.stack(states))
        obj = env.world.objects[env.goal.object_id - 1]
        position = env.object_positions()[env.goal.object_id - 1]
        to_goal = env.goal.position - position[:2]
        needed = float(np.linalg.norm(to_goal))
        angle = math.atan2(to_goal[1], to_goal[0]) + math.radians(self.angle_error_deg)
        direction = np.array([math.cos(angle), math.sin(angle), 0.0])
        reach = obj.size[0] + 0.035  # the fingertips start this far behind the centre (as ScriptedPushPolicy)
        start = np.array([position[0], position[1], PUSH_HEIGHT_M]) - reach * direction
        # the object moves once the gap between fingertips and its face (~reach - half size) is closed
        end = start + (self.distance_scale * needed + (reach - obj.size[0])) * direction
        yaw = angle + math.pi / 2  # the palm's broad side leads
        low = TRAVEL_HEIGHT_M if self.hover else PUSH_HEIGHT_M
        waypoints = [(np.array([start[0], start[1], TRAVEL_HEIGHT_M]), 1.0), (np.array([start[0], start[1], low]), 0.0),
                     (np.array([end[0], end[1], low]), 0.0), (np.array([end[0], end[1], TRAVEL_HEIGHT_M]), 0.0)]
        index = 0
        for _ in range(num_steps):
            while index < len(waypoints) - 1 and np.linalg.norm(states[-1][:3] - waypoints[index][0]) < 1e-4:
                index += 1
            target, gripper = waypoints[index]
            states.append(clip_state(_step_toward(states[-1], target, yaw, gripper, env.fps)))
        return actions_from_states(np.stack(states))


POLICIES = (
    ScriptedPolicy("push to the goal"),
    ScriptedPolicy("push 30 deg off", angle_error_deg=30),
    ScriptedPolicy("push 60 deg off", angle_error_deg=60),
    ScriptedPolicy("push half way", distance_scale=0.5),
    ScriptedPolicy("push 90 deg off", angle_error_deg=90),
    ScriptedPolicy("push away from the goal", angle_error_deg=180),
    ScriptedPolicy("hover (no contact)", hover=True),
    ScriptedPolicy("random", random=True),
)


def rank_correlation(a, b) -> float:
    """Spearman's rho (average ranks for ties); NaN when either side is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two equally long sequences of >= 2 values, got {len(a)} and {len(b)}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _finite_or_none(value: float):
    return value if math.isfinite(value) else None


def evaluate_policies(rollout, seeds, num_steps: int = 32, policies=POLICIES, progress=None, keep_videos: int = 1,
                      image_size: int = 64):
    """Success of every policy on every scene, in the simulator and in imagination.

    `rollout(env, first_frame, actions (P, N, 7)) -> uint8 (P, T, H, W, 3)` (the last frame is scored) is the world
    model (`cosmos_hf.planning.mpc.WorldModelRollout`), or `SimulatorRollout` (a perfect imagination: a check).
    `image_size`: the frames' height and width (the world model's own size). Returns (report dict, videos): videos
    maps a scene seed (the first `keep_videos` scenes) to (real (P, N+1, H, W, 3), imagined (P, T, H, W, 3)).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("evaluate_policies needs at least one scene seed")
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    names = [p.name for p in policies]
    real = np.zeros((len(policies), len(seeds)))
    imagined = np.zeros_like(real)
    found = np.zeros(real.shape, bool)  # was the object seen in the last imagined frame (else: assumed unmoved)
    videos = {}
    for j, seed in enumerate(seeds):
        rng = np.random.default_rng(seed)
        with PushEnvironment(seed, height=image_size, width=image_size) as env:
            first, mask = env.render()
            locator = ObjectLocator.from_environment(env, first, mask)
            plans = np.stack([policy.actions(env, num_steps, rng) for policy in policies])
            frames = rollout(env, first, plans)
        imagined_xy, found[:, j] = locator.locate(frames[:, -1], return_found=True)
        real_videos = []
        for i, actions in enumerate(plans):
            with PushEnvironment(seed, height=image_size, width=image_size) as env:
                video = [first]
                for action in actions:
                    env.step(action)
                    if j < keep_videos:
                        video.append(env.render()[0])
                real[i, j] = env.goal_distance()
                imagined[i, j] = float(np.linalg.norm(imagined_xy[i] - env.goal.position))
            real_videos.append(np.stack(video))
        if j < keep_videos:
            videos[seed] = (np.stack(real_videos), frames)
        if progress is not None:
            progress(j + 1, len(seeds))
    real_success = (real < SUCCESS_RADIUS_M).mean(1)
    imagined_success = (imagined < SUCCESS_RADIUS_M).mean(1)
    rows = [{"policy": name, "real_success_rate": float(real_success[i]),
             "imagined_success_rate": float(imagined_success[i]),
             "real_mean_final_distance_m": float(real[i].mean()),
             "imagined_mean_final_distance_m": float(imagined[i].mean()),
             "imagined_object_found_rate": float(found[i].mean())} for i, name in enumerate(names)]
    report = {
        "scenes": seeds, "num_steps": num_steps, "success_radius_m": SUCCESS_RADIUS_M, "policies": rows,
        # None (JSON null) where a side is constant and the correlation undefined
        "spearman_success_rate": _finite_or_none(rank_correlation(real_success, imagined_success)),
        "spearman_mean_final_distance": _finite_or_none(rank_correlation(real.mean(1), imagined.mean(1))),
        "final_distance_m": {"real": real.round(4).tolist(), "imagined": imagined.round(4).tolist()},
    }
    return report, videos
