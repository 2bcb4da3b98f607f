"""Tokenizer bad input (issue #18): empty batches and grids, NaN or out-of-range codes, oversized frames and
`generator=` that is not a torch.Generator get a clear error naming the problem and the valid range, before any work."""

import pytest
import torch
from conftest import load_reference_case

from cosmos_hf.tokenizers import convert_tokenizer_checkpoint


@pytest.fixture(scope="module")
def models():
    loaded = {}
    for case in ("dv_video", "cv_video", "ci_image", "di_image"):
        kwargs, _, folder = load_reference_case(case)
        loaded[case] = convert_tokenizer_checkpoint([folder / "state_dict.safetensors"], reference_config=kwargs)
    return loaded


@pytest.mark.parametrize(
    "case, method, shape",
    [
        ("dv_video", "tokenize", (0, 3, 5, 32, 32)),
        ("dv_video", "tokenize", (1, 3, 5, 0, 0)),
        ("cv_video", "encode", (0, 3, 9, 32, 32)),
        ("cv_video", "encode", (1, 3, 9, 0, 0)),
        ("di_image", "tokenize", (0, 3, 32, 32)),
        ("ci_image", "encode", (1, 3, 0, 0)),
    ],
)
def test_empty_batch_or_frame_is_refused(models, case, method, shape):
    with pytest.raises(ValueError, match=r"every dimension >= 1"):
        getattr(models[case], method)(torch.zeros(shape))


@pytest.mark.parametrize("shape", [(0, 2, 4, 4), (1, 2, 0, 4)])
def test_dv_detokenize_of_an_empty_token_grid_is_refused(models, shape):
    with pytest.raises(ValueError, match=r"indices must have every dimension >= 1"):
        models["dv_video"].detokenize(torch.zeros(shape, dtype=torch.long))


@pytest.mark.parametrize("case", ["dv_video", "di_image"])
def test_decode_refuses_nan_and_out_of_range_codes(models, case):
    model = models[case]
    grid = (1, 6, 2, 4, 4) if case == "dv_video" else (1, 6, 4, 4)
    with pytest.raises(ValueError, match="NaN"):
        model.decode(torch.full(grid, float("nan")))
    with pytest.raises(ValueError, match=r"FSQ code range per channel \[-1, -1, -1, -1, -1, -1\] \.\. "
                                         r"\[0\.75, 0\.75, 0\.75, 1, 1, 1\]"):
        model.decode(torch.full(grid, 3.0))
    with pytest.raises(ValueError, match=r"codes must have every dimension >= 1"):
        model.decode(torch.zeros(0, 6, 2, 4, 4) if case == "dv_video" else torch.zeros(0, 6, 4, 4))
    # codes from the quantizer are accepted
    indices = torch.randint(0, model.codebook_size, (1, 2, 4, 4) if case == "dv_video" else (1, 4, 4))
    with torch.no_grad():
        model.decode(model.quantizer.indices_to_codes(indices))


def test_cv_decode_refuses_nan_and_empty_latents(models):
    with pytest.raises(ValueError, match="NaN"):
        models["cv_video"].decode(torch.full((1, 16, 2, 4, 4), float("nan")))
    with pytest.raises(ValueError, match=r"every dimension >= 1"):
        models["cv_video"].decode(torch.zeros(0, 16, 2, 4, 4))


@pytest.mark.parametrize(
    "case, call",
    [
        ("dv_video", lambda m: m.tokenize(torch.zeros(1, 3, 1, 2048, 2048))),
        ("dv_video", lambda m: m.detokenize(torch.zeros(1, 1, 256, 256, dtype=torch.long))),
        ("cv_video", lambda m: m.encode(torch.zeros(1, 3, 1, 2048, 2048))),
        ("cv_video", lambda m: m.decode(torch.zeros(1, 16, 1, 256, 256))),
        ("di_image", lambda m: m.tokenize(torch.zeros(1, 3, 2048, 2048))),
        ("ci_image", lambda m: m.decode(torch.zeros(1, 16, 256, 256))),
    ],
)
def test_oversized_frames_are_refused_before_any_work(models, case, call):
    with pytest.raises(ValueError, match=r"2048x2048 = 4,194,304 pixels exceed the tokenizer's max_frame_pixels = "
                                         r"2,088,960"):
        call(models[case])


def test_max_frame_pixels_can_be_raised_per_model(models):
    model = models["dv_video"]
    try:
        model.max_frame_pixels = 32 * 32
        with pytest.raises(ValueError, match="max_frame_pixels = 1,024"):
            model.tokenize(torch.zeros(1, 3, 1, 32, 40))
        model.max_frame_pixels = None
        with torch.no_grad():
            assert model.tokenize(torch.zeros(1, 3, 1, 32, 40)).shape == (1, 1, 4, 5)
    finally:
        del model.max_frame_pixels  # back to the class default


def test_generator_that_is_not_a_torch_generator_is_a_type_error(models):
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator.*got int"):
        models["cv_video"](torch.zeros(1, 3, 1, 32, 32), generator=42)
    with torch.no_grad():
        models["cv_video"](torch.zeros(1, 3, 1, 32, 32), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("flag", ["--max-frames", "--chunk-latent-frames"])
def test_tokenize_command_refuses_zero_frame_counts(flag, capsys):
    from cosmos_hf.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["tokenize", "--model", "m", "--video", "v.mp4", "--out", "o", flag, "0"])
    assert exit_info.value.code == 2
    assert "must be a positive integer (>= 1), got 0" in capsys.readouterr().err


def test_cv_layout_whose_decoder_cannot_undo_the_compression_is_refused():
    # 4x spatial with two levels: the reference layout never upsamples in the decoder's first block, so this decoder
    # returned 32x32 frames for 64x64 inputs; three levels build the intended model
    from cosmos_hf.tokenizers import from_config_name

    layout = dict(spatial_compression=4, channels=8, num_res_blocks=1, attn_resolutions=[])
    with pytest.raises(ValueError, match="add a level"):
        from_config_name("CV4x8x8", channels_mult=[1, 2], **layout)
    model = from_config_name("CV4x8x8", channels_mult=[1, 2, 2], **layout).eval()
    with torch.no_grad():
        latent = model.encode(torch.zeros(1, 3, 5, 32, 32)).latent_dist.mode()
        assert tuple(latent.shape) == (1, 16, 2, 8, 8)
        decoded = model.decode(latent)
    assert tuple(getattr(decoded, "sample", decoded).shape) == (1, 3, 5, 32, 32)
