#!/usr/bin/env python
"""Merge `cosmos-hf eval physics` results of one model run as several processes into one JSON for bench/results/.

The benchmark's conditioning lengths are independent, so on a 2-core machine `--cond-frames 1` and `--cond-frames 5`
run faster as two processes side by side than as one. This script joins their `results.json` files as if one
command had run them all: the `results` of every input, `config.cond_frames` concatenated and `config.command` a list
of the commands. Per-sample `curves` (a score per predicted frame of every clip) are dropped to keep the file small;
per-sample scores and the overall, per-scene and per-frame means stay as the command wrote them.

    .venv/bin/python bench/merge_physics_results.py --out bench/results/eval_X.json --note "what was scored" \
        outputs/eval/X_c1/results.json outputs/eval/X_c5/results.json

The inputs must agree on everything but the conditioning lengths (scenes, seeds, views, frames, predictors' options);
a length that appears twice is refused. The predictors' options (the pipeline folder, sampling steps, guidance, seed,
--pipeline-kwargs, ...) are recorded only in each run's command, so the commands must agree too, except in
`COMMAND_OPTIONS_PER_RUN` (option order and `--name=value` spelling do not matter).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

# config entries that may differ between the merged runs: what each process was asked to condition on, and how
CONFIG_PER_RUN = ("cond_frames", "command")
# command-line options that may differ between the merged runs' commands; nothing else of the command may
COMMAND_OPTIONS_PER_RUN = ("--cond-frames", "--out", "--no-progress")


def command_options(command: str) -> dict:
    """{option: [values]} of a command line ("" holds the program and subcommand), without `COMMAND_OPTIONS_PER_RUN`."""
    options, current = {"": []}, ""
    for word in shlex.split(command):
        if word.startswith("--"):  # a negative number ("--seed -1") is a value, not an option
            current, given, value = word.partition("=")
            options[current] = [value] if given else []
        else:
            options[current].append(word)
    return {name: values for name, values in options.items() if name not in COMMAND_OPTIONS_PER_RUN}


def _commands(run: dict, index: int) -> list[str]:
    """A run's command lines: one for a command's results.json, several for an already merged file."""
    command = run["config"].get("command")
    commands = command if isinstance(command, list) else [command]
    if not commands or not all(isinstance(c, str) and c for c in commands):
        raise ValueError(f"run {index} has no config.command: its predictors' options cannot be checked against the "
                         "other runs'")
    return commands


def merge_physics_results(runs: list[dict], note: str) -> dict:
    """One results dict from several runs of the physics benchmark that differ only in their conditioning lengths."""
    if not runs:
        raise ValueError("no results to merge")
    first = runs[0]
    merged = {**first, "config": {**first["config"], "cond_frames": [], "command": []}, "results": {}}
    expected_options = command_options(_commands(first, 0)[0])
    for index, run in enumerate(runs):
        shared = {key: value for key, value in run["config"].items() if key not in CONFIG_PER_RUN}
        expected = {key: value for key, value in first["config"].items() if key not in CONFIG_PER_RUN}
        if shared != expected:
            differing = sorted(key for key in set(shared) | set(expected) if shared.get(key) != expected.get(key))
            raise ValueError(f"run {index} differs from run 0 in config {differing}: only the conditioning lengths "
                             "may differ between merged runs")
        # The config does not hold the predictors' options (steps, guidance, seed, pipeline folder): the commands do.
        commands = _commands(run, index)
        for command in commands:
            options = command_options(command)
            if options != expected_options:
                differing = sorted(name for name in set(options) | set(expected_options)
                                   if options.get(name) != expected_options.get(name))
                raise ValueError(f"run {index}'s command differs from run 0's in {differing}: only "
                                 f"{', '.join(COMMAND_OPTIONS_PER_RUN)} may differ between merged runs")
        repeated = sorted(set(run["results"]) & set(merged["results"]))
        if repeated:
            raise ValueError(f"run {index} repeats {repeated}: each conditioning length must come from one run")
        merged["config"]["cond_frames"] += list(run["config"]["cond_frames"])
        merged["config"]["command"] += commands
        for length, by_predictor in run["results"].items():
            merged["results"][length] = {
                name: {**entry, "samples": [{k: v for k, v in sample.items() if k != "curves"}
                                            for sample in entry.get("samples", [])]}
                for name, entry in by_predictor.items()}
    merged["note"] = note
    return merged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json files written by `cosmos-hf eval physics`")
    parser.add_argument("--out", type=Path, required=True, help="the merged JSON")
    parser.add_argument("--note", required=True, help="what was scored (which model, which defaults, from where)")
    args = parser.parse_args(argv)
    try:
        merged = merge_physics_results([json.loads(path.read_text()) for path in args.results], args.note)
    except (OSError, ValueError, KeyError) as error:
        parser.error(str(error))

    from cosmos_hf.utils import atomic_path

    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(merged, indent=1) + "\n")
    for length, by_predictor in merged["results"].items():
        for name, entry in by_predictor.items():
            o = entry["overall"]
            print(f"{length} {name:>24}: PSNR {o['psnr']:.2f}  SSIM {o['ssim']:.3f}  fgIoU {o['fg_iou']:.3f}  "
                  f"objIoU {o['object_iou']:.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
