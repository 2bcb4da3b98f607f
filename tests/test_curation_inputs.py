"""Curation never loses an input: unique ids for colliding names, every input in summary.json with its outcome,
skipped files and folders reported, failures of one clip kept to that input, a non-zero exit when any input is lost."""

import json
import os
import shutil
from pathlib import Path

import pytest

from cosmos_hf.curation import CurationConfig, LocalExecutor, discover_inputs, run_curation
from cosmos_hf.curation.pipeline import video_id_for

# The motion filter only: these tests are about bookkeeping, not about what the content filters decide.
CONFIG = {"min_clip_seconds": 1.0, "crop_seconds": 0.25, "filters": ["motion"]}

# Names that one cleaning rule maps to the same string: a space vs an underscore, the same stem with two
# containers, and two non-ASCII names (every character replaced).
COLLIDING_NAMES = ["a b.mp4", "a_b.mp4", "clip.mp4", "clip.avi", "日本.mp4", "中国.mp4"]


@pytest.fixture(scope="module")
def distinct_clips(tmp_path_factory):
    """Six different 2-second physics-world videos (different scenes and seeds: no near-duplicates, all moving)."""
    from cosmos_hf.data import write_video
    from cosmos_hf.sim import simulate

    folder = tmp_path_factory.mktemp("distinct")
    paths = []
    for k, scene in enumerate(["free_fall", "dominoes", "free_fall", "dominoes", "free_fall", "dominoes"]):
        video = simulate(scene, seed=11 + k, num_frames=48, height=64, width=64).video
        paths.append(folder / f"{k}.mp4")
        write_video(paths[-1], video, 24)
    return paths


def _input_folder(root: Path, clips, names) -> Path:
    root.mkdir()
    for name, clip in zip(names, clips):
        shutil.copy(clip, root / name)  # an mp4 stream named .avi decodes by content, like any mislabelled file
    return root


def test_video_ids_are_unique_per_input_path_and_stable(tmp_path):
    ids = [video_id_for(tmp_path / name, tmp_path) for name in COLLIDING_NAMES]
    assert len(set(ids)) == len(ids)
    assert ids == [video_id_for(tmp_path / name, tmp_path) for name in COLLIDING_NAMES]  # same on every run
    assert ids[0].startswith("a_b-") and ids[2].startswith("clip-")
    assert all(c.isascii() and (c.isalnum() or c in "_.-") for i in ids for c in i)  # file-name safe
    nested = video_id_for(tmp_path / "x" / "y.mp4", tmp_path)
    assert nested.startswith("x__y-") and nested != video_id_for(tmp_path / "x__y.mp4", tmp_path)


def test_colliding_names_each_keep_their_clips(distinct_clips, tmp_path):
    root = _input_folder(tmp_path / "in", distinct_clips, COLLIDING_NAMES)
    summary = run_curation(root, tmp_path / "out", CurationConfig(**CONFIG), executor=LocalExecutor(),
                           progress=False)
    rows = {row["input"]: row for row in summary["videos"]}
    assert sorted(rows) == sorted(COLLIDING_NAMES)
    assert {row["outcome"] for row in rows.values()} == {"clips_written"}
    assert all(row["clips_written"] == 1 for row in rows.values())
    assert summary["clips_written"] == 6 and len(list((tmp_path / "out" / "videos").glob("*.mp4"))) == 6
    sources = {json.loads(line)["source"] for line in (tmp_path / "out" / "metadata.jsonl").read_text().splitlines()}
    assert sources == {str((root / name).resolve()) for name in COLLIDING_NAMES}


def test_summary_lists_every_input_with_its_outcome(distinct_clips, tmp_path):
    root = _input_folder(tmp_path / "in", distinct_clips[:1], ["good.mp4"])
    (root / "nested").mkdir()
    shutil.copy(distinct_clips[1], root / "nested" / "also good.mp4")
    shutil.copy(distinct_clips[0], root / "copy.mp4")  # a near-duplicate of good.mp4: rejected by dedup
    (root / "corrupt.mp4").write_bytes(b"\x00not a video" * 100)
    os.symlink(root / "gone.mp4", root / "dangling.mp4")  # a broken symlink
    summary = run_curation(root, tmp_path / "out", CurationConfig(**CONFIG), executor=LocalExecutor(),
                           progress=False)
    rows = {row["input"]: row for row in summary["videos"]}
    assert sorted(rows) == ["copy.mp4", "corrupt.mp4", "dangling.mp4", "good.mp4", "nested/also good.mp4"]
    assert rows["nested/also good.mp4"]["outcome"] == "clips_written"
    assert rows["nested/also good.mp4"]["clips_written"] == 1
    # Of the two identical videos dedup keeps one; the other is listed with the reason it has no clip.
    pair = sorted((rows[name]["outcome"], rows[name]["clips_rejected"]) for name in ("good.mp4", "copy.mp4"))
    assert pair == [("all_clips_rejected", {"dedup:near_duplicate": 1}), ("clips_written", {})]
    assert rows["corrupt.mp4"]["outcome"] == "failed" and "corrupt" in rows["corrupt.mp4"]["error"]
    assert rows["dangling.mp4"]["outcome"] == "skipped" and "broken symlink" in rows["dangling.mp4"]["reason"]
    assert summary["inputs_skipped"] == [{"input": "dangling.mp4", "reason": rows["dangling.mp4"]["reason"]}]
    assert summary == json.loads((tmp_path / "out" / "summary.json").read_text())


def test_unreadable_folder_is_reported_as_skipped(tmp_path, monkeypatch):
    # Tests here run as root, for whom chmod 000 changes nothing: make listing that folder fail as it would for
    # a user without permission.
    root = tmp_path / "in"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "v.mp4").write_bytes(b"")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == root / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    skipped = []
    assert discover_inputs(root, skipped=skipped) == []
    assert skipped == [{"input": "locked/", "reason": "folder cannot be read: Permission denied"}]
    with pytest.raises(ValueError, match="no readable video files.*locked/: folder cannot be read"):
        run_curation(root, tmp_path / "out", CurationConfig(**CONFIG), executor=LocalExecutor(), progress=False)


def test_an_error_in_one_clip_fails_that_input_only(distinct_clips, tmp_path, monkeypatch):
    from cosmos_hf.curation import pipeline

    root = _input_folder(tmp_path / "in", distinct_clips[:2], ["ok.mp4", "bad.mp4"])
    real = pipeline.FilterStage.process_item

    def flaky(self, item):
        if item.get("input") == "bad.mp4" and "id" in item:
            raise RuntimeError("simulated decoder crash")
        return real(self, item)

    monkeypatch.setattr(pipeline.FilterStage, "process_item", flaky)
    summary = run_curation(root, tmp_path / "out", CurationConfig(**CONFIG), executor=LocalExecutor(),
                           progress=False)
    rows = {row["input"]: row for row in summary["videos"]}
    assert rows["ok.mp4"]["outcome"] == "clips_written"
    assert rows["bad.mp4"]["outcome"] == "failed" and rows["bad.mp4"]["clips_written"] == 0
    assert "filter stage: RuntimeError: simulated decoder crash" in rows["bad.mp4"]["clips_failed"][0]["error"]
    assert [Path(f["video"]).name for f in summary["inputs_failed"]] == ["bad.mp4"]


def test_cli_exits_non_zero_when_any_input_failed_or_was_skipped(distinct_clips, tmp_path, capsys):
    from cosmos_hf.cli import main

    root = _input_folder(tmp_path / "in", distinct_clips[:1], ["good.mp4"])
    common = ["--executor", "local", "--min-clip-seconds", "1", "--crop-seconds", "0.25", "--no-progress",
              "--no-text-filter"]
    assert main(["curate", "--input", str(root), "--output", str(tmp_path / "ok"), *common]) == 0
    (root / "corrupt.mp4").write_bytes(b"\x00not a video" * 100)
    assert main(["curate", "--input", str(root), "--output", str(tmp_path / "failed"), *common]) == 1
    printed = capsys.readouterr().out
    assert "1 input(s) failed and 0 skipped" in printed and "corrupt.mp4" in printed
    (root / "corrupt.mp4").unlink()
    os.symlink(root / "gone.mp4", root / "dangling.mp4")
    assert main(["curate", "--input", str(root), "--output", str(tmp_path / "skipped"), *common]) == 1
    printed = capsys.readouterr().out
    assert "skipped dangling.mp4: broken symlink" in printed and "0 input(s) failed and 1 skipped" in printed


@pytest.mark.parametrize("option", ["--workers", "--num-cpus", "--shard-size"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_cli_refuses_non_positive_counts(option, value, tmp_path, capsys):
    from cosmos_hf.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["curate", "--input", str(tmp_path), "--output", str(tmp_path / "o"), option, value])
    assert exit_info.value.code == 2
    assert f"argument {option}: must be a positive integer (>= 1), got {value}" in capsys.readouterr().err


def test_output_folder_that_is_not_a_curation_run_is_refused(distinct_clips, tmp_path):
    """The dataset writer deletes every videos/*.mp4 and metas/*.txt that is not one of its clips and rewrites
    metadata.jsonl: curating into an existing dataset folder deleted its videos. Only a new or empty folder, or an
    earlier curation run (.work/config.json), may be the output."""
    root = _input_folder(tmp_path / "in", distinct_clips[:1], ["good.mp4"])
    dataset = tmp_path / "my_dataset"
    (dataset / "videos").mkdir(parents=True)
    shutil.copy(distinct_clips[1], dataset / "videos" / "precious.mp4")
    (dataset / "metadata.jsonl").write_text('{"video": "videos/precious.mp4"}\n')
    with pytest.raises(ValueError, match="my_dataset is not empty .*holds no earlier curation run"):
        run_curation(root, dataset, CurationConfig(**CONFIG), executor=LocalExecutor(), progress=False)
    assert (dataset / "videos" / "precious.mp4").read_bytes() == distinct_clips[1].read_bytes()
    assert (dataset / "metadata.jsonl").read_text() == '{"video": "videos/precious.mp4"}\n'
    assert sorted(p.name for p in dataset.iterdir()) == ["metadata.jsonl", "videos"]  # not even .work/ added
    with pytest.raises(ValueError, match="is \\(or contains\\) the input folder"):
        run_curation(root, tmp_path, CurationConfig(**CONFIG), executor=LocalExecutor(), progress=False)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        run_curation(root, tmp_path / "a_file", CurationConfig(**CONFIG), executor=LocalExecutor(), progress=False)
    # A run killed before it wrote .work/config.json left only .work/: that folder is still accepted.
    (tmp_path / "killed" / ".work" / "records").mkdir(parents=True)
    summary = run_curation(root, tmp_path / "killed", CurationConfig(**CONFIG), executor=LocalExecutor(),
                           progress=False)
    assert summary["clips_written"] == 1
