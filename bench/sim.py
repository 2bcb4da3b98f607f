"""Simulator throughput: frames per second for each task at 64x64 and 128x128 (single process, CPU).

Prints one JSON object. "fps" counts clip frames per wall-clock second (a multiview frame = all its cameras);
"cpu_fps" per second of this process's CPU time (robust on a shared machine); "images_per_s" counts rendered
images per wall-clock second. Also times writing a small dataset (video encoding, masks, shards) for the physics task.

    OMP_NUM_THREADS=1 .venv/bin/python bench/sim.py [--clips 8] [--frames 16]
"""

import argparse
import json
import platform
import tempfile
import time

from cosmos_hf.sim import SCENES, generate_dataset, simulate, simulate_camera, simulate_multiview, simulate_push


def time_task(task, size, clips, frames):
    start, cpu_start = time.perf_counter(), time.process_time()
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
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"fps": round(clips * frames / seconds, 1), "cpu_fps": round(clips * frames / cpu_seconds, 1),
            "images_per_s": round(images / seconds, 1), "seconds": round(seconds, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    simulate("free_fall", num_frames=2)  # warm-up: imports, pybullet start
    results = {"machine": platform.processor() or platform.machine(), "clips": args.clips, "frames": args.frames}
    for task in ("physics", "push", "camera", "multiview"):
        for size in (64, 128):
            results[f"{task}_{size}x{size}"] = time_task(task, size, args.clips, args.frames)
        results[f"{task}_cpu_fps_ratio_64_over_128"] = round(
            results[f"{task}_64x64"]["cpu_fps"] / results[f"{task}_128x128"]["cpu_fps"], 2)
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), time.process_time()
        generate_dataset("physics", args.clips, f"{tmp}/ds", num_frames=args.frames, height=64, width=64,
                         progress=False)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    results["generate_physics_64x64_serial"] = {"fps": round(args.clips * args.frames / seconds, 1),
                                                "cpu_fps": round(args.clips * args.frames / cpu_seconds, 1),
                                                "seconds": round(seconds, 3)}
    results["note"] = "single process; `cosmos-hf sim generate --workers N` scales across processes"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
