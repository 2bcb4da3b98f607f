"""Where CV8x8x8's encode / decode time goes, ours against diffusers' AutoencoderKLCosmos, and the per-op ceiling.

    .venv/bin/python bench/profile_tokenizers.py [--quick] [--size 128] [--frames 9] [--threads 1] [--repeats 5]

For each model (ours fp32, diffusers fp32, ours bf16) and step (encode, decode): torch.profiler's self CPU time,
the median of `--repeats` profiled calls (all six interleaved, after a warm-up), in total and per op category
(convolution, layout copies, normalisation, attention, elementwise, other), plus the ten most expensive ops. The ceiling: the step's convolution and matmul FLOPs
(torch.utils.flop_counter) divided by this machine's GEMM speed (median of `--repeats` interleaved 2048x2048
matmuls, fp32 and bf16) is the time the step would take if every convolution ran at GEMM speed and nothing else cost
anything; `ceiling_speedup_vs_diffusers_fp32` is diffusers' measured time over that, the most any exact fp32
rewrite could gain. Profiled on one thread by default (what the ratios mean does not depend on it). Prints JSON.
"""

import argparse
import json
import statistics
import sys

import torch
from timing import finish_report, interleaved, machine_header, positive_repeats
from video_tokenizers import same_weight_cv8x8x8

CATEGORIES = {
    "convolution": ("conv", "mkldnn_convolution", "slow_conv", "addmm", "mm"),
    "layout_copies": ("copy_", "clone", "contiguous", "cat", "pad", "constant_pad", "replication_pad", "repeat",
                      "index", "fill_", "to_copy", "_to_copy", "empty_strided", "stack"),
    "normalisation": ("group_norm", "native_group_norm", "layer_norm"),
    "attention": ("bmm", "baddbmm", "softmax", "_softmax", "scaled_dot_product", "flash_attention", "matmul"),
    "elementwise": ("add", "mul", "silu", "sub", "div", "where", "mean", "avg_pool", "sigmoid", "tanh", "clamp"),
}


def category(op_name: str) -> str:
    name = op_name.removeprefix("aten::")
    for group, keys in CATEGORIES.items():
        if any(name == key or name.startswith(key) or (len(key) > 4 and key in name) for key in keys):
            return group
    return "other"


def gemm_gflops(repeats, n=2048):
    """GFLOP/s of an n x n matmul in fp32 and bf16 (medians, interleaved)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a.bfloat16(), b.bfloat16()
    timings = interleaved({"fp32": lambda: a @ b, "bf16": lambda: a16 @ b16}, repeats=repeats)
    return {dtype: 2 * n**3 / timing["median_s"] / 1e9 for dtype, timing in timings.items()}


def count_flops(fn):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def profile_once(fn):
    """{op: self CPU seconds, calls} of one call under torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {event.key: (event.self_cpu_time_total / 1e6, event.count) for event in prof.key_averages()}


def profile_interleaved(steps: dict, repeats: int) -> dict:
    """Profile every step of `steps` ({name: fn}) once per repeat, interleaved like the timings, after a warm-up;
    per step: the median total, the median per category and the ten ops with the largest median self time."""
    for fn in steps.values():
        fn()  # warm-up (oneDNN primitive caches, allocator; our weights become channels-last)
    samples = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            samples[name].append(profile_once(fn))
    result = {}
    for name, runs in samples.items():
        ops = {key for run in runs for key in run}
        op_median = {key: statistics.median(run.get(key, (0.0, 0))[0] for run in runs) for key in ops}
        calls = {key: max(run.get(key, (0.0, 0))[1] for run in runs) for key in ops}
        totals = [sum(seconds for seconds, _ in run.values()) for run in runs]
        by_category = {}
        for run in runs:
            for key, (seconds, _) in run.items():
                by_category.setdefault(category(key), [0.0] * len(runs))
        for index, run in enumerate(runs):
            for key, (seconds, _) in run.items():
                by_category[category(key)][index] += seconds
        top = sorted(op_median, key=lambda key: -op_median[key])[:10]
        result[name] = {
            "self_cpu_s": round(statistics.median(totals), 4),
            "self_cpu_s_range": [round(min(totals), 4), round(max(totals), 4)],
            "by_category_s": {k: round(statistics.median(v), 4)
                              for k, v in sorted(by_category.items(), key=lambda kv: -statistics.median(kv[1]))},
            "top_ops": [{"op": key, "self_cpu_s": round(op_median[key], 4), "calls": calls[key]} for key in top],
        }
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="9x64x64 (what `make bench` runs)")
    parser.add_argument("--size", type=int, default=None, help="clip height = width (default 128, --quick 64)")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved GEMM timings for the ceiling (>= 5)")
    args = parser.parse_args()
    positive_repeats(parser, args.repeats)
    args.size = args.size or (64 if args.quick else 128)
    torch.set_num_threads(args.threads)


    report = {"benchmark": "profile_tokenizers", "command": " ".join(["bench/profile_tokenizers.py", *sys.argv[1:]]),
              "machine": machine_header(), "input": f"1x3x{args.frames}x{args.size}x{args.size}",
              "statistic": "torch.profiler self CPU time: median of --repeats calls, models and steps interleaved"}
    torch.manual_seed(0)
    video = torch.rand(1, 3, args.frames, args.size, args.size) * 2 - 1
    ours, plain, ours_bf16 = same_weight_cv8x8x8()
    models = {"ours_fp32": (ours, torch.float32), "diffusers_fp32": (plain, torch.float32),
              "ours_bf16": (ours_bf16, torch.bfloat16)}
    gemm = gemm_gflops(args.repeats)
    report["gemm_gflops"] = {k: round(v, 1) for k, v in gemm.items()}
    with torch.no_grad():
        latent = ours.encode(video).latent_dist.mode()
        steps = {}
        for name, (model, dtype) in models.items():
            steps[f"{name}/encode"] = lambda model=model, dtype=dtype: model.encode(video.to(dtype))
            steps[f"{name}/decode"] = lambda model=model, dtype=dtype: model.decode(latent.to(dtype))
        flops = {name: count_flops(fn) for name, fn in steps.items()}
        measured = profile_interleaved(steps, args.repeats)
    profiles = {}
    for key, row in measured.items():
        name, step = key.split("/")
        profiles.setdefault(name, {})[step] = {**row, "flops": flops[key]}
    for step in ("encode", "decode"):
        flops = profiles["diffusers_fp32"][step]["flops"]
        fp32_floor = flops / (gemm["fp32"] * 1e9)
        bf16_floor = flops / (gemm["bf16"] * 1e9)
        diffusers_s = profiles["diffusers_fp32"][step]["self_cpu_s"]
        profiles.setdefault("ceiling", {})[step] = {
            "gflops": round(flops / 1e9, 2), "fp32_gemm_floor_s": round(fp32_floor, 4),
            "bf16_gemm_floor_s": round(bf16_floor, 4),
            "ceiling_speedup_vs_diffusers_fp32": round(diffusers_s / fp32_floor, 2),
            "bf16_ceiling_speedup_vs_diffusers_fp32": round(diffusers_s / bf16_floor, 2),
            "ours_fp32_speedup_vs_diffusers_fp32": round(diffusers_s / profiles["ours_fp32"][step]["self_cpu_s"], 2),
            "ours_bf16_speedup_vs_diffusers_fp32": round(diffusers_s / profiles["ours_bf16"][step]["self_cpu_s"], 2),
        }
    report["profiles"] = profiles
    print(json.dumps(finish_report(report), indent=2))


if __name__ == "__main__":
    main()
