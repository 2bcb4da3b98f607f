"""End-to-end curation: outputs, rejection reasons, corrupt inputs, idempotence, kill-and-resume, Ray parity, CLI."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from cosmos_hf.curation import CurationConfig, LocalExecutor, run_curation
from cosmos_hf.curation.shotbench import make_shot_video

# Short synthetic shots (2 s at 24 fps): keep clips of >= 1 s, crop 0.25 s at cuts.
CONFIG = {"min_clip_seconds": 1.0, "crop_seconds": 0.25}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A physics-world folder (captions in metas/), a 3-shot video, an exact copy, a static video, a subtitled
    video, a corrupt file and an empty file."""
    from cosmos_hf.data import write_video
    from cosmos_hf.sim import simulate
    from cosmos_hf.sim.dataset import generate_dataset

    root = tmp_path_factory.mktemp("curation_inputs")
    generate_dataset("physics", 2, root / "sim", num_frames=48, height=64, width=64, seed=3,
                     scenes=["free_fall", "dominoes"], progress=False)
    video, _, _ = make_shot_video(3, 48, 64, seed=1)
    write_video(root / "raw" / "multi.mp4", video, 24)
    shutil.copy(root / "sim" / "videos" / "000000.mp4", root / "raw" / "copy_of_sim0.mp4")
    still = simulate("stable_stack", seed=5, num_frames=1, height=64, width=64).video
    write_video(root / "raw" / "static.mp4", np.repeat(still, 48, 0), 24)
    text = simulate("free_fall", seed=7, num_frames=48, height=64, width=64).video.copy()
    for frame in text:
        cv2.putText(frame, "Hello World", (4, 58), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1)
    write_video(root / "raw" / "subtitled.mp4", text, 24)
    (root / "raw" / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 255, 5000, np.uint8).tobytes())
    (root / "raw" / "empty.mp4").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def curated(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("curated") / "out"
    summary = run_curation(inputs, out, CurationConfig(**CONFIG), executor=LocalExecutor(), progress=False)
    return out, summary


def test_summary_counts_every_stage_and_reason(curated):
    out, summary = curated
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == 8 and summary["inputs_finished"] == 8 and summary["inputs_pending"] == []
    failed = {Path(f["video"]).name: f["error"] for f in summary["inputs_failed"]}
    assert set(failed) == {"corrupt.mp4", "empty.mp4"}
    assert "0 bytes" in failed["empty.mp4"] and "corrupt" in failed["corrupt.mp4"]
    stages = summary["stages"]
    # 2 sim clips + copy + 3 shots + static + subtitled = 8 clips; the third shot (a settled stack) is static.
    assert stages["split"] == {"clips": 8, "transitions": 2}
    assert summary["rejections"] == {"dedup:near_duplicate": 1, "motion:low_motion": 2,
                                     "text_overlay:text_overlay": 1}
    assert stages["dedup"]["removed"] == 1 and summary["clips_written"] == 4


def test_outputs_layout_datasets_and_webdataset(curated):
    import datasets

    from cosmos_hf.data import load_video_caption_folder, read_video

    out, summary = curated
    video_ids = {row["input"]: row["video_id"] for row in summary["videos"]}
    multi = video_ids["raw/multi.mp4"]
    sim0, sim1 = video_ids["sim/videos/000000.mp4"], video_ids["sim/videos/000001.mp4"]
    ids = sorted(p.stem for p in (out / "videos").glob("*.mp4"))
    assert ids == sorted(p.stem for p in (out / "metas").glob("*.txt"))
    assert ids == sorted([f"{multi}_0000", f"{multi}_0001", f"{sim0}_0000", f"{sim1}_0000"])
    assert multi.startswith("raw__multi-") and sim0.startswith("sim__videos__000000-")
    # The duplicate pair kept the copy that carries the physics world's caption.
    removed = [json.loads(line) for line in (out / "dedup_removed.jsonl").read_text().splitlines()]
    assert removed[0]["id"] == f"{video_ids['raw/copy_of_sim0.mp4']}_0000"
    assert removed[0]["duplicate_of"] == f"{sim0}_0000"
    caption = (out / "metas" / f"{sim0}_0000.txt").read_text().strip()
    assert caption.startswith("A ") and len(caption) > 20
    frames, fps = read_video(out / "videos" / f"{multi}_0001.mp4")
    # Shot 2 of multi.mp4 is frames 48..95, cropped 6 frames (0.25 s) at both cuts.
    assert frames.shape == (36, 64, 64, 3) and fps == 24.0
    rows = datasets.load_dataset(str(out), split="train")
    assert sorted(rows["id"]) == ids and all(r["video"].startswith("videos/") for r in rows)
    folder = load_video_caption_folder(out)
    assert len(folder) == 4
    members = []
    for shard in summary["stages"]["shard"]["shards"]:
        with tarfile.open(out / shard) as archive:
            members += archive.getnames()
    assert sorted(m for m in members if m.endswith(".mp4")) == [f"{i}.mp4" for i in ids]
    # 64x64 clips: below 144p, square; the multi.mp4 shots are 1.5 s, the sim clips 2 s.
    assert summary["stages"]["shard"]["buckets"] == {"lt144p_1x1_2-5s": 2, "lt144p_1x1_lt2s": 2}


def test_rerun_is_idempotent(curated, inputs):
    out, summary = curated
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and ".work" not in p.parts}
    again = run_curation(inputs, out, CurationConfig(**CONFIG), executor=LocalExecutor(), progress=False)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and ".work" not in p.parts}
    assert again == summary and before == after


def test_changed_config_is_refused(curated, inputs):
    out, _ = curated
    with pytest.raises(ValueError, match="different configuration"):
        run_curation(inputs, out, CurationConfig(min_clip_seconds=1.5), executor=LocalExecutor(), progress=False)



@pytest.mark.parametrize("key, value, message", [
    # NaN passed every range check: min_motion=nan kept every clip (no score is < nan) ...
    ("min_motion", float("nan"), "min_motion must be a finite number"),
    # ... and crop_seconds=nan / max_clip_seconds=inf failed every input with "cannot convert float NaN to integer"
    ("crop_seconds", float("nan"), "crop_seconds must be a finite number"),
    ("max_clip_seconds", float("inf"), "max_clip_seconds must be a finite number"),
    ("min_clip_seconds", "2", "min_clip_seconds must be a finite number"),
    ("min_motion", -0.5, "min_motion must be >= 0"),
    # 0 meant "the default" (about sqrt(N) clusters), -3 one cluster: both silently
    ("dedup_clusters", 0, "dedup_clusters must be an integer >= 1"),
    ("dedup_clusters", -3, "dedup_clusters must be an integer >= 1"),
    # a span of 1 frame can never find a dissolve (the long-range score is the frame score)
    ("dissolve_span", 1, "dissolve_span must be 0 \\(off\\) or >= 2"),
])
def test_config_refuses_non_finite_and_no_op_values(key, value, message):
    with pytest.raises(ValueError, match=message):
        CurationConfig(**{key: value}).validate()
    CurationConfig(min_motion=0.0, dedup_clusters=4, dissolve_span=2).validate()  # the edges of the ranges pass

def test_killed_run_resumes_without_loss_or_duplicates(curated, inputs, tmp_path):
    out = tmp_path / "resumed"
    code = ("import sys; from cosmos_hf.curation import *; "
            "run_curation(sys.argv[1], sys.argv[2], CurationConfig(min_clip_seconds=1.0, crop_seconds=0.25), "
            "executor=LocalExecutor(), progress=False)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(inputs), str(out)], env=env)
    records = out / ".work" / "records"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(records.glob("[!.]*.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = len(list(records.glob("[!.]*.json")))  # finished records, not a temp file cut off mid-write
    assert 1 <= finished < 8, f"the kill should land mid-run ({finished} of 8 videos finished)"
    summary = run_curation(inputs, out, CurationConfig(**CONFIG), executor=LocalExecutor(), progress=False)
    reference_out, reference = curated
    assert summary == reference
    assert (out / "metadata.jsonl").read_text() == (reference_out / "metadata.jsonl").read_text()
    assert sorted(p.name for p in (out / "videos").iterdir()) == sorted(p.name for p in
                                                                        (reference_out / "videos").iterdir())


def test_temp_files_of_a_kill_mid_write_are_ignored_and_removed(curated, inputs, tmp_path):
    """A kill while a record or clip is being written leaves atomic_path's hidden temp file (possibly empty): the
    next run must neither read it as a finished video nor keep it."""
    reference_out, reference = curated
    out = tmp_path / "out"
    shutil.copytree(reference_out, out)
    records = out / ".work" / "records"
    victim = sorted(records.glob("*.json"))[0]
    victim.unlink()  # that video is unfinished again ...
    stale = [records / f".{victim.stem}.k1ll3d.tmp.json", out / ".work" / "clips" / ".c.k1ll3d.tmp.mp4"]
    for path in stale:  # ... and its record was cut off mid-write
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    summary = run_curation(inputs, out, CurationConfig(**CONFIG), executor=LocalExecutor(), progress=False)
    assert summary == reference and victim.is_file()
    assert not any(path.exists() for path in stale)


def test_cli_curate_reports_and_exits(inputs, tmp_path, capsys):
    from cosmos_hf.cli import main

    out = tmp_path / "cli"
    # Clips of the good inputs are written, but two inputs failed: exit 1 naming them.
    assert main(["curate", "--input", str(inputs / "raw"), "--output", str(out), "--executor", "local",
                 "--min-clip-seconds", "1", "--crop-seconds", "0.25", "--no-progress"]) == 1
    printed = capsys.readouterr().out
    assert "could not decode" in printed and "corrupt.mp4" in printed and "empty.mp4" in printed
    assert "2 input(s) failed" in printed and json.loads((out / "summary.json").read_text())["clips_written"] > 0
    # Only undecodable inputs: exit 1 with the reason, never a silent "0 clips".
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.mp4").write_bytes(b"not a video")
    assert main(["curate", "--input", str(bad), "--output", str(tmp_path / "bad_out"), "--executor", "local",
                 "--no-progress"]) == 1
    printed = capsys.readouterr().out
    assert "0 clips written" in printed and "broken.mp4" in printed
    assert main(["curate", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")]) == 2
    assert main(["curate", "--input", str(bad), "--output", str(tmp_path / "o2"), "--executor", "local",
                 "--dedup-eps", "2"]) == 2


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance (2 CPUs) for the Ray tests of this module (starting Ray is slow)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


def test_ray_executor_matches_local(curated, inputs, tmp_path, ray_session):
    from cosmos_hf.curation import RayExecutor

    out = tmp_path / "ray"
    summary = run_curation(inputs, out, CurationConfig(**CONFIG), executor=RayExecutor(workers=1, num_cpus=2),
                           progress=False)
    reference_out, reference = curated
    assert summary["executor"] == "ray"
    assert {**summary, "executor": "local"} == reference
    assert (out / "metadata.jsonl").read_text() == (reference_out / "metadata.jsonl").read_text()


@pytest.mark.slow
def test_ray_data_executor_matches_local(inputs, tmp_path, ray_session):
    """The Ray Data map_batches pipeline gives the local executor's records, outputs and summary (2 videos: a
    3-shot video and one that cannot be decoded), and a rerun resumes from its records."""
    from cosmos_hf.curation import RayDataExecutor, make_executor

    two = tmp_path / "two"
    two.mkdir()
    shutil.copy(inputs / "raw" / "multi.mp4", two / "multi.mp4")
    shutil.copy(inputs / "raw" / "corrupt.mp4", two / "corrupt.mp4")
    local = run_curation(two, tmp_path / "local", CurationConfig(**CONFIG), executor=LocalExecutor(), progress=False)
    executor = make_executor("ray-data", workers=1, num_cpus=2)
    assert isinstance(executor, RayDataExecutor)
    summary = run_curation(two, tmp_path / "ray_data", CurationConfig(**CONFIG), executor=executor, progress=False)
    assert summary["executor"] == "ray-data" and {**summary, "executor": "local"} == local
    assert summary["clips_written"] == 2 and len(summary["inputs_failed"]) == 1
    for name in ("metadata.jsonl", "dedup_kept.jsonl"):
        assert (tmp_path / "ray_data" / name).read_text() == (tmp_path / "local" / name).read_text()
    def records(name):  # the per-video manifest, with the output folder (inside clip paths) factored out
        folder = tmp_path / name
        return [p.read_text().replace(str(folder), "OUT") for p in sorted((folder / ".work/records").glob("*.json"))]

    assert len(records("ray_data")) == 2 and records("ray_data") == records("local")
    # Every video has a record, so a rerun has nothing to send through Ray and rebuilds the same outputs.
    assert run_curation(two, tmp_path / "ray_data", CurationConfig(**CONFIG), executor=executor,
                        progress=False) == summary


def test_without_ray_the_default_executor_is_local(monkeypatch):
    import builtins

    from cosmos_hf.curation import make_executor, ray_available

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("ray is not installed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    assert not ray_available()
    assert make_executor("auto").name == "local"
    with pytest.raises(ValueError, match="needs Ray installed"):
        make_executor("ray")
    with pytest.raises(ValueError, match="ray-data executor needs Ray installed"):
        make_executor("ray-data")
    with pytest.raises(ValueError, match="--address needs the ray executor"):
        make_executor("local", address="auto")


def test_encoding_the_same_frames_gives_the_same_bytes(tmp_path):
    """Resume equality needs a clip re-encoded by a restarted run to equal the uninterrupted run's: x264's
    macroblock-tree rate control gave 3-4 different files in 8-16 encodes of this clip within one process."""
    from cosmos_hf.data import read_video, write_video

    frames = np.random.default_rng(0).integers(0, 256, (20, 50, 70, 3), dtype=np.uint8)
    encodings = set()
    for k in range(8):
        write_video(tmp_path / f"{k}.mp4", frames, 24, crf=23)
        read_video(tmp_path / f"{k}.mp4")
        encodings.add((tmp_path / f"{k}.mp4").read_bytes())
    assert len(encodings) == 1
