"""Simulator throughput: frames per second for each task at 64x64 and 128x128 (single process, CPU).

Prints one JSON object. Every (task, size) candidate simulates `--clips` clips; the candidates run interleaved
`--repeats` times after a warm-up (bench/timing.py) and each reports the median: "fps" counts clip frames per
wall-clock second (a multiview frame = all its cameras), "cpu_fps" per second of this process's CPU time (robust on a
shared machine), "images_per_s" rendered images per wall-clock second. Also times writing a small dataset (video
encoding, masks, shards) for the physics task.

    OMP_NUM_THREADS=1 .venv/bin/python bench/sim.py [--clips 8] [--frames 16] [--repeats 5]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time

from timing import finish_report, interleaved, machine_header, positive_repeats

from cosmos_hf.sim import SCENES, generate_dataset, simulate, simulate_camera, simulate_multiview, simulate_push


def simulate_task(task, size, clips, frames):
    """Simulate `clips` clips of `task`; returns the number of rendered images."""
    images = 0
    for i in range(clips):
        common = {"seed": i, "num_frames": frames, "height": size, "width": size}
        if task == "physics":
            record = simulate(SCENES[i % len(SCENES)], view=i % 4, **common)
        elif task == "push":
            record = simulate_push(policy=("random", "scripted", "goal")[i % 3], **common)
        elif task == "camera":
            record = simulate_camera(**common)
        else:
            record = simulate_multiview(**common)
        images += record.video.size // (size * size * 3)
    return images


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed runs after one warm-up (>= 5)")
    args = parser.parse_args()
    positive_repeats(parser, args.repeats)
    simulate("free_fall", num_frames=2)  # imports, pybullet start
    results = {"benchmark": "sim", "command": " ".join(["bench/sim.py", *sys.argv[1:]]), "machine": machine_header(),
               "clips": args.clips, "frames": args.frames, "repeats": args.repeats,
               "statistic": "median over repeats, candidates interleaved"}
    images, cpu_seconds, candidates = {}, {}, {}
    for task in ("physics", "push", "camera", "multiview"):
        for size in (64, 128):
            name = f"{task}_{size}x{size}"
            cpu_seconds[name] = []

            def run(task=task, size=size, name=name):
                cpu_start = time.process_time()
                images[name] = simulate_task(task, size, args.clips, args.frames)
                cpu_seconds[name].append(time.process_time() - cpu_start)

            candidates[name] = run
    with tempfile.TemporaryDirectory() as tmp:
        dataset_runs = iter(range(10**6))

        def write_dataset():
            cpu_start = time.process_time()
            generate_dataset("physics", args.clips, f"{tmp}/ds{next(dataset_runs)}", num_frames=args.frames,
                             height=64, width=64, progress=False)
            cpu_seconds["generate_physics_64x64_serial"].append(time.process_time() - cpu_start)

        cpu_seconds["generate_physics_64x64_serial"] = []
        candidates["generate_physics_64x64_serial"] = write_dataset
        timings = interleaved(candidates, repeats=args.repeats)
    frames = args.clips * args.frames
    for name, timed in timings.items():
        cpu = statistics.median(cpu_seconds[name][1:])  # without the warm-up
        row = {"fps": round(frames / timed["median_s"], 1), "cpu_fps": round(frames / cpu, 1), "wall": timed}
        if name in images:
            row["images_per_s"] = round(images[name] / timed["median_s"], 1)
        results[name] = row
    for task in ("physics", "push", "camera", "multiview"):
        results[f"{task}_cpu_fps_ratio_64_over_128"] = round(
            results[f"{task}_64x64"]["cpu_fps"] / results[f"{task}_128x128"]["cpu_fps"], 2)
    results["note"] = "single process; `cosmos-hf sim generate --workers N` scales across processes"
    print(json.dumps(finish_report(results), indent=2))


if __name__ == "__main__":
    main()
