"""Writing evaluation results: strict JSON, a markdown report, and PNG plots (matplotlib, Agg backend).

JSON is strict (RFC 8259): +inf is written as the string "inf" (e.g. PSNR of an exact prediction) and NaN as
null (e.g. IoU when no object is visible anywhere). Every file is written atomically.
"""

import json
import math
from pathlib import Path

import numpy as np

from ..utils import atomic_path


def to_jsonable(value):
    """Numpy scalars/arrays -> Python; inf -> "inf" / "-inf"; NaN -> None; dict keys -> str."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(path, data) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")
    return path


def write_text(path, text: str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def format_number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.{digits}f}"


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(format_number(v) if not isinstance(v, str) else v for v in row) + " |")
    return "\n".join(lines)


def _finite_or_nan(values, cap=None):
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(np.nan)
        elif isinstance(v, float) and math.isinf(v):
            out.append(cap if cap is not None else np.nan)
        else:
            out.append(float(v))
    return np.asarray(out)


def plot_grouped_bars(path, categories, series: dict, title: str, ylabel: str, inf_cap=None) -> Path:
    """One PNG: a group of bars per category (e.g. scene), one bar per series (e.g. predictor).

    Infinite values (exact predictions' PSNR) are drawn at `inf_cap` and marked "inf"; NaN bars are left out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(categories) * max(1, len(series)) / 2 + 2), 4))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(categories))
    for i, (name, values) in enumerate(series.items()):
        raw = list(values)
        heights = _finite_or_nan(raw, inf_cap)
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, np.nan_to_num(heights), width, label=name)
        for bar, value in zip(bars, raw):
            if isinstance(value, float) and math.isinf(value):
                ax.annotate(
                    "inf", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7
                )
    ax.set_xticks(x)
    ax.set_xticklabels(categories, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside the axes: never hides a bar
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def plot_curves(path, series: dict, title: str, xlabel: str, ylabel: str, x0: int = 0) -> Path:
    """One PNG: a line per series (e.g. predictor) over an index (e.g. predicted frame); None/inf points skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in series.items():
        ys = _finite_or_nan(values)
        ax.plot(np.arange(x0, x0 + len(ys)), ys, marker=".", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


METRIC_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "fg_iou": "foreground IoU", "object_iou": "object IoU"}


def write_physics_report(results: dict, out_dir, command: str | None = None) -> dict:
    """results.json, report.md and PNGs (per-scene bars and per-frame curves for each metric and conditioning)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"json": str(write_json(out_dir / "results.json", results)), "plots": []}
    config = results["config"]
    lines = ["# Physics-alignment benchmark", ""]
    if command:
        lines += ["Command:", "", "```bash", command, "```", ""]
    lines += [
        f"Scenes: {', '.join(config['scenes'])}; views {config['views']}; seeds {config['seeds']}; "
        f"{config['num_frames']}-frame clips at {config['height']}x{config['width']}; metrics on the predicted frames "
        f"only; object masks by colour matching (max RGB distance {config['max_colour_distance']}). PSNR means leave "
        "out exact predictions (PSNR inf); `exact` is the fraction of clips predicted exactly.",
        "",
    ]
    for cond_key, by_predictor in results["results"].items():
        tc = int(cond_key.replace("cond", ""))
        lines += [f"## Conditioning on {tc} frame{'s' if tc > 1 else ''}", ""]
        rows = [
            [name] + [entry["overall"][m] for m in ("psnr", "ssim", "fg_iou", "object_iou", "exact_fraction")]
            for name, entry in by_predictor.items()
        ]
        lines += [markdown_table(["predictor", "PSNR (dB)", "SSIM", "fg IoU", "object IoU", "exact"], rows), ""]
        for metric in ("psnr", "ssim", "fg_iou"):
            lines += [f"Per scene, {METRIC_LABELS[metric]}:", ""]
            header = ["predictor"] + list(config["scenes"])
            rows = [
                [name] + [entry["per_scene"][s][metric] for s in config["scenes"]]
                for name, entry in by_predictor.items()
            ]
            lines += [markdown_table(header, rows), ""]
            bars = plot_grouped_bars(
                out_dir / f"{cond_key}_{metric}_per_scene.png",
                config["scenes"],
                {
                    name: [entry["per_scene"][s][metric] for s in config["scenes"]]
                    for name, entry in by_predictor.items()
                },
                f"{METRIC_LABELS[metric]} per scene, {tc} conditioning frame(s)",
                METRIC_LABELS[metric],
                inf_cap=60.0 if metric == "psnr" else None,
            )
            curves = plot_curves(
                out_dir / f"{cond_key}_{metric}_per_frame.png",
                {name: entry["per_frame"][metric] for name, entry in by_predictor.items()},
                f"{METRIC_LABELS[metric]} per predicted frame, {tc} conditioning frame(s)",
                "frame index in clip",
                METRIC_LABELS[metric],
                x0=tc,
            )
            written["plots"] += [str(bars), str(curves)]
            lines += [f"![{metric} per scene]({bars.name}) ![{metric} per frame]({curves.name})", ""]
    written["markdown"] = str(write_text(out_dir / "report.md", "\n".join(lines)))
    return written
