"""Clip archives (`cosmos-hf sim export-clips`): the physics clips simulated once into one .npz, read without pickle."""

import numpy as np
import pytest

from cosmos_hf.data.clip_archive import ClipArchive, simulate_clip_archive, write_clip_archive


@pytest.fixture(scope="module")
def archive_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "physics.npz"
    return simulate_clip_archive(path, num_clips=3, num_frames=5, height=32, width=32, fps=12.0, seed_offset=7,
                                 views=[0, 1], progress=False)


def test_archive_holds_the_clips_the_physics_dataset_simulates(archive_path):
    from cosmos_hf.sim import physics_scene_and_view, physics_scenes

    archive = ClipArchive(archive_path)
    assert len(archive) == 3 and archive.videos.shape == (3, 5, 32, 32, 3) and archive.fps == 12.0
    scene, view = physics_scene_and_view(2, list(physics_scenes.SCENES), [0, 1])
    record = physics_scenes.simulate(scene, seed=9, num_frames=5, height=32, width=32, fps=12.0, view=view)
    assert np.array_equal(archive.video(2), record.video)
    assert archive.caption(2) == record.caption and archive.scenes[2] == scene and archive.views[2] == view
    assert list(archive.seeds) == [7, 8, 9]


def test_parallel_export_writes_the_serial_archive(archive_path, tmp_path):
    parallel = simulate_clip_archive(tmp_path / "parallel.npz", num_clips=3, num_frames=5, height=32, width=32,
                                     fps=12.0, seed_offset=7, views=[0, 1], progress=False, workers=2)
    serial, other = ClipArchive(archive_path), ClipArchive(parallel)
    assert np.array_equal(serial.videos, other.videos)
    assert [serial.caption(i) for i in range(3)] == [other.caption(i) for i in range(3)]
    assert list(serial.views) == list(other.views) and list(serial.scenes) == list(other.scenes)
    with pytest.raises(ValueError, match="workers"):
        simulate_clip_archive(tmp_path / "w.npz", num_clips=1, workers=0, progress=False)


def test_export_refuses_to_overwrite_and_writes_nothing_half_done(archive_path, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite"):
        simulate_clip_archive(archive_path, num_clips=1, num_frames=5, height=32, width=32, progress=False)
    with pytest.raises(ValueError, match="views"):
        simulate_clip_archive(tmp_path / "bad.npz", num_clips=1, views=[4], progress=False)
    with pytest.raises(ValueError, match=".npz"):
        simulate_clip_archive(tmp_path / "bad.zip", num_clips=1, progress=False)
    with pytest.raises(ValueError, match=r"seed_offset must be >= 0 \(clip i uses seed seed_offset \+ i\), got -1"):
        simulate_clip_archive(tmp_path / "neg.npz", num_clips=1, seed_offset=-1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_archive_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    video = np.zeros((1, 2, 8, 8, 3), np.uint8)
    np.savez(path, video=video, caption=np.array([{"x": 1}], dtype=object), scene=np.array(["s"]),
             view=np.array([0]), seed=np.array([0]), fps=np.array(12.0))
    with pytest.raises(ValueError, match="pickle"):
        ClipArchive(path)


def test_archive_checks_keys_shapes_and_sizes(tmp_path):
    np.savez(tmp_path / "partial.npz", video=np.zeros((1, 2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="missing"):
        ClipArchive(tmp_path / "partial.npz")
    with pytest.raises(ValueError, match="one entry per clip"):
        write_clip_archive(tmp_path / "x.npz", np.zeros((2, 2, 8, 8, 3), np.uint8), ["a"], ["s"], [0], [0], 12)
    write_clip_archive(tmp_path / "ok.npz", np.zeros((1, 5, 8, 8, 3), np.uint8), ["a"], ["s"], [0], [0], 12)
    archive = ClipArchive(tmp_path / "ok.npz")
    with pytest.raises(ValueError, match="asks for 9x8x8"):
        archive.check_matches(9, 8, 8)
    with pytest.raises(ValueError, match="fps"):
        archive.check_matches(5, 8, 8, fps=24)
    with pytest.raises(FileNotFoundError, match="export-clips"):
        ClipArchive(tmp_path / "absent.npz")


def test_cli_export_clips(tmp_path):
    from cosmos_hf.cli import main

    out = tmp_path / "c.npz"
    assert main(["sim", "export-clips", "--num", "2", "--frames", "5", "--size", "32x32", "--out", str(out),
                 "--quiet"]) == 0
    assert len(ClipArchive(out)) == 2
