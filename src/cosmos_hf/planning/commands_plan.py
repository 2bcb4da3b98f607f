"""`cosmos-hf plan`: CEM model-predictive control of the push task with the action-conditioned world model, random
actions and the simulator as the model (the upper bound) on held-out goals; a report folder."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..utils import positive_int


def _plan(args) -> int:
    from .experiments import BUNDLED_ACTION_MODEL, run_planning_experiment
    from .mpc import CEMConfig

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    config = CEMConfig(horizon=args.horizon, execute_steps=args.execute_steps, population=args.population,
                       num_elites=args.elites, iterations=args.iterations, action_repeat=args.action_repeat)
    command = "cosmos-hf " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["plan"] else None
    report = run_planning_experiment(args.out, args.model or BUNDLED_ACTION_MODEL,
                                     range(args.first_seed, args.first_seed + args.goals), args.steps, config,
                                     args.sampling_steps, methods, args.videos, command=command,
                                     show_progress=not args.quiet, jobs=args.jobs)
    for method, row in report["summary"].items():
        print(f"{method:12s} success {row['successes']}/{row['episodes']} ({row['success_rate']:.0%}), mean final "
              f"distance {row['mean_final_distance_m'] * 100:.1f} cm (from {row['mean_initial_distance_m'] * 100:.1f}"
              f"), planning {row['planning_seconds_per_step_median']:.2f} s/step")
    print(f"wrote {args.out}/report.json")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "plan", help="MPC (cross-entropy method) of the push task with the world model vs random vs the simulator",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="report folder (report.json, success.png, mpc_<seed>.mp4)")
    parser.add_argument("--model", help="action-conditioned pipeline folder (default: the bundled "
                                        "pipelines/cosmos-nano-action-conditioned)")
    parser.add_argument("--goals", type=positive_int, default=50, help="held-out push goals (simulator seeds)")
    parser.add_argument("--first-seed", type=int, default=0, help="first goal seed (the action model trained on "
                                                                  "seeds 10000..10999)")
    parser.add_argument("--methods", default="world-model,simulator,random",
                        help="comma-separated subset of world-model, simulator, random")
    parser.add_argument("--steps", type=positive_int, default=24, help="actions executed per episode (8 fps)")
    parser.add_argument("--horizon", type=positive_int, default=16, help="actions per planned sequence")
    parser.add_argument("--execute-steps", type=positive_int, default=8, help="actions executed before replanning")
    parser.add_argument("--population", type=positive_int, default=8, help="CEM candidates per iteration")
    parser.add_argument("--elites", type=positive_int, default=2, help="CEM elites refitted per iteration")
    parser.add_argument("--iterations", type=positive_int, default=2, help="CEM iterations per replan")
    parser.add_argument("--action-repeat", type=positive_int, default=4, help="steps each sampled action is held")
    parser.add_argument("--sampling-steps", type=positive_int, default=4, help="world model sampling steps")
    parser.add_argument("--videos", type=int, default=2, help="mp4s of real | imagined for the first goals")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="goals run in this many processes of one thread each (results do not depend on it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_plan)
