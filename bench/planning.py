"""Cost of one step of the closed planning loop on the CPU (issue #22): world model vs the simulator as the model;
prints JSON.

    .venv/bin/python bench/planning.py [--model pipelines/cosmos-nano-action-conditioned] [--threads 1 2] \
        [--repeats 5] [--population 8] [--iterations 2] [--horizon 16] [--execute-steps 8] [--sampling-steps 4]

One replan of `cosmos_hf.planning.mpc.run_episode` (CEM: `iterations` x `population` candidate sequences of
`horizon` actions, each predicted by the model and scored from its frames) from the first state of held-out push goal
0, then the planning seconds per executed step (= replan / `execute_steps`, the receding horizon) and per candidate.
Models: the action-conditioned world model (`WorldModelRollout`, all candidates of an iteration in one batch,
`sampling_steps` EDM steps) and the simulator branched per candidate (`SimulatorRollout`, the upper bound's model).
Reported: the median over `--repeats` of the planning seconds (`EpisodeResult.planning_seconds`: the CEM replan
alone) for every (model, threads) candidate, with the spread of the whole timed call (scene set-up and the 8 executed
steps included); candidates are interleaved after a warm-up round (`bench/timing.py` `interleaved`), and the
machine's load average (start and end), CPU flags and a `busy` flag are recorded.
The defaults are those of `cosmos-hf plan` (README "Closed loop: planning and policy evaluation").
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from timing import finish_report, interleaved, machine_header, positive_repeats

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "pipelines" / "cosmos-nano-action-conditioned"),
                        help="action-conditioned pipeline folder")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--horizon", type=int, default=16)
    parser.add_argument("--execute-steps", type=int, default=8)
    parser.add_argument("--sampling-steps", type=int, default=4)
    args = parser.parse_args(argv)
    positive_repeats(parser, args.repeats)
    if min(args.threads) < 1:
        parser.error("--threads must be >= 1")

    from cosmos_hf.planning import CEMConfig, PushEnvironment, SimulatorRollout, WorldModelRollout, run_episode
    from cosmos_hf.planning.experiments import load_action_pipeline

    config = CEMConfig(horizon=args.horizon, execute_steps=args.execute_steps, population=args.population,
                       num_elites=min(2, args.population), iterations=args.iterations)
    pipe = load_action_pipeline(args.model)
    size = int(pipe.config.default_height)
    models = {"world model": WorldModelRollout(pipe, args.sampling_steps), "simulator": SimulatorRollout()}
    candidates = [(name, threads) for name in models for threads in args.threads]

    planning_seconds = {candidate: [] for candidate in candidates}

    def replan(name, threads):
        """One replan (an episode that executes `execute_steps` actions); records its planning seconds."""
        torch.set_num_threads(threads)
        with PushEnvironment(0, height=size, width=size) as env:
            result = run_episode(env, models[name], config, config.execute_steps, np.random.default_rng(0))
        planning_seconds[(name, threads)].append(result.planning_seconds)

    machine = machine_header()
    timings = interleaved({candidate: (lambda candidate=candidate: replan(*candidate)) for candidate in candidates},
                          repeats=args.repeats)

    rollouts = config.iterations * config.population
    rows = []
    for (name, threads), timing in timings.items():
        median = statistics.median(planning_seconds[(name, threads)][-args.repeats:])  # (not the warm-up round)
        rows.append({"model": name, "threads": threads, "replan_s": round(median, 3),
                     "planning_s_per_step": round(median / config.execute_steps, 4),
                     "s_per_candidate": round(median / rollouts, 4),
                     "predicted_frames_per_s": round(rollouts * config.horizon / median, 1),
                     "timed_call": timing})
    print(json.dumps(finish_report({
        "benchmark": "closed-loop planning cost per executed step (CEM MPC of the push task, CPU)",
        "command": " ".join(["bench/planning.py", *sys.argv[1:]]), "machine": machine,
        "model": str(Path(args.model).resolve().relative_to(REPO)) if Path(args.model).resolve().is_relative_to(REPO)
        else args.model, "size": f"{size}x{size}", "sampling_steps": args.sampling_steps,
        "cem": {"population": config.population, "iterations": config.iterations, "horizon": config.horizon,
                "execute_steps": config.execute_steps, "candidates_per_replan": rollouts},
        "repeats": args.repeats, "statistic": "median over repeats, candidates interleaved",
        "results": rows,
    }), indent=2))


if __name__ == "__main__":
    main()
