"""Model contracts: save/load round trips, bf16 on CPU, named configs, and clear errors for bad input."""

import pytest
import torch
from conftest import load_reference_case

from cosmos_hf.tokenizers import (
    REFERENCE_CONFIGS,
    CosmosContinuousVideoTokenizer,
    CosmosDiscreteImageTokenizer,
    CosmosDiscreteVideoTokenizer,
    CosmosImageTokenizer,
    convert_tokenizer_checkpoint,
    from_config_name,
    load_tokenizer,
    pad_video_frames,
    save_converted,
)


@pytest.fixture(scope="module")
def dv_model():
    kwargs, _, folder = load_reference_case("dv_video")
    return convert_tokenizer_checkpoint([folder / "state_dict.safetensors"], reference_config=kwargs)


@pytest.mark.parametrize("case", ["dv_video", "dv_video_legacy", "cv_video", "ci_image", "di_image"])
def test_save_pretrained_round_trip(case, tmp_path):
    kwargs, io, folder = load_reference_case(case)
    model = convert_tokenizer_checkpoint([folder / "state_dict.safetensors"], reference_config=kwargs)
    save_converted(model, tmp_path / case)
    assert not list(tmp_path.glob(".*tmp*")), "no temporary folder may be left behind"
    assert (tmp_path / case / "diffusion_pytorch_model.safetensors").is_file()
    loaded = load_tokenizer(tmp_path / case)
    assert type(loaded) is type(model)
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key


def test_bf16_on_cpu_close_to_fp32(dv_model):
    kwargs, io, folder = load_reference_case("cv_video")
    cv = convert_tokenizer_checkpoint([folder / "state_dict.safetensors"], reference_config=kwargs)
    with torch.no_grad():
        fp32 = cv.decode(io["latent"]).sample
        bf16 = cv.to(torch.bfloat16).decode(io["latent"]).sample
    assert bf16.dtype == torch.bfloat16
    # random tiny weights: bf16 rounding only (about 2 significant digits), no blow-up
    relative_error = (bf16.float() - fp32).abs().mean() / fp32.abs().mean()
    assert relative_error < 0.05
    dv_bf16 = CosmosDiscreteVideoTokenizer.from_config(dv_model.config).to(torch.bfloat16)
    dv_bf16.load_state_dict(dv_model.state_dict())
    with torch.no_grad():
        out = dv_bf16(io["input"][:, :, :9, :32, :32].bfloat16())
    assert out.sample.dtype == torch.bfloat16 and out.indices.dtype == torch.int64


@pytest.mark.parametrize("name", sorted(REFERENCE_CONFIGS))
def test_named_configs_build_with_expected_compression(name):
    # Full-size configs on the meta device: shapes and compression only, no memory.
    with torch.device("meta"):
        model = from_config_name(name)
    kind = name[:2]
    expected = {"CV": CosmosContinuousVideoTokenizer, "DV": CosmosDiscreteVideoTokenizer,
                "CI": CosmosImageTokenizer, "DI": CosmosDiscreteImageTokenizer}[kind]
    assert type(model) is expected
    factors = [int(x) for x in name[2:].split("x")]
    config = model.config
    spatial = config.get("spatial_compression") or config.get("spatial_compression_ratio")
    assert spatial == factors[-1]
    if kind[1] == "V":
        temporal = config.get("temporal_compression") or config.get("temporal_compression_ratio")
        assert temporal == factors[0]


def test_tiny_named_config_shapes():
    model = from_config_name("DV4x8x8", channels=8, channels_mult=[1, 2, 2], num_res_blocks=1, z_channels=16)
    video = torch.rand(1, 3, 9, 32, 48) * 2 - 1
    with torch.no_grad():
        tokens = model.tokenize(video)
        assert tokens.shape == (1, 3, 4, 6) and tokens.dtype == torch.int64
        assert int(tokens.min()) >= 0 and int(tokens.max()) < 64000
        assert model.detokenize(tokens).shape == video.shape


def test_frame_count_must_be_causal(dv_model):
    with pytest.raises(ValueError, match=r"1 \+ k\*4 frames \(1, 5, 9"):
        dv_model.tokenize(torch.zeros(1, 3, 8, 32, 32))
    padded, original = pad_video_frames(torch.zeros(1, 3, 8, 32, 32), 4)
    assert padded.shape[2] == 9 and original == 8
    assert dv_model.tokenize(padded).shape[1] == 3


@pytest.mark.parametrize(
    "video, message",
    [
        (torch.full((1, 3, 5, 32, 32), 2.0), r"values must lie in \[-1, 1\]"),
        (torch.zeros(3, 5, 32, 32), "rank 5"),
        (torch.zeros(1, 4, 5, 32, 32), "3 channels"),
        (torch.zeros(1, 3, 5, 30, 32), "multiples of the spatial compression 8"),
        (torch.full((1, 3, 5, 32, 32), float("nan")), "NaN"),
        (torch.zeros(1, 3, 5, 32, 32, dtype=torch.uint8), "floating-point"),
    ],
)
def test_bad_video_input_errors(dv_model, video, message):
    with pytest.raises(ValueError, match=message):
        dv_model.tokenize(video)


def test_out_of_range_indices_error(dv_model):
    with pytest.raises(ValueError, match=r"\[0, 64000\)"):
        dv_model.detokenize(torch.full((1, 2, 4, 4), 64000))
    with pytest.raises(ValueError, match=r"\[0, 64000\)"):
        dv_model.detokenize(torch.full((1, 2, 4, 4), -1))
    with pytest.raises(ValueError, match="integer"):
        dv_model.detokenize(torch.zeros(1, 2, 4, 4))


def test_image_tokenizer_bad_input():
    kwargs, io, folder = load_reference_case("di_image")
    model = convert_tokenizer_checkpoint([folder / "state_dict.safetensors"], reference_config=kwargs)
    with pytest.raises(ValueError, match="rank 4"):
        model.tokenize(torch.zeros(1, 3, 1, 64, 64))
    with pytest.raises(ValueError, match="multiples of the spatial compression 8"):
        model.tokenize(torch.zeros(1, 3, 60, 64))
