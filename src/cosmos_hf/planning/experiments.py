"""The two closed-loop experiments behind `cosmos-hf plan` and `cosmos-hf evaluate-policies`: run, then write a
report folder (`report.json`, a plot, mp4s of imagined next to real rollouts), every file written atomically."""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..utils import atomic_path
from .mpc import CEMConfig, SimulatorRollout, WorldModelRollout, run_episode
from .push_environment import SUCCESS_RADIUS_M, PushEnvironment

REPO_ROOT = Path(__file__).resolve().parents[3]
BUNDLED_ACTION_MODEL = REPO_ROOT / "pipelines" / "cosmos-nano-action-conditioned"
METHODS = ("world-model", "simulator", "random")


def load_action_pipeline(path):
    """A `CosmosActionConditionedPipeline` from a folder (guardrail off: planning calls it thousands of times on
    simulator frames), progress bars off."""
    from ..pipelines import CosmosActionConditionedPipeline

    path = Path(path)
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(f"{path} is not a pipeline folder (no model_index.json); pass --model "
                                f"an action-conditioned pipeline folder, e.g. {BUNDLED_ACTION_MODEL}")
    pipe = CosmosActionConditionedPipeline.from_pretrained(path, disable_safety_checker=True)
    pipe._model_action_shape()  # refuses a pipeline without action conditioning, with a clear error
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _write_json(path, data):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2) + "\n")


def _side_by_side(left, right, scale: int = 2) -> np.ndarray:
    """uint8 (T, H, 2W + 2, 3) with a white gutter, nearest-neighbour upscaled by `scale`."""
    length = min(len(left), len(right))
    gutter = np.full((length, left.shape[1], 2, 3), 255, np.uint8)
    video = np.concatenate([left[:length], gutter, right[:length]], axis=2)
    return video.repeat(scale, axis=1).repeat(scale, axis=2)


def _save_figure(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr)


def summarise(episodes) -> dict:
    """Per-method success rate, distances and planning time from `EpisodeResult.summary()` rows."""
    out = {}
    for method in dict.fromkeys(e["method"] for e in episodes):
        rows = [e for e in episodes if e["method"] == method]
        per_step = [e["planning_seconds_per_step"] for e in rows]
        out[method] = {
            "episodes": len(rows),
            "successes": sum(e["success"] for e in rows),
            "success_rate": sum(e["success"] for e in rows) / len(rows),
            "mean_initial_distance_m": statistics.fmean(e["initial_distance"] for e in rows),
            "mean_final_distance_m": statistics.fmean(e["final_distance"] for e in rows),
            "median_final_distance_m": statistics.median(e["final_distance"] for e in rows),
            "closer_to_goal_rate": sum(e["final_distance"] < e["initial_distance"] - 0.01 for e in rows) / len(rows),
            "planning_seconds_per_step_median": statistics.median(per_step),
            "planning_seconds_per_replan_median": statistics.median(
                e["planning_seconds"] / max(e["replans"], 1) for e in rows),
            "object_found_rate_mean": (statistics.fmean(e["object_found_rate"] for e in rows)
                                       if rows[0]["object_found_rate"] is not None else None),
        }
    return out


class _GoalRunner:
    """Runs every method on one goal; one per process (`--jobs`), holding its own model and simulator."""

    def __init__(self, model_path, sampling_steps, methods, config, num_steps, threads=None):
        import torch

        if threads is not None:
            torch.set_num_threads(threads)
        self.models = {"simulator": SimulatorRollout(), "random": None}
        self.size = 64  # the push task as the bundled action model was trained on it; a given model's own size else
        if "world-model" in methods:
            pipe = load_action_pipeline(model_path)
            self.models["world-model"] = WorldModelRollout(pipe, sampling_steps)
            self.size = int(pipe.config.default_height)
        self.methods, self.config, self.num_steps = methods, config, num_steps

    def __call__(self, seed: int, record: bool):
        rows, video = [], None
        for method in self.methods:
            record_this = record and method == "world-model"
            with PushEnvironment(seed, height=self.size, width=self.size) as env:
                # the same sampling draws for every method on a goal: only the model differs
                result = run_episode(env, self.models[method], self.config, self.num_steps,
                                     np.random.default_rng(seed), method=method, record_frames=record_this)
            rows.append(result.summary())
            if record_this:
                video = (result.real_frames, result.imagined_frames)
        return rows, video


_WORKER_RUNNER = None


def _init_worker(*args):
    global _WORKER_RUNNER
    _WORKER_RUNNER = _GoalRunner(*args, threads=1)


def _run_in_worker(seed, record):
    return seed, _WORKER_RUNNER(seed, record)


def run_planning_experiment(out_dir, model_path=BUNDLED_ACTION_MODEL, seeds=range(50), num_steps: int = 24,
                            config: CEMConfig | None = None, sampling_steps: int = 4, methods=METHODS,
                            num_videos: int = 2, command: str | None = None, show_progress: bool = True,
                            jobs: int = 1) -> dict:
    """MPC on the push goals of `seeds` with each method; writes `out_dir`/report.json, success.png and
    mpc_<seed>.mp4 (real | imagined for the world model's first `num_videos` goals). Returns the report.

    `jobs` > 1 runs goals in that many processes of one thread each (a goal's result does not depend on it)."""
    import torch

    config = config or CEMConfig()
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be a non-empty subset of {', '.join(METHODS)}, got {list(methods)}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("give at least one goal seed")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    methods = list(methods)
    out_dir = Path(out_dir)
    runner_args = (model_path, sampling_steps, methods, config, num_steps)
    start = time.perf_counter()
    results = {}
    bar = _progress(len(seeds), "goals") if show_progress else None

    def done(seed, result):
        results[seed] = result  # (episode summaries, video or None)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"goal {seed}: " + ", ".join(f"{r['method']} {r['final_distance']:.3f} m"
                                                             for r in result[0]))

    if jobs == 1:
        runner = _GoalRunner(*runner_args)
        size, threads = runner.size, torch.get_num_threads()
        for index, seed in enumerate(seeds):
            done(seed, runner(seed, index < num_videos))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = 1
        size = 64
        if "world-model" in methods:  # (the workers load the model; the parent only needs its frame size)
            index_file = Path(model_path) / "model_index.json"
            if not index_file.is_file():
                raise FileNotFoundError(f"{model_path} is not a pipeline folder (no model_index.json)")
            size = int(json.loads(index_file.read_text()).get("default_height", 64))
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                                 initargs=runner_args) as pool:
            futures = [pool.submit(_run_in_worker, seed, index < num_videos) for index, seed in enumerate(seeds)]
            for future in as_completed(futures):
                done(*future.result())
    if bar is not None:
        bar.close()
    episodes = [row for seed in seeds for row in results[seed][0]]
    videos = {seed: results[seed][1] for seed in seeds if results[seed][1] is not None}
    report = {
        "experiment": "CEM model-predictive control of the push task (issue #22)",
        "command": command,
        "model": str(model_path) if "world-model" in methods else None,
        "goal_seeds": seeds, "num_steps": num_steps, "fps": 8.0, "view": 0, "image_size": size,
        "success_radius_m": SUCCESS_RADIUS_M, "sampling_steps": sampling_steps, "cem": asdict(config),
        "torch_threads": threads, "jobs": jobs, "wall_seconds": round(time.perf_counter() - start, 1),
        "summary": summarise(episodes), "episodes": episodes,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "report.json", report)
    _plot_planning(report, out_dir / "success.png")
    from ..data import write_video

    for seed, (real, imagined) in videos.items():
        if imagined is not None:
            write_video(out_dir / f"mpc_{seed}.mp4", _side_by_side(real, imagined), fps=8)
    return report


def _plot_planning(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    methods = list(summary)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.bar(methods, [summary[m]["success_rate"] for m in methods], color="tab:blue")
    left.set_ylabel(f"success rate (< {report['success_radius_m'] * 100:.0f} cm)")
    left.set_ylim(0, 1)
    left.set_title(f"{len(report['goal_seeds'])} held-out push goals")
    for method in methods:
        rows = [e for e in report["episodes"] if e["method"] == method]
        right.scatter([e["initial_distance"] for e in rows], [e["final_distance"] for e in rows], s=12, label=method)
    limit = max(0.3, max(e["initial_distance"] for e in report["episodes"]))
    right.plot([0, limit], [0, limit], "k:", lw=1)
    right.set_xlim(0, limit)
    right.set_ylim(0, limit)
    right.set_xlabel("initial distance to goal (m)")
    right.set_ylabel("final distance (m)")
    right.legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def run_policy_evaluation(out_dir, model="world-model", model_path=BUNDLED_ACTION_MODEL, seeds=range(100, 116),
                          num_steps: int = 32, sampling_steps: int = 4, num_videos: int = 1,
                          command: str | None = None, show_progress: bool = True) -> dict:
    """`evaluate_policies` with the world model (or the simulator as a perfect imagination, `model="simulator"`);
    writes `out_dir`/report.json, ranking.png and policies_<seed>.mp4 (rows: policies; real | imagined)."""
    import torch

    from .policy_evaluation import evaluate_policies

    if model not in ("world-model", "simulator"):
        raise ValueError(f"model must be 'world-model' or 'simulator', got {model!r}")
    size, rollout = 64, SimulatorRollout()
    if model == "world-model":
        pipe = load_action_pipeline(model_path)
        size, rollout = int(pipe.config.default_height), WorldModelRollout(pipe, sampling_steps)
    seeds = [int(s) for s in seeds]
    bar = _progress(len(seeds), "scenes") if show_progress else None
    start = time.perf_counter()
    result, videos = evaluate_policies(rollout, seeds, num_steps, keep_videos=num_videos, image_size=size,
                                       progress=(lambda done, total: bar.update(1)) if bar is not None else None)
    if bar is not None:
        bar.close()
    report = {"experiment": "policy evaluation in imagination (issue #22)", "command": command,
              "model": str(model_path) if model == "world-model" else "simulator", "sampling_steps": sampling_steps,
              "torch_threads": torch.get_num_threads(), "wall_seconds": round(time.perf_counter() - start, 1),
              **result}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "report.json", report)
    _plot_policies(report, out_dir / "ranking.png")
    from ..data import write_video

    for seed, (real, imagined) in videos.items():
        if imagined.shape[1] == real.shape[1]:  # (the simulator imagination keeps only last frames)
            rows = [_side_by_side(r, i, scale=1) for r, i in zip(real, imagined)]
            write_video(out_dir / f"policies_{seed}.mp4", np.concatenate(rows, axis=1), fps=8)
    return report


def _plot_policies(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["policies"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, key, label in ((left, "success_rate", "success rate"),
                           (right, "mean_final_distance_m", "mean final distance (m)")):
        real = [r[f"real_{key}"] for r in rows]
        imagined = [r[f"imagined_{key}"] for r in rows]
        ax.scatter(real, imagined)
        for r, x, y in zip(rows, real, imagined):
            ax.annotate(r["policy"], (x, y), fontsize=6)
        ax.set_xlabel(f"simulator: {label}")
        ax.set_ylabel(f"imagined: {label}")
        rho = report["spearman_success_rate" if key == "success_rate" else "spearman_mean_final_distance"]
        ax.set_title(f"Spearman rho = {rho:.2f}" if rho is not None else "Spearman rho undefined (a constant side)",
                     fontsize=10)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
