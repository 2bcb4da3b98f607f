"""Tokenizer folders load strictly: a missing, extra or wrong-shaped weight, or a config.json that contradicts the
weights, is an error naming the key (issue #18), never a warning and a model that reconstructs garbage."""

import json

import numpy as np
import pytest
import torch
from conftest import load_reference_case
from safetensors.torch import load_file, save_file

from cosmos_hf.cli import main as cli_main
from cosmos_hf.tokenizers import (
    CosmosContinuousVideoTokenizer,
    CosmosDiscreteImageTokenizer,
    CosmosDiscreteVideoTokenizer,
    CosmosImageTokenizer,
    load_tokenizer,
    model_from_reference_kwargs,
    save_converted,
)

WEIGHTS = "diffusion_pytorch_model.safetensors"
CLASSES = {"dv_video": CosmosDiscreteVideoTokenizer, "dv_video_legacy": CosmosDiscreteVideoTokenizer,
           "cv_video": CosmosContinuousVideoTokenizer, "ci_image": CosmosImageTokenizer,
           "di_image": CosmosDiscreteImageTokenizer}


def _tiny_folder(case, path):
    """A tokenizer folder as the converter writes it (CV: diffusers' AutoencoderKLCosmos), random tiny weights."""
    kwargs, _, _ = load_reference_case(case)
    torch.manual_seed(0)
    save_converted(model_from_reference_kwargs(kwargs), path)
    return path


def _edit_weights(folder, edit):
    state = load_file(str(folder / WEIGHTS))
    edit(state)
    save_file(state, str(folder / WEIGHTS))


def _edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _first_decoder_key(folder):
    keys = sorted(load_file(str(folder / WEIGHTS)))
    return next(k for k in keys if k.startswith("decoder.") and k.endswith("weight"))


@pytest.mark.parametrize("case", sorted(CLASSES))
def test_missing_weight_is_an_error_naming_the_key(case, tmp_path):
    folder = _tiny_folder(case, tmp_path / case)
    key = _first_decoder_key(folder)
    _edit_weights(folder, lambda state: state.pop(key))
    with pytest.raises(ValueError, match=rf"missing.*{key}"):
        load_tokenizer(folder)
    with pytest.raises(ValueError, match=rf"missing.*{key}"):
        CLASSES[case].from_pretrained(folder)


@pytest.mark.parametrize("case", sorted(CLASSES))
def test_wrong_shaped_weight_is_an_error_naming_the_key(case, tmp_path):
    folder = _tiny_folder(case, tmp_path / case)
    key = _first_decoder_key(folder)
    _edit_weights(folder, lambda state: state.__setitem__(key, state[key][:1].clone()))
    with pytest.raises(ValueError, match=rf"wrong shape.*{key}"):
        load_tokenizer(folder)


@pytest.mark.parametrize("case", ["dv_video", "cv_video", "di_image"])
def test_unexpected_weight_is_an_error_naming_the_key(case, tmp_path):
    folder = _tiny_folder(case, tmp_path / case)
    _edit_weights(folder, lambda state: state.__setitem__("decoder.extra_head.weight", torch.zeros(2)))
    with pytest.raises(ValueError, match=r"unexpected.*decoder\.extra_head\.weight"):
        load_tokenizer(folder)


@pytest.mark.parametrize(
    "case, changes, config_key",
    [
        ("dv_video", {"levels": [8, 8, 8, 5, 5]}, "levels"),
        ("dv_video", {"legacy_mode": True}, "legacy_mode"),
        ("dv_video_legacy", {"legacy_mode": False}, "legacy_mode"),
        ("dv_video", {"temporal_compression": 8}, "temporal_compression"),
        ("dv_video", {"spatial_compression": 16}, "spatial_compression"),
        ("dv_video", {"channels": 16}, "channels"),
        ("cv_video", {"temporal_compression_ratio": 4}, "temporal_compression_ratio"),
        ("cv_video", {"latent_channels": 8}, "latent_channels"),
        ("cv_video", {"legacy_mode": True}, "legacy_mode"),
        ("di_image", {"levels": [8, 8, 8, 5, 5, 5, 5]}, "levels"),
        ("ci_image", {"spatial_compression": 16}, "spatial_compression"),
    ],
)
def test_config_contradicting_the_weights_is_refused_naming_the_config_key(case, changes, config_key, tmp_path):
    folder = _tiny_folder(case, tmp_path / case)
    _edit_config(folder, **changes)
    with pytest.raises(ValueError, match=rf"config key '{config_key}'"):
        load_tokenizer(folder)


def test_tokenize_command_fails_on_a_corrupt_model_folder(tmp_path, capsys):
    from cosmos_hf.data import write_video

    folder = _tiny_folder("dv_video", tmp_path / "dv")
    key = _first_decoder_key(folder)
    _edit_weights(folder, lambda state: state.pop(key))
    frames = (np.random.default_rng(0).random((5, 32, 32, 3)) * 255).astype(np.uint8)
    write_video(tmp_path / "clip.mp4", frames, fps=8)
    code = cli_main(["tokenize", "--model", str(folder), "--video", str(tmp_path / "clip.mp4"),
                     "--out", str(tmp_path / "out")])
    assert code == 2
    assert key in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_intact_folder_still_loads_exactly(tmp_path):
    folder = _tiny_folder("dv_video", tmp_path / "dv")
    state = load_file(str(folder / WEIGHTS))
    loaded = load_tokenizer(folder)
    for key, tensor in state.items():
        assert torch.equal(loaded.state_dict()[key], tensor), key


def test_ignore_mismatched_sizes_restores_diffusers_lenient_loading(tmp_path):
    folder = _tiny_folder("dv_video", tmp_path / "dv")
    key = _first_decoder_key(folder)
    _edit_weights(folder, lambda state: state.pop(key))
    model = load_tokenizer(folder, ignore_mismatched_sizes=True, low_cpu_mem_usage=False)
    assert model.state_dict()[key].device.type == "cpu"  # randomly initialised, as diffusers does


@pytest.mark.parametrize(
    "case, changes, message",
    [
        ("dv_video", {"channels": "16"}, r"config key 'channels' must be an integer >= 1, got '16' \(str\)"),
        ("dv_video", {"temporal_compression": 0}, r"config key 'temporal_compression' must be one of \[2, 4, 8\]"),
        ("dv_video", {"spatial_compression": 16}, r"config key 'spatial_compression' must be one of \[2, 4, 8\]"),
        ("dv_video", {"levels": [8, 1]}, r"config key 'levels' must be a non-empty list of integers >= 2"),
        ("cv_video", {"temporal_compression_ratio": 0}, r"config key 'temporal_compression_ratio' must be one of"),
        ("cv_video", {"patch_size": 3}, r"config key 'patch_size' must be a power of two"),
        ("ci_image", {"latent_channels": 16.0}, r"config key 'latent_channels' must be an integer"),
        ("di_image", {"channels": 48}, r"multiples of 32"),
    ],
)
def test_invalid_config_values_are_refused_naming_key_and_range(case, changes, message, tmp_path):
    folder = _tiny_folder(case, tmp_path / case)
    _edit_config(folder, **changes)
    with pytest.raises(ValueError, match=message):
        load_tokenizer(folder)


def test_config_that_is_not_json_is_an_error_naming_the_path(tmp_path):
    folder = _tiny_folder("dv_video", tmp_path / "dv")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=rf"{folder / 'config.json'} is not valid JSON"):
        load_tokenizer(folder)
