"""Curation benchmark: clips per second with the in-process executor, Ray with 1 vs 2 actors per stage and the
Ray Data pipeline; peak memory of shot splitting (whole decoded video vs the streaming split stage); ShotBench-style
shot detection scores for each detector, on videos built from physics-world shots. Prints JSON.

    python bench/curation.py [--videos 8] [--shots 3] [--size 64] [--transnet-weights PATH] [--split-frames 960]

All runs use the same inputs and configuration on the same machine in one process; compare the ratios. The
executors run interleaved (local, Ray 1, Ray 2, Ray Data, local, ...) `--repeats` times after a warm-up round
(bench/timing.py); each row holds the medians.
"""

import argparse
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import finish_report, interleaved, machine_header, positive_repeats


def make_inputs(root: Path, videos: int, shots: int, size: int):
    from cosmos_hf.curation.shotbench import make_shot_video
    from cosmos_hf.data import write_video

    for i in range(videos):
        frames, _, _ = make_shot_video(shots, 48, size, seed=10 + i)
        write_video(root / f"video_{i:03d}.mp4", frames, 24)


def time_run(inputs, out, executor):
    from cosmos_hf.curation import CurationConfig, run_curation

    start = time.perf_counter()
    summary = run_curation(inputs, out, CurationConfig(min_clip_seconds=1.0, crop_seconds=0.25), executor=executor,
                           progress=False)
    seconds = time.perf_counter() - start
    clips = summary["stages"]["split"]["clips"]
    setup = getattr(executor, "last_setup_seconds", None) or 0.0
    return {"seconds": round(seconds, 2), "actor_startup_seconds": round(setup, 2), "clips": clips,
            "clips_written": summary["clips_written"], "clips_per_second": round(clips / seconds, 3),
            "clips_per_second_after_startup": round(clips / (seconds - setup), 3)}


def shotbench(transnet_weights=None, videos=6):
    from cosmos_hf.curation.shot_detection import ContentDetector, TransNetV2
    from cosmos_hf.curation.shotbench import evaluate_detector, make_shot_video

    data = [make_shot_video(4, 48, 64, seed=s, transitions=("cut", "dissolve"))[:2] for s in range(videos)]
    detectors = {"content (PySceneDetect adaptive)": ContentDetector(),
                 "content + dissolve span 12": ContentDetector(gradual_span=12)}
    if transnet_weights:
        detectors["transnetv2"] = TransNetV2(transnet_weights)
    return {name: {k: round(v, 3) if isinstance(v, float) else v for k, v in evaluate_detector(d, data).items()}
            for name, d in detectors.items()}


def split_memory(root: Path, frames: int, size: int = 256):
    """Peak traced memory (numpy buffers) of shot detection on one `frames`-frame video: decoding it whole then
    detecting (the old split stage) vs `SplitStage`, which streams decoded frames into the detector."""
    import tracemalloc

    from cosmos_hf.curation.pipeline import CurationConfig, SplitStage
    from cosmos_hf.curation.shot_detection import ContentDetector
    from cosmos_hf.curation.shotbench import make_shot_video
    from cosmos_hf.data import read_video, write_video

    video, _, _ = make_shot_video(max(2, frames // 96), 96, size, seed=3)
    path = write_video(root / "long.mp4", video[:frames], 24)
    del video
    peaks = {}
    for name in ("whole_video", "streaming"):
        tracemalloc.start()
        start = time.perf_counter()
        if name == "whole_video":
            decoded, _ = read_video(path)
            cuts = len(ContentDetector(gradual_span=12).detect(decoded))
            del decoded
        else:
            stage = SplitStage(CurationConfig(dissolve_span=12), root / "work")
            stage.setup()
            cuts = stage.process({"video_id": "long", "path": str(path), "caption": None})[0]["num_transitions"]
        seconds = time.perf_counter() - start
        peaks[name] = {"peak_mb": round(tracemalloc.get_traced_memory()[1] / 2 ** 20, 1), "transitions": cuts,
                       "seconds": round(seconds, 2)}
        tracemalloc.stop()
    peaks["frames"], peaks["size"] = frames, size
    peaks["memory_ratio_whole_vs_streaming"] = round(peaks["whole_video"]["peak_mb"] / peaks["streaming"]["peak_mb"], 1)
    return peaks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--transnet-weights", default=None)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--split-frames", type=int, default=960, help="frames of the split-memory video (256x256)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs of every executor (>= 5)")
    args = parser.parse_args(argv)
    positive_repeats(parser, args.repeats)

    from cosmos_hf.curation import LocalExecutor, RayDataExecutor, RayExecutor, ray_available

    work = Path(tempfile.mkdtemp(prefix="bench_curation_"))
    try:
        make_inputs(work / "in", args.videos, args.shots, args.size)
        result = {"benchmark": "curation", "command": " ".join(["bench/curation.py", *(argv or sys.argv[1:])]),
                  "machine": machine_header(), "videos": args.videos, "shots_per_video": args.shots,
                  "size": args.size, "cpus": os.cpu_count(), "repeats": args.repeats,
                  "statistic": "median over repeats, executors interleaved"}
        executors = {"local": LocalExecutor}
        use_ray = ray_available() and not args.skip_ray
        if use_ray:
            import ray

            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
            result["ray_version"] = ray.__version__
            executors.update(ray_1_worker=lambda: RayExecutor(workers=1), ray_2_workers=lambda: RayExecutor(workers=2),
                             ray_data_1_worker=lambda: RayDataExecutor(workers=1))
        runs = {name: [] for name in executors}

        def candidate(name, make_executor):
            counter = itertools.count()
            return lambda: runs[name].append(time_run(work / "in", work / f"{name}_{next(counter)}", make_executor()))

        timings = interleaved({name: candidate(name, make) for name, make in executors.items()}, repeats=args.repeats)
        if use_ray:
            ray.shutdown()
        for name, rows in runs.items():
            timed_rows = rows[1:]  # without the warm-up round
            result[name] = {key: (round(statistics.median(row[key] for row in timed_rows), 3)
                                  if isinstance(rows[0][key], float) else rows[-1][key]) for key in rows[0]}
            result[name]["wall"] = timings[name]
        if use_ray:
            one, two = result["ray_1_worker"], result["ray_2_workers"]
            result["speedup_2_vs_1_workers"] = round(one["seconds"] / two["seconds"], 3)
            result["speedup_2_vs_1_workers_after_startup"] = round(
                two["clips_per_second_after_startup"] / one["clips_per_second_after_startup"], 3)
        result["split_memory"] = split_memory(work, args.split_frames)
        result["shotbench"] = shotbench(args.transnet_weights)
        print(json.dumps(finish_report(result), indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
