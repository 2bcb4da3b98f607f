"""Wall-clock timing shared by the benchmark scripts (run as `python bench/<script>.py`, so this folder is on
sys.path)."""

import time


def best_of(fn, repeats: int, warmup: bool = False) -> float:
    """Fastest of `repeats` calls of `fn`, in seconds; `warmup` runs it once first, untimed (allocator and oneDNN
    primitive caches)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
