"""`atomic_path`: all or nothing at the target, with the permissions a plain open() would give."""

import os

import pytest

from cosmos_hf.utils import atomic_path


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_atomic_file_and_folder_get_ordinary_permissions(tmp_path):
    with atomic_path(tmp_path / "a.json") as tmp:
        tmp.write_text("{}")
    with atomic_path(tmp_path / "folder", is_dir=True) as tmp:
        (tmp / "x.txt").write_text("x")
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o777 & ~_umask()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
