"""The converter on released-style files: TorchScript .jit, .pt (weights_only), mean_std.pt, bad files, the CLI."""

import json

import pytest
import torch
from conftest import load_reference_case
from safetensors.torch import load_file
from torch import nn

from cosmos_hf.cli import main as cli_main
from cosmos_hf.tokenizers import convert_tokenizer_checkpoint, load_tokenizer


class _ParameterTree(nn.Module):
    """A module holding a state dict under its original dotted names, scriptable like the released .jit files."""

    def __init__(self, state_dict):
        super().__init__()
        for key, tensor in state_dict.items():
            *path, leaf = key.split(".")
            module = self
            for part in path:
                if not hasattr(module, part):
                    module.add_module(part, nn.Module())
                module = getattr(module, part)
            if tensor.is_floating_point():
                module.register_parameter(leaf, nn.Parameter(tensor.clone(), requires_grad=False))
            else:
                module.register_buffer(leaf, tensor.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _write_jit(state_dict, path):
    torch.jit.script(_ParameterTree(state_dict)).save(str(path))


@pytest.fixture(scope="module")
def dv_release(tmp_path_factory):
    """encoder.jit + decoder.jit with the released key layout (from the fixture's jit state dicts)."""
    kwargs, io, folder = load_reference_case("dv_video")
    out = tmp_path_factory.mktemp("dv_release")
    _write_jit(load_file(str(folder / "encoder_jit_state_dict.safetensors")), out / "encoder.jit")
    _write_jit(load_file(str(folder / "decoder_jit_state_dict.safetensors")), out / "decoder.jit")
    (out / "config.json").write_text(json.dumps(kwargs))
    return out, io


def test_cli_converts_torchscript_release_and_reproduces_reference(dv_release, tmp_path, capsys):
    release, io = dv_release
    code = cli_main(["convert", "tokenizer", "--checkpoint", str(release / "encoder.jit"), "--checkpoint",
                     str(release / "decoder.jit"), "--reference-config", str(release / "config.json"),
                     "--out", str(tmp_path / "dv")])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["class"] == "CosmosDiscreteVideoTokenizer"
    model = load_tokenizer(tmp_path / "dv")
    with torch.no_grad():
        assert torch.equal(model.tokenize(io["input"]), io["indices"])
        torch.testing.assert_close(model.detokenize(io["indices"]), io["reconstruction"], rtol=1e-4, atol=1e-4)


def test_pt_state_dict_and_mean_std(tmp_path):
    kwargs, io, folder = load_reference_case("cv_video")
    torch.save({"model": load_file(str(folder / "state_dict.safetensors"))}, tmp_path / "model.pt")
    mean, std = torch.randn(1, 16, 3, 1, 1), torch.rand(1, 16, 3, 1, 1) + 0.5
    torch.save((mean, std), tmp_path / "mean_std.pt")
    model = convert_tokenizer_checkpoint(tmp_path / "model.pt", reference_config=kwargs, mean_std=tmp_path / "mean_std.pt")
    latent = io["latent"]
    normalized = model.normalize_latents(latent)
    torch.testing.assert_close(normalized, (latent - mean) / std)
    torch.testing.assert_close(model.denormalize_latents(normalized), latent, rtol=1e-5, atol=1e-5)


class NotATensor:
    """Any non-tensor object in a .pt file needs unpickling of arbitrary classes."""


def test_pickled_objects_refused_by_default(tmp_path):
    kwargs, io, folder = load_reference_case("cv_video")

    torch.save({"model": load_file(str(folder / "state_dict.safetensors")), "extra": NotATensor()}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="only plain tensors are accepted"):
        convert_tokenizer_checkpoint(tmp_path / "bad.pt", reference_config=kwargs)


def test_corrupt_and_truncated_files(tmp_path, dv_release):
    release, _ = dv_release
    kwargs = json.loads((release / "config.json").read_text())
    truncated = tmp_path / "encoder.jit"
    truncated.write_bytes((release / "encoder.jit").read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        convert_tokenizer_checkpoint([truncated, release / "decoder.jit"], reference_config=kwargs)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        convert_tokenizer_checkpoint(empty, reference_config=kwargs)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        convert_tokenizer_checkpoint(garbage, reference_config=kwargs)


def test_incomplete_checkpoint_and_shape_mismatch(dv_release):
    release, _ = dv_release
    kwargs = json.loads((release / "config.json").read_text())
    with pytest.raises(ValueError, match="missing"):
        convert_tokenizer_checkpoint([release / "encoder.jit"], reference_config=kwargs)
    with pytest.raises(ValueError, match=r"shape mismatch for 'encoder.conv_in.conv_s.weight'"):
        convert_tokenizer_checkpoint([release / "encoder.jit", release / "decoder.jit"],
                                     reference_config=dict(kwargs, channels=16))


def test_a_weight_in_two_checkpoint_files_with_other_values_is_refused(tmp_path, dv_release):
    """Files are merged key by key; the same key with other values used to be taken from the last file silently."""
    release, io = dv_release
    kwargs = json.loads((release / "config.json").read_text())
    decoder = load_file(str(load_reference_case("dv_video")[2] / "decoder_jit_state_dict.safetensors"))
    other = {key: tensor + 1 if tensor.is_floating_point() else tensor for key, tensor in decoder.items()}
    _write_jit(other, tmp_path / "other_decoder.jit")
    with pytest.raises(ValueError, match=r"is in .*decoder.jit and in .*other_decoder.jit with other values"):
        convert_tokenizer_checkpoint([release / "encoder.jit", release / "decoder.jit", tmp_path / "other_decoder.jit"],
                                     reference_config=kwargs)
    # the same file twice holds the same values: accepted, the same tokenizer
    model = convert_tokenizer_checkpoint([release / "encoder.jit", release / "decoder.jit", release / "decoder.jit"],
                                         reference_config=kwargs)
    with torch.no_grad():
        assert torch.equal(model.tokenize(io["input"]), io["indices"])


def test_cli_reports_bad_variant_cleanly(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["convert", "tokenizer", "--checkpoint", "x.jit", "--variant", "DV9x9x9", "--out", str(tmp_path)])
    code = cli_main(["convert", "tokenizer", "--checkpoint", str(tmp_path / "missing.jit"), "--variant", "DV4x8x8",
                     "--out", str(tmp_path / "o")])
    assert code == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_tokenize_command_writes_tokens_reconstruction_and_psnr(tmp_path, capsys):
    import numpy as np

    from cosmos_hf.data import read_video, write_video
    from cosmos_hf.tokenizers import save_converted

    kwargs, io, folder = load_reference_case("dv_video")
    save_converted(convert_tokenizer_checkpoint([folder / "state_dict.safetensors"], reference_config=kwargs),
                   tmp_path / "dv")
    frames = (np.random.default_rng(0).random((7, 32, 32, 3)) * 255).astype(np.uint8)  # 7 frames: padded to 9
    write_video(tmp_path / "clip.mp4", frames, fps=8)
    code = cli_main(["tokenize", "--model", str(tmp_path / "dv"), "--video", str(tmp_path / "clip.mp4"),
                     "--out", str(tmp_path / "out"), "--chunk-latent-frames", "1"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["frames"] == 7 and metrics["indices"] == [1, 3, 4, 4] and metrics["psnr_db"] > 0
    assert load_file(str(tmp_path / "out" / "tokens.safetensors"))["indices"].shape == (1, 3, 4, 4)
    assert read_video(tmp_path / "out" / "reconstruction.mp4")[0].shape == (7, 32, 32, 3)
