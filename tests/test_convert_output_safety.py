"""Converters never destroy data: a non-empty --out needs --overwrite, inputs are never inside --out, the old folder
is replaced only once the new one is complete (issue #18)."""

import json

import pytest
from conftest import FIXTURES, load_reference_case

from cosmos_hf.cli import main as cli_main
from cosmos_hf.tokenizers import convert_tokenizer_checkpoint, save_converted


@pytest.fixture
def dv_checkpoint(tmp_path):
    """A tokenizer checkpoint and its reference config, copied into tmp_path/release."""
    kwargs, _, folder = load_reference_case("dv_video")
    release = tmp_path / "release"
    release.mkdir()
    (release / "model.safetensors").write_bytes((folder / "state_dict.safetensors").read_bytes())
    (release / "config.json").write_text(json.dumps(kwargs))
    return release


@pytest.fixture
def ar_checkpoint(tmp_path):
    release = tmp_path / "ar_release"
    release.mkdir()
    (release / "model.safetensors").write_bytes((FIXTURES / "ar_base" / "state_dict.safetensors").read_bytes())
    (release / "config.json").write_text((FIXTURES / "ar_base" / "config.json").read_text())
    return release


def _tokenizer_args(release, out, *extra):
    return ["convert", "tokenizer", "--checkpoint", str(release / "model.safetensors"), "--reference-config",
            str(release / "config.json"), "--out", str(out), *extra]


def _ar_args(release, out, *extra):
    return ["convert", "ar", "--checkpoint", str(release / "model.safetensors"), "--reference-config",
            str(release / "config.json"), "--out", str(out), *extra]


def _populated_folder(path):
    path.mkdir()
    (path / "notes.txt").write_text("keep me")
    (path / "sub").mkdir()
    (path / "sub" / "data.bin").write_bytes(b"\x01\x02")
    return path


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("kind", ["tokenizer", "ar"])
def test_cli_convert_refuses_non_empty_output_folder_without_overwrite(kind, dv_checkpoint, ar_checkpoint, tmp_path,
                                                                       capsys):
    out = _populated_folder(tmp_path / "out")
    before = _snapshot(out)
    args = _tokenizer_args(dv_checkpoint, out) if kind == "tokenizer" else _ar_args(ar_checkpoint, out)
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "not empty" in err and "--overwrite" in err
    assert _snapshot(out) == before
    assert not list(tmp_path.glob(".*tmp*")), "no temporary folder may be left behind"


@pytest.mark.parametrize("kind", ["tokenizer", "ar"])
def test_cli_convert_overwrite_replaces_the_folder(kind, dv_checkpoint, ar_checkpoint, tmp_path):
    out = _populated_folder(tmp_path / "out")
    args = _tokenizer_args(dv_checkpoint, out) if kind == "tokenizer" else _ar_args(ar_checkpoint, out)
    assert cli_main([*args, "--overwrite"]) == 0
    assert (out / "config.json").is_file() and not (out / "notes.txt").exists()
    assert not list(tmp_path.glob(".*tmp*")) and not list(tmp_path.glob(".*old*"))


@pytest.mark.parametrize("kind", ["tokenizer", "ar"])
def test_cli_convert_never_deletes_its_inputs_even_with_overwrite(kind, dv_checkpoint, ar_checkpoint, tmp_path,
                                                                   capsys):
    release = dv_checkpoint if kind == "tokenizer" else ar_checkpoint
    before = _snapshot(release)
    for out in (release, tmp_path):  # the folder holding the inputs, and one above it
        args = _tokenizer_args(release, out) if kind == "tokenizer" else _ar_args(release, out)
        assert cli_main([*args, "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert "input" in err and str(out) in err
        assert _snapshot(release) == before


def test_cli_convert_out_dot_never_empties_the_working_directory(dv_checkpoint, tmp_path, monkeypatch, capsys):
    work = _populated_folder(tmp_path / "work")
    before = _snapshot(work)
    monkeypatch.chdir(work)
    for extra in ((), ("--overwrite",)):
        assert cli_main(_tokenizer_args(dv_checkpoint, ".", *extra)) == 2
        assert "current working directory" in capsys.readouterr().err
    assert _snapshot(work) == before


def test_cli_convert_into_empty_or_new_folder_needs_no_flag(dv_checkpoint, tmp_path):
    (tmp_path / "empty").mkdir()
    assert cli_main(_tokenizer_args(dv_checkpoint, tmp_path / "empty")) == 0
    assert cli_main(_tokenizer_args(dv_checkpoint, tmp_path / "new" / "nested")) == 0
    assert (tmp_path / "empty" / "config.json").is_file()
    assert (tmp_path / "new" / "nested" / "config.json").is_file()


def test_cli_convert_refuses_an_output_path_that_is_a_file(dv_checkpoint, tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    assert cli_main(_tokenizer_args(dv_checkpoint, target, "--overwrite")) == 2
    assert "not a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_save_converted_refuses_non_empty_folder_and_overwrites_on_request(dv_checkpoint, tmp_path):
    model = convert_tokenizer_checkpoint(dv_checkpoint / "model.safetensors",
                                         reference_config=json.loads((dv_checkpoint / "config.json").read_text()))
    out = _populated_folder(tmp_path / "out")
    with pytest.raises(ValueError, match=r"not empty.*overwrite=True"):
        save_converted(model, out)
    assert (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="contains the input"):
        save_converted(model, dv_checkpoint, overwrite=True, inputs=[dv_checkpoint / "model.safetensors"])
    save_converted(model, out, overwrite=True)
    assert (out / "diffusion_pytorch_model.safetensors").is_file() and not (out / "notes.txt").exists()


def test_failed_overwrite_keeps_the_old_folder(dv_checkpoint, tmp_path, monkeypatch):
    model = convert_tokenizer_checkpoint(dv_checkpoint / "model.safetensors",
                                         reference_config=json.loads((dv_checkpoint / "config.json").read_text()))
    out = _populated_folder(tmp_path / "out")
    before = _snapshot(out)

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(type(model), "save_pretrained", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_converted(model, out, overwrite=True)
    assert _snapshot(out) == before
    assert not list(tmp_path.glob(".*tmp*"))


def test_convert_ar_checkpoint_checks_the_output_folder_before_converting(ar_checkpoint, tmp_path):
    from cosmos_hf import convert_ar_checkpoint

    config = json.loads((ar_checkpoint / "config.json").read_text())["constructor_kwargs"]
    out = _populated_folder(tmp_path / "out")
    before = _snapshot(out)
    with pytest.raises(ValueError, match=r"not empty.*overwrite=True"):
        convert_ar_checkpoint(ar_checkpoint / "model.safetensors", out, reference_config=config)
    with pytest.raises(ValueError, match="contains the input"):
        convert_ar_checkpoint(ar_checkpoint / "model.safetensors", ar_checkpoint, reference_config=config,
                              overwrite=True)
    assert _snapshot(out) == before
    convert_ar_checkpoint(ar_checkpoint / "model.safetensors", out, reference_config=config, overwrite=True)
    assert (out / "config.json").is_file() and not (out / "notes.txt").exists()


def test_folder_replace_restores_the_old_folder_when_the_final_rename_fails(tmp_path, monkeypatch):
    import os

    from cosmos_hf import utils

    target = _populated_folder(tmp_path / "out")
    before = _snapshot(target)
    real_replace = os.replace

    def failing_rename_of_the_new_folder(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(utils.os, "replace", failing_rename_of_the_new_folder)
    with pytest.raises(OSError, match="rename failed"):
        with utils.atomic_path(target, is_dir=True) as tmp:
            (tmp / "new.txt").write_text("new")
    assert _snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
