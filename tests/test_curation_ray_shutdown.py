"""No Ray process outlives a killed curation driver (SIGKILL runs no cleanup code in the driver itself)."""

import os
import signal
import subprocess
import sys
import time

import pytest

psutil = pytest.importorskip("psutil")

# A stand-in for the processes `ray.init` starts: one that spawns a worker of its own, both running until killed.
FAKE_RAY = ("import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)")
DRIVER = f"""
import subprocess, sys, time
from cosmos_hf.curation.engine import start_ray_reaper
ray_like = subprocess.Popen([sys.executable, "-c", {FAKE_RAY!r}])
start_ray_reaper([ray_like.pid])
print(ray_like.pid, flush=True)
time.sleep(600)
"""


def _wait_until_gone(processes, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def _descendants_once_present(parent, count, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        children = parent.children(recursive=True)
        if len(children) >= count:
            return children
        time.sleep(0.05)
    raise AssertionError(f"expected {count} processes under pid {parent.pid}, found {parent.children(True)}")


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_processes_started_for_ray_end_with_a_killed_driver(signal_name):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        ray_like = psutil.Process(int(driver.stdout.readline()))
        worker = _descendants_once_present(ray_like, 1)[0]
        watcher = [p for p in psutil.Process(driver.pid).children() if p.pid != ray_like.pid]
        time.sleep(1.0)  # two of the watcher's polls: it has seen the worker
        driver.send_signal(getattr(signal, signal_name))
        driver.wait(30)
        assert _wait_until_gone([ray_like, worker, *watcher], 10) == []
    finally:
        for process in psutil.Process(driver.pid).children(recursive=True) if driver.poll() is None else []:
            process.kill()
        driver.kill()


@pytest.mark.slow
def test_ray_curation_driver_killed_with_sigkill_leaves_no_ray_process(tmp_path):
    """The real case: `cosmos-hf curate --executor ray` SIGKILLed while its actors work. Without the reaper, Ray's
    dashboard and runtime-env agents lived ~60 s after the driver; now everything ends within seconds."""
    pytest.importorskip("ray")
    from cosmos_hf.data import write_video
    from cosmos_hf.sim import simulate

    inputs = tmp_path / "in"
    for k in range(6):
        write_video(inputs / f"{k}.mp4", simulate("free_fall", seed=k, num_frames=48, height=64, width=64).video, 24)
    code = ("import sys; from cosmos_hf.cli import main; sys.exit(main(['curate', '--input', sys.argv[1], "
            "'--output', sys.argv[2], '--executor', 'ray', '--num-cpus', '2', '--min-clip-seconds', '1', "
            "'--no-progress']))")
    driver = subprocess.Popen([sys.executable, "-c", code, str(inputs), str(tmp_path / "out")],
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    parent, seen = psutil.Process(driver.pid), {}
    try:
        deadline = time.time() + 240
        while time.time() < deadline and driver.poll() is None:
            for child in parent.children(recursive=True):
                try:
                    seen[child.pid] = (child, " ".join(child.cmdline()))  # workers retitle themselves
                except psutil.Error:
                    pass
            if any("_StageActor" in name for _, name in seen.values()):
                break
            time.sleep(0.2)
        assert any("_StageActor" in name for _, name in seen.values()), "the stage actors never started"
        time.sleep(1.0)
        for child in parent.children(recursive=True):
            seen.setdefault(child.pid, (child, child.name()))
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        left = _wait_until_gone([process for process, _ in seen.values()], 20)
        assert left == [], f"still running after the driver was killed: {[p.name() for p in left]}"
    finally:
        driver.kill()
        for process, _ in seen.values():
            if process.is_running():
                process.kill()
