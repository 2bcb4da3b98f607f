"""Closed loop with the world model (issue #22): CEM model-predictive control of the push task and policy evaluation
in imagination. See `mpc` (planner, models, cost), `policy_evaluation`, `push_environment` (the steppable task and
object positions read off frames) and `experiments` (the reports behind `cosmos-hf plan` / `evaluate-policies`)."""

from .mpc import CEMConfig, SimulatorRollout, WorldModelRollout, run_episode
from .policy_evaluation import POLICIES, ScriptedPolicy, evaluate_policies, rank_correlation
from .push_environment import SUCCESS_RADIUS_M, ObjectLocator, PushEnvironment, realise_actions

__all__ = ["CEMConfig", "ObjectLocator", "POLICIES", "PushEnvironment", "SUCCESS_RADIUS_M", "ScriptedPolicy",
           "SimulatorRollout", "WorldModelRollout", "evaluate_policies", "rank_correlation", "realise_actions",
           "run_episode"]
