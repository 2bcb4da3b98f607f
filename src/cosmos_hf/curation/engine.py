"""Executors that stream work items through a chain of stages: in-process, or a pool of Ray actors per stage.

A stage is an object with `name`, `num_cpus`, `num_gpus`, `setup()` (load models once per worker) and
`process(item: dict) -> list[dict]` (one item in, zero or more out). Items are plain JSON-able dicts; heavy data
(frames) travels as file paths, so the same stages run in one process or across a cluster.

`LocalExecutor` runs items depth-first in this process. `RayExecutor` starts `workers` actors per stage (each with
the stage's CPU/GPU request) and streams: an item finished by stage i is handed to an idle actor of stage i+1 at
once, so all stages work concurrently. `RayDataExecutor` expresses the same chain as a Ray Data pipeline (one
`map_batches` over an actor pool per stage; Ray Data's streaming executor moves blocks between stages and applies
backpressure). All call `on_result(item)` for every item leaving the last stage, in completion order, so the
pipeline's records / resume logic is the same for each. Ray is imported only by the Ray executors, so the package
works without it.
"""

from __future__ import annotations

import collections
import sys


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


class LocalExecutor:
    """Runs every stage in this process, one item at a time (setup once per stage)."""

    name = "local"

    def run(self, stages, items, on_result) -> None:
        for stage in stages:
            stage.setup()

        def push(item, depth):
            if depth == len(stages):
                on_result(item)
                return
            for out in stages[depth].process(item):
                push(out, depth + 1)

        for item in items:
            push(item, 0)


def start_ray_reaper(ray_pids) -> None:
    """Make the Ray processes this driver started (`ray_pids`: GCS, raylet, agents) and everything they spawn
    (workers, actors) end when the driver ends, however it ends.

    A driver that exits normally, or on SIGTERM / Ctrl-C, shuts its local Ray instance down itself (Ray's atexit
    hook). A SIGKILLed one (OOM killer, `kill -9`, a scheduler's hard limit) runs no code: workers then died within
    about 10 s, but Ray's dashboard and runtime-env agents lived on for about a minute. So a small watcher process
    holds the read end of a pipe from the driver; the pipe closes when the driver dies in any way, and the watcher
    then terminates (after 3 s kills) every process it has seen under `ray_pids`."""
    import subprocess
    import sys

    # This file run as a script (see the end of it): importing the cosmos_hf package would take seconds, during
    # which a driver's death would go unnoticed. A session of its own: a Ctrl-C meant for the driver's process
    # group must not end the watcher first.
    watcher = subprocess.Popen([sys.executable, __file__, "watch-ray-processes", *map(str, ray_pids)],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    _RAY_REAPERS.append(watcher)  # holds the pipe's write end open; only the driver's exit closes it


_RAY_REAPERS: list = []


def watch_ray_processes(ray_pids, poll_seconds: float = 0.5, grace_seconds: float = 3.0) -> None:
    """The watcher of `start_ray_reaper`: until its stdin reaches end-of-file, note every descendant of `ray_pids`
    (workers are started and replaced while the run goes on); then end all of them that still run.
    psutil compares each process's start time, so a reused pid is never signalled."""
    import os
    import select
    import sys

    import psutil

    known = {}
    for pid in ray_pids:
        try:
            known[pid] = psutil.Process(pid)
        except psutil.Error:
            pass
    stdin = sys.stdin.fileno()
    while True:
        for process in list(known.values()):
            try:
                for child in process.children(recursive=True):
                    known.setdefault(child.pid, child)
            except psutil.Error:
                pass
        readable, _, _ = select.select([stdin], [], [], poll_seconds)
        if readable and not os.read(stdin, 4096):
            break  # the driver is gone
    alive = [process for process in known.values() if process.is_running()]
    for process in alive:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(alive, timeout=grace_seconds)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass


class _StageActor:
    """Holds one stage instance inside a Ray worker."""

    def __init__(self, stage):
        self.stage = stage
        self.stage.setup()

    def process(self, item):
        return self.stage.process(item)

    def ready(self):
        return True


class RayExecutor:
    """A pool of `workers` Ray actors per stage with streaming between stages.

    Args:
        address: None starts (or reuses) a local Ray instance with `num_cpus` CPUs; "auto" or "ray://host:port"
            joins an existing cluster.
        workers: actors per stage (an int for all stages, or {stage name: count}).
        num_cpus: CPUs for a local instance (default: all of this machine's).
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers=1, num_cpus: int | None = None):
        self.address, self.workers, self.num_cpus = address, workers, num_cpus
        self.last_setup_seconds = None  # time the last run waited for its actors to start (imports, models)

    def _init(self):
        import ray

        if not ray.is_initialized():
            import psutil

            kwargs = {"address": self.address} if self.address else {"num_cpus": self.num_cpus}
            before = {child.pid for child in psutil.Process().children()}
            ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False, **kwargs)
            started = [child.pid for child in psutil.Process().children() if child.pid not in before]
            if started:  # a local instance this process started (joining a cluster starts none)
                start_ray_reaper(started)
        return ray

    def _pool_sizes(self, ray, stages):
        """Actors per stage and the factor that scales every stage's CPU request to fit the cluster."""
        counts = []
        for stage in stages:
            count = self.workers.get(stage.name, 1) if isinstance(self.workers, dict) else int(self.workers)
            if count < 1:
                raise ValueError(f"workers for stage {stage.name} must be >= 1, got {count}")
            counts.append(count)
        # Every actor holds its CPU request for the whole run; if the cluster has fewer CPUs than all pools ask
        # for, the later stages would never start (a deadlock), so requests are scaled down to fit.
        requested = sum(stage.num_cpus * n for stage, n in zip(stages, counts))
        available = float(ray.cluster_resources().get("CPU", 0.0))
        return counts, (min(1.0, available / requested) if requested and available else 1.0)

    def run(self, stages, items, on_result) -> None:
        ray = self._init()
        actor_class = ray.remote(_StageActor)
        counts, cpu_scale = self._pool_sizes(ray, stages)
        pools, idle = [], []
        for stage, count in zip(stages, counts):
            options = {"num_cpus": stage.num_cpus * cpu_scale, "num_gpus": stage.num_gpus}
            actors = [actor_class.options(**options).remote(stage) for _ in range(count)]
            pools.append(actors)
            idle.append(collections.deque(actors))
        import time

        start = time.perf_counter()
        ray.get([actor.ready.remote() for actors in pools for actor in actors])  # imports + model loading
        self.last_setup_seconds = time.perf_counter() - start
        queues = [collections.deque() for _ in stages]
        in_flight = {}  # object ref -> (stage index, actor)
        source = iter(items)
        exhausted = False
        try:
            while True:
                # Feed stage 0 only as fast as it can work, so the input list streams instead of piling up.
                while not exhausted and len(queues[0]) < len(pools[0]):
                    try:
                        queues[0].append(next(source))
                    except StopIteration:
                        exhausted = True
                for i in range(len(stages)):
                    while queues[i] and idle[i]:
                        actor = idle[i].popleft()
                        in_flight[actor.process.remote(queues[i].popleft())] = (i, actor)
                if not in_flight:
                    if exhausted and not any(queues):
                        break
                    continue
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    i, actor = in_flight.pop(ref)
                    idle[i].append(actor)
                    outputs = ray.get(ref)
                    if i + 1 == len(stages):
                        for out in outputs:
                            on_result(out)
                    else:
                        queues[i + 1].extend(outputs)
        finally:
            for actors in pools:
                for actor in actors:
                    ray.kill(actor)


class _StageBatchUDF:
    """A stage as a Ray Data callable class: built (and `setup()`) once per actor, then called on batches whose
    single column "item" holds JSON-encoded work items (the items' keys differ between stages and videos, so they
    travel as text rather than as typed columns)."""

    def __init__(self, stage):
        self.stage = stage
        self.stage.setup()

    def __call__(self, batch):
        import json

        import numpy as np

        outputs = [json.dumps(out) for text in batch["item"] for out in self.stage.process(json.loads(text))]
        return {"item": np.array(outputs, dtype=object)}


class RayDataExecutor(RayExecutor):
    """The stages as a Ray Data pipeline: `from_items` -> one `map_batches` per stage on a fixed actor pool
    (`ActorPoolStrategy(size=workers)`, the stage's CPU/GPU request) -> results streamed back with `iter_rows`.

    Each input video is its own block, so a video's clips flow to the next stage as soon as its split is done and
    finished items reach `on_result` (which writes the per-video records) while other videos are still in flight.
    Same arguments as `RayExecutor`; `batch_size` items per UDF call (default 1: one video or clip).
    """

    name = "ray-data"

    def __init__(self, address: str | None = None, workers=1, num_cpus: int | None = None, batch_size: int = 1):
        super().__init__(address=address, workers=workers, num_cpus=num_cpus)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    def run(self, stages, items, on_result) -> None:
        import json

        self._init()
        import ray.data

        items = list(items)
        if not items:
            return
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        counts, cpu_scale = self._pool_sizes(ray, stages)
        dataset = ray.data.from_items([{"item": json.dumps(item)} for item in items], override_num_blocks=len(items))
        for stage, count in zip(stages, counts):
            dataset = dataset.map_batches(
                _StageBatchUDF, fn_constructor_args=(stage,), compute=ray.data.ActorPoolStrategy(size=count),
                num_cpus=stage.num_cpus * cpu_scale, num_gpus=stage.num_gpus or None, batch_size=self.batch_size,
                batch_format="numpy")
        for row in dataset.iter_rows():
            on_result(json.loads(row["item"]))


def make_executor(name: str = "auto", address: str | None = None, workers=1, num_cpus: int | None = None):
    """'auto' (Ray when installed, else local), 'ray', 'ray-data' or 'local'. `address` implies Ray."""
    if name == "auto":
        name = "ray" if (address or ray_available()) else "local"
    if name == "local":
        if address:
            raise ValueError("--address needs the ray executor (pip install ray)")
        return LocalExecutor()
    if name in ("ray", "ray-data"):
        if not ray_available():
            raise ValueError(f"the {name} executor needs Ray installed (pip install 'ray[data]'); or use --executor "
                             "local")
        executor_class = RayExecutor if name == "ray" else RayDataExecutor
        return executor_class(address=address, workers=workers, num_cpus=num_cpus)
    raise ValueError(f"unknown executor {name!r}; choose auto, ray, ray-data or local")


if __name__ == "__main__" and sys.argv[1:2] == ["watch-ray-processes"]:  # the watcher of start_ray_reaper
    watch_ray_processes([int(pid) for pid in sys.argv[2:]])
