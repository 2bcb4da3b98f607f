"""Model-predictive control of the push task with the cross-entropy method (CEM), with any model of the world.

The loop (receding horizon): look at the current frame; sample `population` sequences of `horizon` 7-D actions,
predict what each does with the model, score the predictions, refit the sampling distribution to the best
(`num_elites`) and repeat `iterations` times; execute the first `execute_steps` actions of the best sequence in the
simulator; look again. Models:

- `WorldModelRollout`: the action-conditioned world model (`CosmosActionConditionedPipeline`) rolls out all candidates
  of an iteration as one batch from the current real frame (one 17-frame window holds the 16-action horizon).
- `SimulatorRollout`: the simulator itself, branched from the current state for every candidate (the upper bound:
  a perfect model under the same planner and the same cost).

The cost is computed the same way for both, from the *predicted frames* (the choice issue #22 asks to document):
the goal object's table position is read off the last predicted frame (`ObjectLocator`: colour match, centroid, ray
onto the table) and its distance to the goal is the cost. Object positions rather than a distance in the
tokenizer's latent space, because the goal is a position (a latent distance to a goal image also rewards moving the
gripper back to where it was in that image, and is dominated by the gripper, the biggest moving thing in view), and
because success is measured as a position. A kinematic shaping term (`contact_weight` x the closest approach of the
fingertips to a pre-push point) is added, with the fingertips' target the pre-push point 6 cm behind the object
on the side away from the goal: the gripper is position-controlled, so where it goes needs no model, and without the
term most candidates never touch the object and the object term is flat.

Sampling: each sequence is `horizon / action_repeat` knots of 7-D actions, each held for `action_repeat` steps
(smoother motions and fewer numbers for a small population to search); the translation is limited to the task's
top speed; the wrist's roll/pitch/yaw and the gripper opening are sampled with `action_std` (0 by default: the
gripper stays as it is, closed fingers make the widest pusher), so the search is effectively over 3-D translations.
"Random actions" (the baseline) are sequences from the initial sampling distribution, executed open loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..sim.push import MAX_SPEED
from .push_environment import SUCCESS_RADIUS_M, ObjectLocator, PushEnvironment, realise_actions

DEFAULT_ACTION_STD = (0.02, 0.02, 0.02, 0.0, 0.0, 0.0, 0.0)
PRE_PUSH_REACH_M, PRE_PUSH_HEIGHT_M = 0.06, 0.015


@dataclass
class CEMConfig:
    """The planner's budget and sampling distribution; the defaults fit 50 goals x 3 methods in ~20 min on 1 core."""

    horizon: int = 16
    execute_steps: int = 8
    population: int = 8
    num_elites: int = 2
    iterations: int = 2
    action_repeat: int = 4
    action_std: tuple = DEFAULT_ACTION_STD
    min_std: float = 0.003
    contact_weight: float = 0.5
    gripper: float = 0.0  # the gripper opening the sampling distribution is centred on (0 = closed)

    def __post_init__(self):
        for name in ("horizon", "execute_steps", "population", "num_elites", "iterations", "action_repeat"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"CEMConfig.{name} must be an integer >= 1, got {value!r}")
        if self.execute_steps > self.horizon:
            raise ValueError(f"execute_steps ({self.execute_steps}) must be <= horizon ({self.horizon})")
        if self.num_elites > self.population:
            raise ValueError(f"num_elites ({self.num_elites}) must be <= population ({self.population})")
        if self.horizon % self.action_repeat:
            raise ValueError(f"horizon ({self.horizon}) must be a multiple of action_repeat ({self.action_repeat})")
        # NaN passes every `< 0` test: NaN or inf spreads and weights made every cost NaN (then no plan was picked)
        # or sent NaN gripper commands to the simulator
        std = np.asarray(self.action_std, np.float64)
        if std.shape != (7,) or not np.all(np.isfinite(std)) or std.min() < 0:
            raise ValueError(f"CEMConfig.action_std must hold 7 finite values >= 0, got {self.action_std!r}")
        for name in ("min_std", "contact_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"CEMConfig.{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= self.gripper <= 1.0:
            raise ValueError(f"CEMConfig.gripper must be in [0, 1] (0 = closed, 1 = open), got {self.gripper!r}")


def limit_speed(actions, fps: float) -> np.ndarray:
    """Scale each action's translation down to the task's top speed (MAX_SPEED m/s at `fps`)."""
    actions = np.array(actions, np.float64)
    step = MAX_SPEED / fps
    norm = np.linalg.norm(actions[..., :3], axis=-1, keepdims=True)
    actions[..., :3] *= np.minimum(1.0, step / np.maximum(norm, 1e-12))
    return actions


class ActionSampler:
    """Knot-wise Gaussian over action sequences (see the module docstring); `refit` is the CEM update."""

    def __init__(self, config: CEMConfig, fps: float):
        self.config, self.fps = config, fps
        self.num_knots = config.horizon // config.action_repeat
        self.mean = np.zeros((self.num_knots, 7))
        self.mean[:, 6] = config.gripper
        self.std = np.tile(np.asarray(config.action_std, np.float64), (self.num_knots, 1))

    def sample(self, rng, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(knots (count, K, 7), actions (count, horizon, 7))."""
        knots = self.mean + self.std * rng.standard_normal((count, *self.mean.shape))
        knots[..., 6] = np.clip(knots[..., 6], 0.0, 1.0)
        return knots, self.expand(knots)

    def expand(self, knots) -> np.ndarray:
        return limit_speed(np.repeat(knots, self.config.action_repeat, axis=-2), self.fps)

    def refit(self, elite_knots):
        self.mean = elite_knots.mean(0)
        floor = np.where(np.asarray(self.config.action_std) > 0, self.config.min_std, 0.0)
        self.std = np.maximum(elite_knots.std(0), floor)

    def shift(self, knots_done: int):
        """Warm start for the next replan: drop the executed knots, append fresh ones from the prior."""
        prior = ActionSampler(self.config, self.fps)
        self.mean = np.concatenate([self.mean[knots_done:], prior.mean[:knots_done]])
        self.std = prior.std


class WorldModelRollout:
    """Frames predicted by an action-conditioned pipeline for a batch of action sequences from the current frame."""

    name = "world model"

    def __init__(self, pipeline, num_inference_steps: int = 4, seed: int = 0):
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        self.pipeline, self.num_inference_steps, self.seed = pipeline, num_inference_steps, seed
        self.reset()

    def reset(self):
        """Forget the calls counted so far (`run_episode` calls this when an episode starts)."""
        self._state_key, self._calls_at_state = None, 0

    def generator_seed(self, env: PushEnvironment) -> int:
        """The sampling noise depends on (seed, scene, step, call at that step) only, so an episode's result does
        not depend on which episodes the same rollout object ran before (e.g. in `cosmos-hf plan --jobs`)."""
        key = (env.seed, env.steps_taken)
        self._calls_at_state = self._calls_at_state + 1 if key == self._state_key else 0
        self._state_key = key
        return int(np.random.SeedSequence([self.seed, *key, self._calls_at_state]).generate_state(1)[0])

    def __call__(self, env: PushEnvironment, frame, actions) -> np.ndarray:
        """uint8 (B, N+1, H, W, 3) for actions (B, N, 7) from `frame` (H, W, 3 uint8) of `env`'s current state."""
        import torch

        video = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None, :, None].float() / 127.5 - 1
        actions = torch.as_tensor(np.asarray(actions), dtype=torch.float32)
        video = video.expand(actions.shape[0], -1, -1, -1, -1)
        generator = torch.Generator().manual_seed(self.generator_seed(env))
        frames = self.pipeline(video=video, actions=actions, num_inference_steps=self.num_inference_steps,
                               generator=generator, output_type="np").frames
        frames = np.asarray(frames)
        # the pipeline resizes the frame to its own size; the cost's ObjectLocator reads positions with the
        # environment's pixel grid and intrinsics, so frames of another size give wrong positions (tens of cm)
        if frames.shape[2:4] != frame.shape[:2]:
            raise ValueError(f"the world model predicts {frames.shape[3]}x{frames.shape[2]} frames but the "
                             f"environment renders {frame.shape[1]}x{frame.shape[0]}: build the PushEnvironment "
                             f"(or evaluate_policies' image_size) at the model's size")
        return (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)


class SimulatorRollout:
    """The simulator as the planner's model: every candidate branched from the current state; renders only the
    last frame (all the cost reads). Returns uint8 (B, 1, H, W, 3)."""

    name = "simulator"

    def __call__(self, env: PushEnvironment, frame, actions) -> np.ndarray:
        snapshot = env.save_state()
        finals = []
        try:
            for sequence in np.asarray(actions):
                env.restore_state(snapshot)
                for action in sequence:
                    env.step(action)
                finals.append(env.render()[0])
        finally:
            env.restore_state(snapshot)
            env.remove_state(snapshot)
        return np.stack(finals)[:, None]


@dataclass
class EpisodeResult:
    seed: int
    method: str
    success: bool
    initial_distance: float
    final_distance: float
    planning_seconds: float
    replans: int
    steps: int
    object_found_rate: float | None = None  # of the scored candidates' last frames (None: random actions)
    real_frames: np.ndarray = field(repr=False, default=None)
    imagined_frames: np.ndarray = field(repr=False, default=None)  # the model's frames of what was executed

    def summary(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("real_frames", "imagined_frames")}
        out["planning_seconds_per_step"] = self.planning_seconds / max(self.steps, 1)
        return out


def pre_push_point(object_position, goal_xy, reach: float = PRE_PUSH_REACH_M) -> np.ndarray:
    """Where the fingertips must be to push the object toward the goal: `reach` behind it, just above the table."""
    object_position, goal_xy = np.asarray(object_position, np.float64), np.asarray(goal_xy, np.float64)
    direction = goal_xy - object_position[:2]
    direction = direction / max(np.linalg.norm(direction), 1e-9)
    return np.array([*(object_position[:2] - reach * direction), PRE_PUSH_HEIGHT_M])


def plan_cost(locator: ObjectLocator, goal_xy, object_position, ee_states, final_frames, contact_weight,
              return_found: bool = False):
    """(B,) costs: goal distance of the object read off each final frame + contact_weight x the closest approach
    of the fingertips to the pre-push point behind the object (kinematic, from the commanded states). With
    `return_found`, also (B,) booleans: was the object seen in the frame (else it counts as unmoved)."""
    object_xy, found = locator.locate(final_frames, return_found=True)
    goal_term = np.linalg.norm(object_xy - np.asarray(goal_xy)[None], axis=-1)
    target = pre_push_point(object_position, goal_xy)
    approach = np.linalg.norm(ee_states[:, :, :3] - target[None, None], axis=-1).min(1)
    cost = goal_term + contact_weight * approach
    return (cost, found) if return_found else cost


def run_episode(env: PushEnvironment, model, config: CEMConfig, num_steps: int, rng, method: str = "",
                record_frames: bool = False) -> EpisodeResult:
    """Run one push episode in `env`: CEM-MPC with `model`, or random actions when `model` is None."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    sampler = ActionSampler(config, env.fps)
    if hasattr(model, "reset"):
        model.reset()
    initial_distance = env.goal_distance()
    frame, mask = env.render()
    real, imagined = [frame], [frame]
    planning_seconds, replans, steps = 0.0, 0, 0
    found_counts = np.zeros(2, int)  # (candidates whose last frame showed the object, candidates scored)
    if model is None:
        _, actions = sampler.sample(rng, 1)
        plan = np.concatenate([actions[0]] * -(-num_steps // config.horizon))[:num_steps]
        for action in plan:
            env.step(action)
            if record_frames:
                real.append(env.render()[0])
        steps = num_steps
    while model is not None and steps < num_steps:
        start = time.perf_counter()
        locator = ObjectLocator.from_environment(env, frame, mask)
        object_position = env.object_positions()[env.goal.object_id - 1]
        best_cost, best_actions, best_frames = np.inf, None, None
        for _ in range(config.iterations):
            knots, actions = sampler.sample(rng, config.population)
            ee_states, realised = realise_actions(env.ee_state, actions)
            frames = model(env, frame, realised)
            costs, found = plan_cost(locator, env.goal.position, object_position, ee_states, frames[:, -1],
                                     config.contact_weight, return_found=True)
            found_counts += [int(found.sum()), len(found)]
            order = np.argsort(costs)
            sampler.refit(knots[order[: config.num_elites]])
            if costs[order[0]] < best_cost:
                best_cost, best_actions, best_frames = costs[order[0]], realised[order[0]], frames[order[0]]
        planning_seconds += time.perf_counter() - start
        replans += 1
        execute = min(config.execute_steps, num_steps - steps)
        for action in best_actions[:execute]:
            env.step(action)
            if record_frames:
                real.append(env.render()[0])
        if record_frames and len(best_frames) > 1:
            imagined.extend(best_frames[1 : execute + 1])
        steps += execute
        sampler.shift(-(-execute // config.action_repeat))
        frame, mask = env.render()
    final_distance = env.goal_distance()
    return EpisodeResult(env.seed, method or (model.name if model else "random actions"),
                         bool(final_distance < SUCCESS_RADIUS_M), initial_distance, final_distance,
                         planning_seconds, replans, steps,
                         float(found_counts[0] / found_counts[1]) if found_counts[1] else None,
                         np.stack(real) if record_frames else None,
                         np.stack(imagined) if record_frames and len(imagined) > 1 else None)
