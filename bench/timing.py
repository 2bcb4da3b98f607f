"""Timing and machine facts shared by the benchmark scripts (run as `python bench/<script>.py`, so this folder is on
sys.path; tests/test_bench_harness.py puts it there too).

Every timed comparison in bench/ goes through `interleaved`: after one untimed warm-up call of each candidate, the
candidates run A, B, C, A, B, C, ... `repeats` times, so a change in machine load during the run hits all of them
alike and their ratios stay meaningful on a shared machine even when the absolute seconds do not. Each candidate is
summarised by `summarize` (median, min, max, interquartile range, every sample).

Every report carries `machine_header()` (CPU model and flags, cores, torch threads, load average at the start and a
`busy` flag) and, through `finish_report`, the load average at the end. A machine counts as busy when its 1-minute
load average exceeds half its cores when the benchmark starts: its absolute times are then not comparable with an
idle run's (a warning says so on stderr).
"""

import os
import platform
import statistics
import sys
import time

BUSY_LOAD_PER_CORE = 0.5
# /proc/cpuinfo flags that decide which kernels run: bf16 matmuls and convolutions are native only with
# AVX512-BF16 or AMX; elsewhere PyTorch emulates bf16 and it is slower than fp32.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")
MIN_REPEATS = 5


def cpu_model_and_flags():
    """(model name, {flag: present}) from /proc/cpuinfo ('' and all False where it cannot be read)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or platform.machine(), {flag: False for flag in CPU_FLAGS}
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return model or platform.machine(), {flag: flag in flags for flag in CPU_FLAGS}


def is_busy(load_1min: float, cores: int) -> bool:
    return load_1min > BUSY_LOAD_PER_CORE * cores


def machine_header(warn: bool = True) -> dict:
    """Facts about this machine at the start of a benchmark; warns on stderr when it is busy."""
    model, flags = cpu_model_and_flags()
    cores = os.cpu_count() or 1
    load = os.getloadavg()
    header = {"cpu_model": model, "cores": cores, "cpu_flags": flags, "python": platform.python_version(),
              "load_average_start": [round(x, 2) for x in load], "busy": is_busy(load[0], cores),
              "busy_rule": f"1-minute load average > {BUSY_LOAD_PER_CORE} x cores at the start"}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        header.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    if warn and header["busy"]:
        print(f"warning: the machine is busy (load average {load[0]:.2f} on {cores} cores): absolute times are not "
              "comparable with an idle run; ratios of interleaved candidates still are", file=sys.stderr, flush=True)
    return header


def finish_report(report: dict) -> dict:
    """Add the end-of-run load average to `report["machine"]` (created when absent) and return the report."""
    machine = report.setdefault("machine", machine_header(warn=False))
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def summarize(times) -> dict:
    """Median, min, max and interquartile range (seconds) of timed samples, and the samples themselves."""
    if not times:
        raise ValueError("summarize needs at least one timed sample")
    ordered = sorted(times)
    if len(ordered) >= 2:
        lower, _, upper = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        lower = upper = ordered[0]
    return {"median_s": round(statistics.median(ordered), 5), "min_s": round(ordered[0], 5),
            "max_s": round(ordered[-1], 5), "iqr_s": round(upper - lower, 5), "repeats": len(ordered),
            "times_s": [round(t, 5) for t in times]}


def interleaved(candidates: dict, repeats: int = MIN_REPEATS, warmup: int = 1, clock=time.perf_counter) -> dict:
    """Time each zero-argument callable in `candidates` ({name: fn}) `repeats` times, interleaved A, B, A, B, ...
    after `warmup` untimed rounds; returns {name: summarize(times)} in the candidates' order."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    if not candidates:
        raise ValueError("interleaved needs at least one candidate")
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    times = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return {name: summarize(samples) for name, samples in times.items()}


def speedup(baseline: dict, candidate: dict) -> float:
    """How many times faster `candidate` is than `baseline` (ratio of medians; > 1: faster)."""
    return round(baseline["median_s"] / candidate["median_s"], 3)


def positive_repeats(parser, repeats: int, minimum: int = MIN_REPEATS):
    """argparse check shared by the scripts: at least `minimum` interleaved repeats."""
    if repeats < minimum:
        parser.error(f"--repeats must be >= {minimum} (median and spread of interleaved runs), got {repeats}")
