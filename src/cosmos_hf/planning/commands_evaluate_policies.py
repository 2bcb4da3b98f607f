"""`cosmos-hf evaluate-policies`: score scripted push policies of graded quality by the world model's rollouts and
by the simulator, and rank-correlate the two; a report folder."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..utils import positive_int


def _evaluate(args) -> int:
    from .experiments import BUNDLED_ACTION_MODEL, run_policy_evaluation

    command = ("cosmos-hf " + " ".join(shlex.quote(a) for a in sys.argv[1:])
               if sys.argv[1:2] == ["evaluate-policies"] else None)
    report = run_policy_evaluation(args.out, args.imagination, args.model or BUNDLED_ACTION_MODEL,
                                   range(args.first_seed, args.first_seed + args.scenes), args.steps,
                                   args.sampling_steps, args.videos, command=command, show_progress=not args.quiet)
    for row in report["policies"]:
        print(f"{row['policy']:26s} real {row['real_success_rate']:.2f}  imagined {row['imagined_success_rate']:.2f}"
              f"  (mean final distance {row['real_mean_final_distance_m'] * 100:.1f} / "
              f"{row['imagined_mean_final_distance_m'] * 100:.1f} cm)")
    print(f"Spearman rho: success rate {report['spearman_success_rate']}, "
          f"mean final distance {report['spearman_mean_final_distance']}")
    print(f"wrote {args.out}/report.json")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate-policies", help="rank push policies by the world model's imagined rollouts vs the simulator",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="report folder (report.json, ranking.png, policies_<seed>.mp4)")
    parser.add_argument("--model", help="action-conditioned pipeline folder (default: the bundled "
                                        "pipelines/cosmos-nano-action-conditioned)")
    parser.add_argument("--imagination", choices=("world-model", "simulator"), default="world-model",
                        help="what imagines the rollouts (simulator: a perfect model, to check the scoring)")
    parser.add_argument("--scenes", type=positive_int, default=16, help="held-out scenes (simulator seeds)")
    parser.add_argument("--first-seed", type=int, default=100, help="first scene seed")
    parser.add_argument("--steps", type=positive_int, default=32, help="actions per episode (8 fps)")
    parser.add_argument("--sampling-steps", type=positive_int, default=4, help="world model sampling steps")
    parser.add_argument("--videos", type=int, default=1, help="mp4s (rows: policies; real | imagined) for the "
                                                              "first scenes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_evaluate)
