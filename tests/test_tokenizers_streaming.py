"""Streaming (chunked causal) encode/decode equals whole-clip execution.

Tolerance: 2e-5 absolute on latents/reconstructions in float32 (float rounding of differently-batched convs);
discrete tokens identical.
"""

import pytest
import torch
from conftest import load_reference_case

from cosmos_hf.tokenizers import convert_tokenizer_checkpoint

STREAM_TOL = dict(rtol=0, atol=2e-5)


@pytest.fixture(scope="module")
def dv_model():
    kwargs, _, folder = load_reference_case("dv_video")
    return convert_tokenizer_checkpoint([folder / "state_dict.safetensors"], reference_config=kwargs)


@pytest.fixture(scope="module")
def cv_model():
    kwargs, _, folder = load_reference_case("cv_video")
    return convert_tokenizer_checkpoint([folder / "state_dict.safetensors"], reference_config=kwargs)


def _video(frames, size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, frames, size, size, generator=generator) * 2 - 1


@pytest.mark.parametrize("chunk_latent_frames", [1, 2, 3])
def test_dv_streaming_equals_whole_clip(dv_model, chunk_latent_frames):
    video = _video(17, 32)  # 5 latent frames at t4
    with torch.no_grad():
        dv_model.disable_streaming()
        pre_whole = dv_model.encode_pre_quant(video)
        codes = dv_model.encode(video).codes
        recon_whole = dv_model.decode(codes).sample
        dv_model.enable_streaming(chunk_latent_frames)
        pre_stream = dv_model.encode_pre_quant(video)
        recon_stream = dv_model.decode(codes).sample
        dv_model.disable_streaming()
    torch.testing.assert_close(pre_stream, pre_whole, **STREAM_TOL)
    torch.testing.assert_close(recon_stream, recon_whole, **STREAM_TOL)


@pytest.mark.parametrize("chunk_latent_frames", [1, 2])
def test_cv_streaming_equals_whole_clip(cv_model, chunk_latent_frames):
    video = _video(25, 16)  # 4 latent frames at t8
    with torch.no_grad():
        cv_model.disable_streaming()
        latent = cv_model.encode(video).latent_dist.mode()
        recon = cv_model.decode(latent).sample
        cv_model.enable_tiling(chunk_latent_frames)  # tiling really streams (diffusers' flags do nothing)
        latent_stream = cv_model.encode(video).latent_dist.mode()
        recon_stream = cv_model.decode(latent).sample
        cv_model.disable_tiling()
    torch.testing.assert_close(latent_stream, latent, **STREAM_TOL)
    torch.testing.assert_close(recon_stream, recon, **STREAM_TOL)


def test_streaming_single_frame_video_is_an_image(dv_model):
    video = _video(1, 32)
    with torch.no_grad():
        whole = dv_model.forward(video).sample
        dv_model.enable_streaming(1)
        streamed = dv_model.forward(video).sample
        dv_model.disable_streaming()
    assert whole.shape == (1, 3, 1, 32, 32)
    torch.testing.assert_close(streamed, whole, **STREAM_TOL)


def test_streaming_matches_diffusers_whole_clip_forward(cv_model):
    """Our executor (whole clip and streamed) against diffusers' own AutoencoderKLCosmos forward."""
    from diffusers import AutoencoderKLCosmos

    plain = AutoencoderKLCosmos(**{k: v for k, v in cv_model.config.items() if not k.startswith("_") and k != "legacy_mode"})
    plain.load_state_dict(cv_model.state_dict())
    video = _video(17, 16, seed=3)
    with torch.no_grad():
        reference = plain.decode(plain.encode(video).latent_dist.mode()).sample
        cv_model.enable_streaming(1)
        ours = cv_model.decode(cv_model.encode(video).latent_dist.mode()).sample
        cv_model.disable_streaming()
    torch.testing.assert_close(ours, reference, **STREAM_TOL)
