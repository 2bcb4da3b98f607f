"""`cosmos-hf sim generate`: the folder layout, byte-identical parallel generation, and every way of loading it."""

import json
import tarfile

import numpy as np
import pytest

from cosmos_hf.data import WorldVideoDataset, load_bridge_trajectories, load_world_dataset
from cosmos_hf.sim.commands import register
from cosmos_hf.sim.dataset import generate_dataset


def sim_cli(args):
    """`cosmos-hf sim ...` through this group's own parser (the full CLI imports every group: slow)."""
    import argparse

    parser = argparse.ArgumentParser(prog="cosmos-hf")
    register(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(args)
    return ns.func(ns)


def _generate(out, *extra):
    args = ["sim", "generate", "--num", "3", "--frames", "4", "--size", "16x24", "--seed", "3", "--quiet",
            "--out", str(out), *extra]
    assert sim_cli(args) == 0


def _all_files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def push_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "push"
    _generate(out, "--task", "push", "--shard-size", "2")
    return out


def test_layout_and_shards(push_folder):
    names = {p.relative_to(push_folder).as_posix() for p in push_folder.rglob("*") if p.is_file()}
    for sid in ("000000", "000001", "000002"):
        assert {f"videos/{sid}.mp4", f"metas/{sid}.txt", f"annotations/{sid}.json", f"masks/{sid}.npz"} <= names
    assert {"metadata.jsonl", "README.md", "shards/push-000000.tar", "shards/push-000001.tar"} <= names
    import webdataset as wds

    samples = list(wds.WebDataset([str(push_folder / "shards" / f"push-00000{k}.tar") for k in (0, 1)],
                                  shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["000000", "000001", "000002"]
    assert set(samples[0]) >= {"mp4", "txt", "json", "npz"}
    ann = json.loads(samples[1]["json"])
    assert samples[1]["txt"].decode().strip() == ann["caption"]
    with np.load(push_folder / "masks" / "000001.npz") as arrays:
        assert arrays["masks"].shape == (4, 16, 24) and arrays["masks"].dtype == np.uint8
        assert arrays["depth"].dtype == np.float16 and arrays["goal_image"].shape == (16, 24, 3)
    assert len(ann["actions"]) == 3 and len(ann["actions"][0]) == 7 and len(ann["state"]) == 4


def test_parallel_generation_writes_identical_files(tmp_path):
    _generate(tmp_path / "serial", "--task", "physics", "--workers", "1")
    _generate(tmp_path / "parallel", "--task", "physics", "--workers", "2")
    serial, parallel = _all_files(tmp_path / "serial"), _all_files(tmp_path / "parallel")
    assert set(serial) == set(parallel)
    for name in serial:
        if name == "README.md":  # records the command line, which differs
            continue
        assert serial[name] == parallel[name], name
    with tarfile.open(tmp_path / "serial" / "shards" / "physics-000000.tar") as tar:
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_generate_refuses_bad_input(tmp_path, capsys):
    from cosmos_hf.cli import main  # the real entry point: errors exit 2 with the message on stderr

    assert main(["sim", "generate", "--task", "physics", "--num", "1", "--size", "64by64", "--out", str(tmp_path / "a")]) == 2
    assert "--size must look like HxW" in capsys.readouterr().err
    assert main(["sim", "generate", "--task", "physics", "--num", "1", "--size", "60x64", "--out", str(tmp_path / "b")]) == 2
    assert "height must be a multiple of 8" in capsys.readouterr().err
    assert main(["sim", "generate", "--task", "physics", "--num", "1", "--scenes", "lava", "--out", str(tmp_path / "c")]) == 2
    assert "unknown scene(s) lava" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    assert main(["sim", "generate", "--task", "camera", "--num", "1", "--frames", "2", "--size", "16x16",
                 "--out", str(tmp_path / "full")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_generate_refuses_an_option_of_another_task(tmp_path):
    """`--task push --scenes dominoes` gave push clips of every policy: the option was ignored without a word."""
    for task, option in (("push", {"scenes": ["dominoes"]}), ("physics", {"policy": "goal"}),
                         ("multiview", {"trajectory": "orbit"}), ("camera", {"num_cameras": 3})):
        with pytest.raises(ValueError, match=r"do\(es\) not apply to --task " + task):
            generate_dataset(task, 1, tmp_path / task, num_frames=2, height=16, width=16, progress=False, **option)
        assert not (tmp_path / task).exists()


def test_generate_refuses_the_working_directory_even_with_overwrite(tmp_path, monkeypatch):
    """The output folder is replaced as a whole: `--out <the working directory> --overwrite` deleted its files,
    and so did a folder above it. A file at --out was a bare NotADirectoryError."""

    work = tmp_path / "project"
    work.mkdir()
    (work / "precious.txt").write_text("keep")
    monkeypatch.chdir(work)
    for out in (work, tmp_path, "."):
        with pytest.raises(ValueError, match="is \\(or contains\\) the current working directory"):
            generate_dataset("physics", 1, out, num_frames=2, height=16, width=16, overwrite=True, progress=False)
    assert (work / "precious.txt").read_text() == "keep" and sorted(p.name for p in work.iterdir()) == ["precious.txt"]
    (tmp_path / "notes.txt").write_text("x")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="notes.txt exists and is not a folder"):
            generate_dataset("physics", 1, tmp_path / "notes.txt", num_frames=2, height=16, width=16,
                             overwrite=overwrite, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "x"


def test_loads_as_hf_dataset_and_torch_dataset(push_folder, tmp_path):
    ds = load_world_dataset(push_folder)
    assert len(ds) == 3
    assert {"id", "video", "caption", "task", "actions", "ee_states", "intrinsics", "cam_to_world", "objects"} <= set(
        ds.column_names)
    assert ds[0]["video"].startswith(str(push_folder.resolve())) and ds[0]["task"] == "push"

    import datasets

    plain = datasets.load_dataset(str(push_folder), split="train", cache_dir=str(tmp_path / "hf_cache"))
    assert plain.num_rows == 3 and plain[2]["caption"] == ds[2]["caption"]

    torch_ds = WorldVideoDataset(push_folder, num_frames=3, height=32, width=48, include_masks=True)
    item = torch_ds[1]
    assert tuple(item["video"].shape) == (3, 3, 32, 48)
    assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert tuple(item["actions"].shape) == (2, 7) and tuple(item["ee_states"].shape) == (3, 7)
    assert tuple(item["masks"].shape) == (3, 32, 48)
    # intrinsics follow the resize (2x): focal doubles, principal point stays at the image centre
    K = np.asarray(ds[1]["intrinsics"])
    assert float(item["intrinsics"][0, 0]) == pytest.approx(2 * K[0, 0], rel=1e-6)
    assert float(item["intrinsics"][0, 2]) == pytest.approx((48 - 1) / 2, rel=1e-6)

    # the push annotations are in the reference's Bridge format: the Bridge loader reads them back
    bridge = load_bridge_trajectories(push_folder / "annotations", video_root=push_folder)
    assert len(bridge) == 3
    np.testing.assert_allclose(np.asarray(bridge[0]["actions"]), np.asarray(ds[0]["actions"]), atol=1e-5)


def test_multiview_and_camera_folders(tmp_path):
    _generate(tmp_path / "mv", "--task", "multiview", "--num-cameras", "2")
    ds = load_world_dataset(tmp_path / "mv")
    assert len(ds[0]["view_videos"]) == 2 and ds[0]["camera_names"] == ["cam_0", "cam_1"]
    item = WorldVideoDataset(ds)[0]
    assert tuple(item["video"].shape) == (2, 3, 4, 16, 24)
    assert tuple(item["cam_to_world"].shape) == (2, 4, 4, 4)

    _generate(tmp_path / "cam", "--task", "camera", "--trajectory", "orbit")
    cam = load_world_dataset(tmp_path / "cam")
    assert cam[0]["trajectory"] == "orbit" and np.asarray(cam[0]["cam_to_world"]).shape == (4, 4, 4)


def test_contact_sheet_command(tmp_path):
    import cv2

    out = tmp_path / "sheet.png"
    assert sim_cli(["sim", "contact-sheet", "--out", str(out), "--columns", "2", "--frames", "2", "--size", "16x16"]) == 0
    image = cv2.imread(str(out))
    assert image.shape == (8 * 16, 120 + 2 * 16, 3)


def test_render_command_writes_a_clip(tmp_path):
    from cosmos_hf.data import read_video

    out = tmp_path / "seesaw.mp4"
    assert sim_cli(["sim", "render", "--scene", "seesaw", "--frames", "3", "--size", "32x32", "--out", str(out)]) == 0
    frames, fps = read_video(out)
    assert frames.shape == (3, 32, 32, 3) and fps == 24
