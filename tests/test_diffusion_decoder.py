"""Diffusion decoder of the autoregressive WFM: DV token embedding + resize, the 16 + 32 + 1 channel layout fed to
the DiT, EDM preconditioning, chunked decoding with 2-frame overlap blending, and `train_diffusion.py --condition
dv_tokens` saving a loadable `CosmosDiffusionDecoderPipeline`."""

import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from cosmos_hf.data import write_video
from cosmos_hf.diffusion.diffusion_decoder import (
    CosmosDiffusionDecoderPipeline,
    CosmosDVTokenEmbedder,
    blend_chunks,
    chunk_starts,
    decoder_denoise,
)
from cosmos_hf.diffusion.edm import edm_scalings

REPO = Path(__file__).resolve().parents[1]


def test_token_embedder_looks_up_rows_and_resizes_bilinearly():
    torch.manual_seed(0)
    embedder = CosmosDVTokenEmbedder()  # the reference sizes: 64,000 codes -> 32 channels
    assert embedder.embedding.weight.shape == (64000, 32)
    tokens = torch.randint(0, 64000, (2, 3, 4, 5))
    same = embedder(tokens)
    assert same.shape == (2, 32, 3, 4, 5)
    assert torch.equal(same[1, :, 2, 3, 4], embedder.embedding.weight[tokens[1, 2, 3, 4]])
    # DV8x16x16 tokens onto a CV8x8x8 grid: 2x spatially, same T; bilinear per frame, time untouched
    up = embedder(tokens, (3, 8, 10))
    expected = torch.nn.functional.interpolate(same[:, :, 1], size=(8, 10), mode="bilinear", align_corners=False)
    torch.testing.assert_close(up[:, :, 1], expected)
    with pytest.raises(ValueError, match=r"DV token id 64000 out of range: valid ids are 0\.\.63999"):
        embedder(torch.full((1, 1, 2, 2), 64000))
    with pytest.raises(ValueError, match=r"\[batch, T, H, W\]"):
        embedder(torch.zeros(2, 2, 2, dtype=torch.long))


class RecordingDiT(torch.nn.Module):
    """Stands in for CosmosTransformer3DModel: records its inputs, returns a fixed function of them."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, hidden_states, timestep, encoder_hidden_states, fps, condition_mask, padding_mask, return_dict):
        self.calls.append(dict(hidden_states=hidden_states, timestep=timestep, condition_mask=condition_mask))
        return (hidden_states[:, :4] * 0.5 + hidden_states[:, 4:5],)


def test_decoder_denoise_channel_layout_and_edm_preconditioning():
    dit = RecordingDiT()
    noisy = torch.randn(1, 4, 2, 3, 3)
    tokens = torch.randn(1, 32, 2, 3, 3)
    sigma, sigma_data = 2.0, 0.5
    x0 = decoder_denoise(dit, noisy, sigma, torch.zeros(1, 2, 8), tokens, sigma_data=sigma_data)
    call = dit.calls[-1]
    c_skip, c_out, c_in, c_noise = edm_scalings(torch.tensor([sigma]), sigma_data)
    assert call["hidden_states"].shape[1] == 4 + 32  # + the condition-mask channel passed separately (zeros)
    torch.testing.assert_close(call["hidden_states"][:, :4], noisy * c_in)
    torch.testing.assert_close(call["hidden_states"][:, 4:], tokens)
    assert call["condition_mask"].shape == (1, 1, 2, 3, 3) and not call["condition_mask"].any()
    torch.testing.assert_close(call["timestep"], c_noise)
    expected = c_skip * noisy + c_out * (noisy * c_in * 0.5 + tokens[:, :1])
    torch.testing.assert_close(x0, expected)
    with pytest.raises(ValueError, match="do not match latents"):
        decoder_denoise(dit, noisy, sigma, torch.zeros(1, 2, 8), tokens[:, :, :1])


def test_chunks_overlap_two_frames_and_blend_linearly():
    assert chunk_starts(5, 5) == [0]
    assert chunk_starts(12, 5) == [0, 3, 6, 7]
    starts = chunk_starts(8, 5)
    assert starts == [0, 3]  # frames 3 and 4 are shared
    zeros, ones = torch.zeros(1, 1, 5, 1, 1), torch.ones(1, 1, 5, 1, 1)
    merged = blend_chunks([zeros, ones], starts, 8).flatten().tolist()
    assert merged == pytest.approx([0, 0, 0, 1 / 3, 2 / 3, 1, 1, 1])
    constant = blend_chunks([ones * 3] * 4, chunk_starts(12, 5), 12)
    torch.testing.assert_close(constant, torch.full((1, 1, 12, 1, 1), 3.0))
    with pytest.raises(ValueError, match="overlap"):
        chunk_starts(5, 2)


def test_reference_inference_defaults():
    params = inspect.signature(CosmosDiffusionDecoderPipeline.__call__).parameters
    assert params["guidance_scale"].default == 1.8 and params["num_inference_steps"].default == 15


@pytest.fixture(scope="module")
def trained_decoder(tmp_path_factory):
    """2 steps of `train_diffusion.py --condition dv_tokens` on three 9-frame clips (in process)."""
    root = tmp_path_factory.mktemp("decoder")
    for index in range(2):
        frames = np.zeros((9, 32, 32, 3), np.uint8)
        for t in range(9):
            frames[t, 2 + 3 * t : 8 + 3 * t, 4 + 6 * index : 10 + 6 * index] = (220, 30, 30)
        write_video(root / "clips" / "videos" / f"clip{index}.mp4", frames, fps=24)
        (root / "clips" / "metas").mkdir(exist_ok=True)
        (root / "clips" / "metas" / f"clip{index}.txt").write_text("a red cube falls")
    spec = importlib.util.spec_from_file_location("train_diffusion", REPO / "training" / "train_diffusion.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    config = REPO / "training" / "configs" / "autoregressive_diffusion_decoder_tiny.yaml"
    args = ["--config", str(config), "--output_dir", str(root / "run"), "--set", f"data.path={root / 'clips'}",
            "--set", "validation.prompts=[]"]
    assert script.main(args) == 0
    return root / "run"


def test_train_diffusion_condition_dv_tokens_saves_a_loadable_decoder(trained_decoder):
    from diffusers import DiffusionPipeline

    pipe = CosmosDiffusionDecoderPipeline.from_pretrained(trained_decoder / "pipeline")
    assert pipe.transformer.config.in_channels == 4 + 32 + 1  # tiny CV latents (4) + token embedding + mask
    assert pipe.token_embedder.config.embedding_dim == 32 and pipe.token_embedder.config.vocab_size == 64000
    # the embedder was trained with the DiT (rows of the clips' tokens moved away from a fresh init)
    fresh = CosmosDVTokenEmbedder()
    assert not torch.equal(fresh.embedding.weight, pipe.token_embedder.embedding.weight)
    loaded = DiffusionPipeline.from_pretrained(trained_decoder / "pipeline", trust_remote_code=True)
    assert type(loaded) is CosmosDiffusionDecoderPipeline

    pipe.set_progress_bar_config(disable=True)
    video = torch.rand(1, 3, 17, 32, 32) * 2 - 1  # -> 5 x 4 x 4 DV tokens -> 5 x 4 x 4 CV latents
    tokens = pipe.dv_tokenizer.tokenize(video)
    run = lambda **kw: pipe(tokens=tokens, num_inference_steps=2, output_type="pt",  # noqa: E731
                            generator=torch.Generator().manual_seed(0), **kw).frames
    whole, chunked = run(), run(chunk_latent_frames=3)
    assert whole.shape == chunked.shape == (1, 17, 3, 32, 32)
    torch.testing.assert_close(run(), whole)  # seeded
    assert not torch.equal(whole, chunked)  # chunks use their own noise
    # the tokens condition the output
    other = pipe(tokens=(tokens + 1) % 64000, num_inference_steps=2, output_type="pt",
                 generator=torch.Generator().manual_seed(0)).frames
    assert not torch.allclose(other, whole)
    with pytest.raises(ValueError, match="max_size|chunk"):
        pipe(tokens=tokens.repeat(1, 4, 1, 1), num_inference_steps=1, output_type="pt")
