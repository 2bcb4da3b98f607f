"""The physics-alignment benchmark (paper section on physical alignment), on the built-in world `cosmos_hf.sim`.

Protocol: for each of the 8 rigid-body scenes, each camera view and each seed, the simulator renders a
`num_frames`-frame clip (33 by default, the paper's length). A predictor sees the first `num_cond_frames`
frames (1 or 9) and the scene caption and returns the whole clip; we score the frames it had to predict
(indices num_cond_frames .. num_frames-1) against the simulator's:

- PSNR (TokenBench: one MSE over all predicted frames) and SSIM (mean over predicted frames);
- object IoU: objects in predicted frames found by colour matching (`object_masks`), compared with the
  simulator's masks; `fg_iou` is the IoU of the union of all scored objects, `object_iou` the mean over colour
  classes (objects sharing a colour form one class) of each class's IoU; each is a mean over the frames in which
  the object/class is present in either mask.

Scores are averaged over views and seeds per scene and over all samples overall. An exact prediction has PSNR +inf;
PSNR means leave exact samples out and `exact_fraction` counts them (a mean is +inf only if every sample is exact).
Per-frame curves (PSNR, SSIM, foreground IoU at each predicted frame index) are kept for the plots.
"""

from dataclasses import dataclass, field

import numpy as np

from .object_masks import (
    DEFAULT_MAX_COLOUR_DISTANCE,
    background_colours,
    colour_classes,
    rendered_object_colours,
    segment_by_colour,
)
from .video_metrics import mask_iou_per_frame, nanmean_or_nan, psnr, psnr_per_frame, ssim_per_frame

PAPER_NUM_FRAMES = 33
PAPER_COND_FRAMES = (1, 9)
PAPER_NUM_VIEWS = 4


@dataclass
class PhysicsSample:
    """One simulator clip with everything the benchmark needs."""

    scene: str
    seed: int
    view: int
    frames: np.ndarray  # uint8 (T, H, W, 3)
    masks: np.ndarray  # int (T, H, W) object ids
    object_ids: list  # ids (in `masks`) of the objects that are scored
    caption: str = ""
    object_colours: dict = field(default_factory=dict)  # id -> RGB 0-255 (metadata), optional


def _get(record, name, default=None):
    if isinstance(record, dict):
        return record.get(name, default)
    return getattr(record, name, default)


def _colour_255(colour):
    colour = np.asarray(colour, dtype=np.float64).reshape(-1)[:3]
    return colour * 255.0 if colour.max() <= 1.0 else colour


def objects_from_record(record) -> tuple[list, dict]:
    """Scored object ids and their metadata colours (0-255) from a `cosmos_hf.sim` record.

    Reads `record.objects`: a list of dicts with "id" (the value in `masks`; 0 is background/floor) and a numeric
    colour under "rgb" (0-255) / "rgba" / "color" (0-1 or 0-255), or a dict {id: such a dict}. Objects marked
    `"static": True` (slopes, the seesaw's pivot) are part of the set, not of the motion, and are not scored.
    Without metadata every id > 0 present in the masks is scored.
    """
    table = None
    for name in ("objects", "object_info", "object_metadata"):
        table = _get(record, name)
        if table:
            break
    if isinstance(table, dict):
        items = list(table.items())
    elif isinstance(table, (list, tuple)):
        items = []
        for entry in table:
            key = next((entry[k] for k in ("id", "body_id", "object_id", "mask_id") if k in entry), None)
            if key is None:
                raise ValueError(f"object metadata entry has no id key: {entry}")
            items.append((key, entry))
    else:
        items = []
    ids, colours = [], {}
    for key, entry in items:
        if isinstance(entry, dict) and entry.get("static", False):
            continue
        ids.append(int(key))
        if isinstance(entry, dict):
            for colour_key in ("rgb", "rgba", "color", "colour"):
                value = entry.get(colour_key)
                if value is not None and not isinstance(value, str):
                    colours[int(key)] = _colour_255(value)
                    break
    if not items:
        masks = np.asarray(_get(record, "masks"))
        ids = [int(v) for v in np.unique(masks) if v > 0]
    return ids, colours


def load_sim_sample(
    scene: str, seed: int, view: int, num_frames: int, height: int, width: int, fps: float
) -> PhysicsSample:
    """Simulate one clip with `cosmos_hf.sim.simulate` and wrap it as a PhysicsSample."""
    try:
        from cosmos_hf import sim
    except ImportError as err:
        raise ValueError(
            f"the physics benchmark needs the built-in world cosmos_hf.sim, which failed to import: {err}"
        )
    record = sim.simulate(scene, seed=seed, num_frames=num_frames, height=height, width=width, fps=fps, view=view)
    object_ids, colours = objects_from_record(record)
    frames = np.asarray(_get(record, "video"))
    masks = np.asarray(_get(record, "masks"))
    if frames.shape[0] < num_frames:
        raise ValueError(f"simulator returned {frames.shape[0]} frames for {scene}, {num_frames} requested")
    return PhysicsSample(
        scene=scene,
        seed=seed,
        view=view,
        frames=frames[:num_frames],
        masks=masks[:num_frames],
        object_ids=object_ids,
        caption=str(_get(record, "caption", "") or ""),
        object_colours=colours,
    )


def score_prediction(
    sample: PhysicsSample, predicted, num_cond_frames: int, max_colour_distance: float = DEFAULT_MAX_COLOUR_DISTANCE
) -> dict:
    """Metrics of one predicted clip (full length, conditioning included) against the sample's frames and masks."""
    predicted = np.asarray(predicted)
    num_frames = len(sample.frames)
    # Python slicing would accept anything here: -1 scored only the last frame, 0 scored the conditioning frames too.
    if isinstance(num_cond_frames, bool) or not isinstance(num_cond_frames, (int, np.integer)) \
            or not 1 <= num_cond_frames < num_frames:
        raise ValueError(f"num_cond_frames must be in [1, {num_frames - 1}] for a {num_frames}-frame clip "
                         f"(at least one frame to condition on and one to score), got {num_cond_frames!r}")
    if predicted.shape != sample.frames.shape or predicted.dtype != np.uint8:
        raise ValueError(
            f"prediction must be uint8 {sample.frames.shape} (the whole clip), got {predicted.dtype} {predicted.shape}"
        )
    cond = slice(0, num_cond_frames)
    future = slice(num_cond_frames, None)
    truth_frames, truth_masks = sample.frames[future], sample.masks[future]
    pred_frames = predicted[future]

    prototypes = rendered_object_colours(
        sample.frames[cond], sample.masks[cond], sample.object_ids, sample.object_colours
    )
    backdrop = background_colours(sample.frames[cond], sample.masks[cond], sample.object_ids)
    # Objects that share a colour are one class (colour cannot separate them); the class label is its smallest id.
    classes = colour_classes(sample.object_ids, sample.object_colours, prototypes, max_colour_distance)
    class_prototypes = {}
    for object_id, colours in prototypes.items():
        label = classes[object_id]
        class_prototypes[label] = (
            np.concatenate([class_prototypes[label], colours]) if label in class_prototypes else colours
        )
    pred_labels = segment_by_colour(pred_frames, class_prototypes, backdrop, max_colour_distance)
    truth_labels = np.full(truth_masks.shape, -1, dtype=np.int64)
    for object_id, label in classes.items():
        truth_labels[truth_masks == object_id] = label

    fg_iou_curve = mask_iou_per_frame(pred_labels >= 0, truth_labels >= 0)
    per_class = {}
    for label in sorted(set(classes.values())):
        per_class[int(label)] = nanmean_or_nan(mask_iou_per_frame(pred_labels == label, truth_labels == label))
    psnr_curve = psnr_per_frame(pred_frames, truth_frames)
    ssim_curve = ssim_per_frame(pred_frames, truth_frames)
    return {
        "psnr": psnr(pred_frames, truth_frames),
        "ssim": float(np.mean(ssim_curve)),
        "fg_iou": nanmean_or_nan(fg_iou_curve),
        "object_iou": nanmean_or_nan(list(per_class.values())),
        "per_class_iou": per_class,
        "colour_classes": {int(k): int(v) for k, v in classes.items()},
        "curves": {"psnr": psnr_curve.tolist(), "ssim": ssim_curve.tolist(), "fg_iou": fg_iou_curve.tolist()},
    }


def _mean(values):
    """Mean ignoring NaN (IoU with no object anywhere)."""
    values = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def _mean_psnr(values):
    """Mean PSNR over the samples that are not exact; +inf only when every sample is exact (MSE 0).

    An exact prediction's PSNR is +inf and would swallow any mean (copy-last is exact on a stack that never moves),
    so exact samples are counted separately (`exact_fraction`) and left out of the mean of the others.
    """
    finite = [v for v in values if np.isfinite(v)]
    if finite:
        return float(np.mean(finite))
    return float("inf") if values else float("nan")


def _aggregate(samples):
    out = {m: _mean([s[m] for s in samples]) for m in METRICS if m != "psnr"}
    out["psnr"] = _mean_psnr([s["psnr"] for s in samples])
    out["exact_fraction"] = float(np.mean([np.isinf(s["psnr"]) for s in samples])) if samples else float("nan")
    return out


def _curve_mean(curves):
    curves = np.asarray(curves, dtype=np.float64)
    finite = np.where(np.isfinite(curves), curves, np.nan)
    import warnings

    with warnings.catch_warnings():  # an all-NaN column (no object anywhere at that frame) is a legitimate None
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmean(finite, axis=0) if len(curves) else np.array([])
    return [None if np.isnan(v) else float(v) for v in np.atleast_1d(out)]


METRICS = ("psnr", "ssim", "fg_iou", "object_iou")


def run_physics_benchmark(
    predictors: dict,
    scenes,
    seeds,
    views,
    cond_frames=PAPER_COND_FRAMES,
    num_frames: int = PAPER_NUM_FRAMES,
    height: int = 64,
    width: int = 64,
    fps: float = 24.0,
    max_colour_distance: float = DEFAULT_MAX_COLOUR_DISTANCE,
    sample_fn=None,
    progress: bool = True,
) -> dict:
    """Run every predictor on every (scene, view, seed) for each conditioning length; return the results dict.

    `predictors`: name -> predictor (see `predictors.py`). `sample_fn(scene, seed, view, num_frames, height, width,
    fps) -> PhysicsSample` defaults to the simulator (tests pass synthetic clips). Result layout:
    {"config": {...}, "results": {f"cond{Tc}": {predictor: {"overall": {metric: mean}, "per_scene": {scene:
    {metric: mean}}, "per_frame": {metric: [mean at each predicted frame]}, "samples": [...]}}}}.
    """
    from tqdm.auto import tqdm

    scenes, seeds, views, cond_frames = list(scenes), list(seeds), list(views), list(cond_frames)
    if not predictors:
        raise ValueError("no predictors given")
    if not scenes or not seeds or not views:
        raise ValueError("need at least one scene, one seed and one view")
    # A repeated entry would be scored twice and weigh double in the overall means (meant to weigh scenes alike).
    for name, values in (("scenes", scenes), ("seeds", seeds), ("views", views), ("cond_frames", cond_frames)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"{name} lists {repeated} more than once; give each at most once")
    for tc in cond_frames:
        if not 1 <= tc < num_frames:
            raise ValueError(
                f"conditioning frames must be in [1, {num_frames - 1}] for {num_frames}-frame clips, got {tc}"
            )
    sample_fn = sample_fn or load_sim_sample
    results = {f"cond{tc}": {name: {"samples": []} for name in predictors} for tc in cond_frames}
    jobs = [(scene, view, seed) for scene in scenes for view in views for seed in seeds]
    bar = tqdm(total=len(jobs) * len(cond_frames) * len(predictors), desc="physics benchmark", disable=not progress)
    for scene, view, seed in jobs:
        sample = sample_fn(scene, seed, view, num_frames, height, width, fps)
        for tc in cond_frames:
            context = {
                "cond_masks": sample.masks[:tc],
                "object_ids": list(sample.object_ids),
                "seed": int(seed),
            }
            for name, predictor in predictors.items():
                call_context = dict(context)
                if getattr(predictor, "requires_ground_truth", False):
                    call_context["ground_truth"] = sample.frames
                predicted = predictor(sample.frames[:tc].copy(), sample.caption, num_frames, call_context)
                scores = score_prediction(sample, predicted, tc, max_colour_distance)
                scores.update(scene=scene, view=int(view), seed=int(seed))
                results[f"cond{tc}"][name]["samples"].append(scores)
                bar.update(1)
    bar.close()

    for by_predictor in results.values():
        for entry in by_predictor.values():
            samples = entry["samples"]
            entry["per_scene"] = {scene: _aggregate([s for s in samples if s["scene"] == scene]) for scene in scenes}
            # Overall = mean over all (scene, view, seed) samples; every scene has the same number of samples, so this
            # equals the mean of the per-scene means wherever no sample is exact.
            entry["overall"] = _aggregate(samples)
            entry["per_frame"] = {
                m: _curve_mean([s["curves"][m] for s in samples]) for m in ("psnr", "ssim", "fg_iou")
            }
    config = {
        "scenes": scenes,
        "seeds": [int(s) for s in seeds],
        "views": [int(v) for v in views],
        "cond_frames": cond_frames,
        "num_frames": num_frames,
        "height": height,
        "width": width,
        "fps": fps,
        "max_colour_distance": max_colour_distance,
        "predictors": list(predictors),
    }
    return {"benchmark": "physics", "config": config, "results": results}
