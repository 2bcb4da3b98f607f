"""Calibration of the 3D-consistency and camera-control metrics on videos with exact cameras; prints JSON.

What a perfect generator would score is the metric's floor. Two sources of exact cameras:
- `synthetic`: the ray-cast textured room of `cosmos_hf.evaluation.synthetic` (an orbit arc), in order and with
  its frames shuffled (a video that breaks the requested path);
- `sim`: the built-in world's static scenes filmed along orbit / dolly / pan paths (`cosmos_hf.sim.simulate_camera`).
Also reports the CPU seconds each metric takes per frame on this machine (relative costs, not a timed test; PSNR and
SSIM interleaved, median of `--repeats`).

    OMP_NUM_THREADS=1 python bench/evaluation.py [--size 256] [--frames 16]
"""

import argparse
import json
import sys
import time

import numpy as np
from timing import finish_report, interleaved, machine_header, positive_repeats


def _camera_row(video, poses, intrinsics):
    from cosmos_hf.evaluation.camera import camera_control_errors
    from cosmos_hf.evaluation.geometry import geometric_consistency

    start = time.process_time()
    consistency = geometric_consistency(video, intrinsics)
    camera = camera_control_errors(video, poses, intrinsics)

    def rounded(value, digits):  # a metric is None where no pose could be recovered (e.g. too few matches)
        return None if value is None else round(value, digits)

    return {
        "sampson_error_px": rounded(consistency["sampson_error_px"], 4),
        "pose_success_pairs": rounded(consistency["pose_success_rate"], 3),
        "video_pose_success": consistency["video_pose_success"],
        "mean_matches": rounded(consistency["mean_matches"], 1),
        "rotation_error_deg": rounded(camera["rotation_error_deg"], 3),
        "translation_error": rounded(camera["translation_error"], 4),
        "cpu_s": round(time.process_time() - start, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="sim clip height = width")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved runs of the per-frame metric timings")
    args = parser.parse_args()
    positive_repeats(parser, args.repeats)
    from cosmos_hf.evaluation.synthetic import intrinsics_from_fov, orbit_path, render_room
    from cosmos_hf.evaluation.video_metrics import psnr, ssim

    out = {"benchmark": "evaluation", "command": " ".join(["bench/evaluation.py", *sys.argv[1:]]),
           "machine": machine_header(), "synthetic": {}, "sim": {}, "cpu_s_per_frame": {}}
    height, width = 240, 320
    K = intrinsics_from_fov(height, width)
    poses = orbit_path(8, -20, 20, radius=2.0)
    video = render_room(poses, K, height, width)
    out["synthetic"]["room_orbit_240x320"] = _camera_row(video, poses, K)
    out["synthetic"]["room_orbit_shuffled"] = _camera_row(video[[0, 5, 2, 7, 1, 6, 3, 4]], poses, K)

    try:
        from cosmos_hf.sim import TRAJECTORIES, simulate_camera
    except ImportError as err:
        out["sim"] = f"cosmos_hf.sim unavailable: {err}"
    else:
        for trajectory in TRAJECTORIES:
            record = simulate_camera(
                seed=0, num_frames=args.frames, height=args.size, width=args.size, trajectory=trajectory
            )
            out["sim"][f"{trajectory}_{args.size}"] = _camera_row(record.video, record.cam_to_world, record.intrinsics)

    frames = np.random.default_rng(0).integers(0, 256, (16, 256, 256, 3), dtype=np.uint8)
    timings = interleaved({"psnr_256": lambda: psnr(frames, frames[::-1]),
                           "ssim_256": lambda: ssim(frames, frames[::-1])},
                          repeats=args.repeats, clock=time.process_time)  # CPU seconds: robust on a shared machine
    for name, timed in timings.items():
        out["cpu_s_per_frame"][name] = round(timed["median_s"] / len(frames), 5)
    print(json.dumps(finish_report(out), indent=2))


if __name__ == "__main__":
    main()
