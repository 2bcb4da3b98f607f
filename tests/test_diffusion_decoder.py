"""Diffusion decoder of the autoregressive WFM, checked against the conventions of cosmos-predict1's decoder
(autoregressive/diffusion_decoder/{network,model,inference,utils}.py): zero-initialised 64,000 x 32 token table resized
per frame as torchvision does, DiT input [c_in * x | tokens] (+ padding mask) with no condition-mask channel, CFG whose
unconditional branch has zero text and token id 0, token-id dropout in training, the reference's sampler settings and
chunking (reflect-padded chunks, pixel-space seams) next to the time-aligned latent blend, and
`train_diffusion.py --condition dv_tokens` saving a loadable `CosmosDiffusionDecoderPipeline`."""

import importlib.util
import inspect
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import functional as TF

import cosmos_hf.diffusion.diffusion_decoder as decoder_module
from cosmos_hf.data import write_video
from cosmos_hf.diffusion.diffusion_decoder import (
    CosmosDiffusionDecoderPipeline,
    CosmosDVTokenEmbedder,
    DVTokenConditionedEDMObjective,
    blend_chunks,
    blend_pixel_chunks,
    chunk_starts,
    decoder_denoise,
    decoder_scheduler,
    drop_tokens,
    reference_chunk_starts,
    reflect_pad_frames,
    split_reference_token_embedder,
)
from cosmos_hf.diffusion.edm import edm_scalings
from cosmos_hf.diffusion.nano import tiny_cosmos_vae, tiny_t5_text_encoder, tiny_transformer

REPO = Path(__file__).resolve().parents[1]


def torchvision_token_condition(weight, tokens, size):
    """What the reference's network does: embed [B, T, H, W] ids, `(B T) D H W`, torchvision bilinear resize."""
    embedded = weight[tokens]  # [B, T, H, W, D]
    b, t = tokens.shape[:2]
    per_frame = embedded.reshape(b * t, *embedded.shape[2:]).permute(0, 3, 1, 2)
    resized = TF.resize(per_frame, list(size), interpolation=TF.InterpolationMode.BILINEAR)
    return resized.reshape(b, t, *resized.shape[1:]).permute(0, 2, 1, 3, 4)


def test_token_embedder_is_zero_initialised_and_resizes_each_frame_like_torchvision():
    embedder = CosmosDVTokenEmbedder()  # the reference sizes: 64,000 codes -> 32 channels
    assert embedder.embedding.weight.shape == (64000, 32)
    assert not embedder.embedding.weight.any()  # the reference zero-initialises net.token_embedder
    torch.manual_seed(0)
    torch.nn.init.normal_(embedder.embedding.weight)
    tokens = torch.randint(0, 64000, (2, 3, 4, 5))
    same = embedder(tokens, (3, 4, 5))
    assert same.shape == (2, 32, 3, 4, 5)
    assert torch.equal(same[1, :, 2, 3, 4], embedder.embedding.weight[tokens[1, 2, 3, 4]])
    with torch.no_grad():
        # DV8x16x16 tokens onto a CV8x8x8 grid: 2x in H and W, T untouched
        torch.testing.assert_close(embedder(tokens, (3, 8, 10)),
                                   torchvision_token_condition(embedder.embedding.weight, tokens, (8, 10)),
                                   rtol=0, atol=0)
        # a shrinking resize too (torchvision antialiases it), and bf16 (torchvision resizes in float32)
        torch.testing.assert_close(embedder(tokens, (3, 3, 3)),
                                   torchvision_token_condition(embedder.embedding.weight, tokens, (3, 3)),
                                   rtol=0, atol=0)
        half = CosmosDVTokenEmbedder().to(torch.bfloat16)
        half.embedding.weight.copy_(embedder.embedding.weight)
        torch.testing.assert_close(half(tokens, (3, 8, 10)),
                                   torchvision_token_condition(half.embedding.weight, tokens, (8, 10)), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"3 frames but the latent grid has 5.*only H and W"):
        embedder(tokens, (5, 8, 10))
    with pytest.raises(ValueError, match=r"DV token id 64000 out of range: valid ids are 0\.\.63999"):
        embedder(torch.full((1, 1, 2, 2), 64000))
    with pytest.raises(ValueError, match=r"\[batch, T, H, W\]"):
        embedder(torch.zeros(2, 2, 2, dtype=torch.long))


def test_reference_token_table_is_split_out_of_a_decoder_state_dict():
    table = torch.randn(64000, 32)
    state = {"net.token_embedder.weight": table, "net.x_embedder.proj.1.weight": torch.randn(8, (16 + 32 + 1) * 4)}
    embedder, rest = split_reference_token_embedder(state)
    assert torch.equal(embedder.embedding.weight, table) and list(rest) == ["net.x_embedder.proj.1.weight"]
    with pytest.raises(ValueError, match="token_embedder.weight"):
        split_reference_token_embedder(rest)


class RecordingDiT(torch.nn.Module):
    """Stands in for CosmosTransformer3DModel: records its inputs, returns a fixed function of them."""

    def __init__(self, in_channels):
        super().__init__()
        self.config = SimpleNamespace(in_channels=in_channels)
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, hidden_states, timestep, encoder_hidden_states, fps, condition_mask, padding_mask, return_dict):
        self.calls.append(dict(hidden_states=hidden_states, timestep=timestep, condition_mask=condition_mask,
                               encoder_hidden_states=encoder_hidden_states))
        return (hidden_states[:, :4] * 0.5 + hidden_states[:, 4:5],)


def test_decoder_denoise_feeds_latents_then_token_channels_and_no_condition_mask():
    dit = RecordingDiT(in_channels=4 + 32)
    noisy = torch.randn(1, 4, 2, 3, 3)
    tokens = torch.randn(1, 32, 2, 3, 3)
    sigma, sigma_data = 2.0, 0.5
    x0 = decoder_denoise(dit, noisy, sigma, torch.zeros(1, 2, 8), tokens, sigma_data=sigma_data)
    call = dit.calls[-1]
    c_skip, c_out, c_in, c_noise = edm_scalings(torch.tensor([sigma]), sigma_data)
    assert call["hidden_states"].shape[1] == 4 + 32
    torch.testing.assert_close(call["hidden_states"][:, :4], noisy * c_in)
    torch.testing.assert_close(call["hidden_states"][:, 4:], tokens)
    assert call["condition_mask"] is None  # the reference DiT (GeneralDIT) has no condition-mask channel
    torch.testing.assert_close(call["timestep"], c_noise)
    expected = c_skip * noisy + c_out * (noisy * c_in * 0.5 + tokens[:, :1])
    torch.testing.assert_close(x0, expected)
    # the layout of earlier cosmos-hf decoders (one more input channel) still runs: that channel is zeros
    legacy = RecordingDiT(in_channels=4 + 32 + 1)
    torch.testing.assert_close(decoder_denoise(legacy, noisy, sigma, torch.zeros(1, 2, 8), tokens), x0)
    assert legacy.calls[-1]["condition_mask"].shape == (1, 1, 2, 3, 3)
    assert not legacy.calls[-1]["condition_mask"].any()
    with pytest.raises(ValueError, match=r"in_channels=40; expected latent 4 \+ token 32 = 36"):
        decoder_denoise(RecordingDiT(in_channels=40), noisy, sigma, torch.zeros(1, 2, 8), tokens)
    with pytest.raises(ValueError, match="do not match latents"):
        decoder_denoise(dit, noisy, sigma, torch.zeros(1, 2, 8), tokens[:, :, :1])


def test_diffusers_dit_patch_embedding_reads_the_reference_channel_count():
    # reference build_patch_embed: 16 latent + 32 token + 1 padding mask (diffusers appends the padding mask)
    dit = tiny_transformer(latent_channels=4, in_channels=4 + 32)
    assert dit.patch_embed.proj.in_features == (4 + 32 + 1) * math.prod(dit.config.patch_size)
    x0 = decoder_denoise(dit, torch.randn(1, 4, 2, 4, 4), 1.0, torch.randn(1, 3, 16), torch.randn(1, 32, 2, 4, 4))
    assert x0.shape == (1, 4, 2, 4, 4) and torch.isfinite(x0).all()


def test_reference_sampler_and_inference_defaults():
    params = inspect.signature(CosmosDiffusionDecoderPipeline.__call__).parameters
    init = inspect.signature(CosmosDiffusionDecoderPipeline.__init__).parameters
    # guidance_scale=None resolves to the pipeline config's default_guidance_scale
    assert params["guidance_scale"].default is None and init["default_guidance_scale"].default == 1.8
    assert params["num_inference_steps"].default == 15 and init["chunk_blend"].default == "pixel"
    scheduler = decoder_scheduler()
    cfg = scheduler.config
    assert (cfg.sigma_min, cfg.sigma_max, cfg.sigma_data) == (0.02, 80.0, 0.5)
    assert (cfg.sigma_schedule, cfg.rho, cfg.final_sigmas_type) == ("karras", 7.0, "zero")
    assert scheduler.init_noise_sigma == pytest.approx(math.sqrt(80.0**2 + 1))
    scheduler.set_timesteps(15)
    assert scheduler.sigmas[0].item() == pytest.approx(80.0) and scheduler.sigmas[14].item() == pytest.approx(0.02)
    assert scheduler.sigmas[-1].item() == 0.0


def test_token_dropout_replaces_all_ids_of_a_sample_by_zero_and_the_zero_table_still_learns():
    tokens = torch.randint(1, 64000, (64, 2, 3, 3))
    dropped = drop_tokens(tokens, 0.5, torch.Generator().manual_seed(0))
    whole = (dropped == 0).flatten(1).all(1)
    kept = (dropped == tokens).flatten(1).all(1)
    assert torch.equal(whole | kept, torch.ones(64, dtype=torch.bool)) and 10 < int(whole.sum()) < 54
    assert torch.equal(drop_tokens(tokens, 0.0), tokens)

    class Recorder(CosmosDVTokenEmbedder):
        def forward(self, tokens, latent_size=None):
            self.seen = tokens
            return super().forward(tokens, latent_size)

    embedder = Recorder(vocab_size=64000, embedding_dim=32)
    objective = DVTokenConditionedEDMObjective({"text_dropout": 0.0}, token_dropout=0.5)
    dit = tiny_transformer(latent_channels=4, in_channels=4 + 32)
    latents, text = torch.randn(8, 4, 2, 4, 4), torch.randn(8, 3, 16)
    grid_tokens = torch.randint(1, 64000, (8, 2, 4, 4))
    out = objective(dit, latents, text, tokens=grid_tokens, token_embedder=embedder,
                    generator=torch.Generator().manual_seed(1))
    dropped = (embedder.seen == 0).flatten(1).all(1)
    assert dropped.any() and not dropped.all()  # some samples trained unconditionally (token id 0)
    out["loss"].backward()
    assert embedder.embedding.weight.grad[grid_tokens[~dropped].unique()].abs().sum() > 0
    objective.eval()
    objective(dit, latents, text, tokens=grid_tokens, token_embedder=embedder)
    assert torch.equal(embedder.seen, grid_tokens)  # no dropout outside training
    with pytest.raises(ValueError, match="token_dropout"):
        DVTokenConditionedEDMObjective({}, token_dropout=1.0)


def test_reference_chunking_reflect_padding_and_pixel_seams():
    # split_with_overlap: windows every chunk - overlap frames while more than `overlap` frames remain
    assert reference_chunk_starts(5, 8) == [0]  # the reference's 33-frame AR output: one (padded) chunk
    assert reference_chunk_starts(14, 8) == [0, 6]
    assert reference_chunk_starts(9, 8) == [0, 6]
    assert reference_chunk_starts(12, 5) == [0, 3, 6, 9]
    with pytest.raises(ValueError, match="overlap"):
        reference_chunk_starts(5, 2)
    # the padding equals F.pad(mode="reflect") wherever torch can do it, and keeps mirroring where it cannot
    x = torch.arange(5.0).view(1, 1, 5, 1, 1).expand(1, 2, 5, 2, 2)
    torch.testing.assert_close(reflect_pad_frames(x, 8, dim=2), F.pad(x, (0, 0, 0, 0, 0, 3), mode="reflect"))
    short = torch.arange(3).view(1, 3)
    assert reflect_pad_frames(short, 8).flatten().tolist() == [0, 1, 2, 1, 0, 1, 2, 1]
    assert reflect_pad_frames(short[:, :1], 3).flatten().tolist() == [0, 0, 0]
    # linear_blend_video_list: weights linspace(0, 1, D) over D pixel frames at each seam
    first = torch.arange(5.0).view(1, 1, 5, 1, 1)
    second = first + 10
    assert blend_pixel_chunks([first, second], 2).flatten().tolist() == [0, 1, 2, 3, 11, 12, 13, 14]
    assert blend_pixel_chunks([first, second], 3).flatten().tolist() == [0, 1, 2, 7, 12, 13, 14]
    assert blend_pixel_chunks([first, second, first], 2).shape[2] == 3 * 5 - 2 * 2


def test_latent_chunks_overlap_two_frames_and_blend_linearly():
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


def untrained_pipeline(**config):
    tokenizer, text_encoder = tiny_t5_text_encoder()
    torch.manual_seed(3)
    embedder = CosmosDVTokenEmbedder()
    torch.nn.init.normal_(embedder.embedding.weight)  # a non-zero table, so code 0 is distinguishable
    pipe = CosmosDiffusionDecoderPipeline(
        text_encoder, tokenizer, tiny_transformer(latent_channels=4, in_channels=4 + 32), tiny_cosmos_vae(),
        decoder_scheduler(), embedder, default_fps=24, max_sequence_length=8, disable_safety_checker=True, **config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_guidance_unconditional_branch_gets_zero_text_and_token_id_zero(monkeypatch):
    pipe = untrained_pipeline()
    calls = []
    original = decoder_module.decoder_denoise

    def recording(transformer, latents, sigma, text, token_channels, *args, **kwargs):
        calls.append(dict(text=text.clone(), tokens=token_channels.clone(), latents=latents.clone()))
        return original(transformer, latents, sigma, text, token_channels, *args, **kwargs)

    monkeypatch.setattr(decoder_module, "decoder_denoise", recording)
    tokens = torch.randint(1, 64000, (1, 2, 4, 4))  # grids agree without a DV tokenizer: 2 x 4 x 4 latents
    pipe(tokens=tokens, prompt="a red cube falls", num_inference_steps=2, output_type="latent",
         generator=torch.Generator().manual_seed(0))
    assert len(calls) == 4  # conditional + unconditional at each of 2 steps
    # sampling starts from randn * init_noise_sigma (sqrt(80^2 + 1)), as the reference's loop
    start = torch.randn(1, 4, 2, 4, 4, generator=torch.Generator().manual_seed(0)) * math.sqrt(80.0**2 + 1)
    torch.testing.assert_close(calls[0]["latents"], start, rtol=0, atol=0)
    cond, uncond = calls[0], calls[1]
    assert cond["text"].abs().sum() > 0 and not uncond["text"].any()
    torch.testing.assert_close(cond["tokens"], pipe.token_embedder(tokens, (2, 4, 4)))
    row0 = pipe.token_embedder.embedding.weight[0].detach().view(1, 32, 1, 1, 1).expand(1, 32, 2, 4, 4)
    torch.testing.assert_close(uncond["tokens"], row0)  # the embedding of code 0, not zero channels
    calls.clear()
    pipe(tokens=tokens, num_inference_steps=2, guidance_scale=0.0, output_type="latent")
    assert len(calls) == 2  # guidance 0: conditional branch only
    with pytest.raises(ValueError, match=r"guidance_scale must be >= 0"):
        pipe(tokens=tokens, guidance_scale=-1.0)
    with pytest.raises(ValueError, match="chunk_blend must be one of"):
        pipe(tokens=tokens, chunk_blend="pixels")


def test_a_generator_list_must_hold_one_generator_per_token_grid():
    pipe = untrained_pipeline()
    tokens = torch.randint(1, 64000, (2, 2, 4, 4))
    generators = [torch.Generator().manual_seed(seed) for seed in range(3)]
    # 3 generators for 2 grids used to be accepted (the third silently unused), as the world pipelines refuse it
    with pytest.raises(ValueError, match="got 3 generators for a batch of 2 videos"):
        pipe(tokens=tokens, num_inference_steps=1, output_type="latent", generator=generators)
    out = pipe(tokens=tokens, num_inference_steps=1, output_type="latent", generator=generators[:2]).frames
    assert out.shape == (2, 4, 2, 4, 4)


def test_pixel_chunks_are_padded_to_the_chunk_length_and_cut_to_the_grid(monkeypatch):
    pipe = untrained_pipeline(chunk_latent_frames=4)
    seen = []
    original = pipe.token_embedder.forward

    def recording(tokens, latent_size=None):
        seen.append(tokens.clone())
        return original(tokens, latent_size)

    monkeypatch.setattr(pipe.token_embedder, "forward", recording)
    tokens = torch.randint(1, 64000, (1, 3, 4, 4))
    run = lambda **kw: pipe(tokens=tokens, num_inference_steps=1, output_type="pt",
                            generator=torch.Generator().manual_seed(0), **kw).frames
    video = run()
    # one chunk of 4 latent frames: the 3 token frames mirrored about the last one, as F.pad(mode="reflect")
    assert torch.equal(seen[0], tokens[:, [0, 1, 2, 1]])
    assert video.shape == (1, 1 + 2 * 4, 3, 32, 32)  # cut to the 3-latent-frame grid's 9 frames
    latents = pipe(tokens=tokens, num_inference_steps=1, output_type="latent",
                   generator=torch.Generator().manual_seed(0)).frames
    assert latents.shape == (1, 4, 3, 4, 4)
    seen.clear()
    aligned = run(chunk_blend="latent")  # the fix: no padding, the 3 frames are one window
    assert torch.equal(seen[0], tokens) and aligned.shape == video.shape
    with pytest.raises(ValueError, match="no latent output"):
        pipe(tokens=torch.randint(1, 64000, (1, 6, 4, 4)), num_inference_steps=1, output_type="latent")


def _falling_cube_clips(root):
    for index in range(2):
        frames = np.zeros((9, 32, 32, 3), np.uint8)
        for t in range(9):
            frames[t, 2 + 3 * t : 8 + 3 * t, 4 + 6 * index : 10 + 6 * index] = (220, 30, 30)
        write_video(root / "clips" / "videos" / f"clip{index}.mp4", frames, fps=24)
        (root / "clips" / "metas").mkdir(exist_ok=True)
        (root / "clips" / "metas" / f"clip{index}.txt").write_text("a red cube falls")
    return root / "clips"


def _train_diffusion_script():
    spec = importlib.util.spec_from_file_location("train_diffusion", REPO / "training" / "train_diffusion.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


TINY_DECODER_CONFIG = REPO / "training" / "configs" / "autoregressive_diffusion_decoder_tiny.yaml"


@pytest.fixture(scope="module")
def trained_decoder(tmp_path_factory):
    """2 steps of `train_diffusion.py --condition dv_tokens` on two 9-frame clips (in process)."""
    root = tmp_path_factory.mktemp("decoder")
    clips = _falling_cube_clips(root)
    args = ["--config", str(TINY_DECODER_CONFIG), "--output_dir", str(root / "run"), "--set", f"data.path={clips}",
            "--set", "validation.prompts=[]"]
    assert _train_diffusion_script().main(args) == 0
    return root / "run"


def test_decoder_training_caches_latents_with_the_dv_tokens_and_refuses_a_cache_of_other_data(tmp_path):
    from safetensors import safe_open

    script = _train_diffusion_script()
    clips = _falling_cube_clips(tmp_path)
    args = ["--config", str(TINY_DECODER_CONFIG), "--output_dir", str(tmp_path / "run"), "--set", f"data.path={clips}",
            "--set", "validation.prompts=[]", "--set", "data.cache_latents=true", "--max_train_steps", "1"]
    assert script.main(args) == 0
    with safe_open(str(tmp_path / "run" / "latent_cache.safetensors"), "pt") as cache:
        assert set(cache.keys()) == {"latents", "text", "tokens"}
        tokens, metadata = cache.get_tensor("tokens"), cache.metadata()
    assert tokens.shape == (2, 2, 4, 4)  # 2 clips of 5 frames at 32x32 -> [2, 4, 4] DV tokens each
    assert metadata["dv_tokenizer"] == '"tiny"' and metadata["num_frames"] == "5"
    pipe = CosmosDiffusionDecoderPipeline.from_pretrained(tmp_path / "run" / "pipeline")
    assert pipe.transformer.config.in_channels == 4 + 32
    for checkpoint in (tmp_path / "run").glob("checkpoint-*"):  # a new run beside the last one's is refused
        shutil.rmtree(checkpoint)
    with pytest.raises(ValueError, match=r"made for other data or encoders \(height: cache 32 vs config 64"):
        script.main([*args[:-2], "--set", "data.height=64", "--set", "data.width=64", "--max_train_steps", "2"])


def test_train_diffusion_condition_dv_tokens_saves_a_loadable_decoder(trained_decoder):
    from diffusers import DiffusionPipeline

    pipe = CosmosDiffusionDecoderPipeline.from_pretrained(trained_decoder / "pipeline")
    assert pipe.transformer.config.in_channels == 4 + 32  # tiny CV latents (4) + token embedding; no mask channel
    assert pipe.token_embedder.config.embedding_dim == 32 and pipe.token_embedder.config.vocab_size == 64000
    assert pipe.scheduler.config.sigma_min == 0.02 and pipe.scheduler.config.final_sigmas_type == "zero"
    assert pipe.config.chunk_blend == "pixel" and pipe.config.chunk_overlap == 2
    # the zero-initialised table was trained with the DiT (rows of the clips' tokens moved away from zero)
    assert pipe.token_embedder.embedding.weight.abs().sum() > 0
    loaded = DiffusionPipeline.from_pretrained(trained_decoder / "pipeline", trust_remote_code=True)
    assert type(loaded) is CosmosDiffusionDecoderPipeline

    pipe.set_progress_bar_config(disable=True)
    video = torch.rand(1, 3, 17, 32, 32) * 2 - 1  # -> 5 x 4 x 4 DV tokens -> 5 x 4 x 4 CV latents
    tokens = pipe.dv_tokenizer.tokenize(video)
    run = lambda **kw: pipe(tokens=tokens, num_inference_steps=2, output_type="pt",
                            generator=torch.Generator().manual_seed(0), **kw).frames
    whole = run()
    pixel_chunks, latent_chunks = run(chunk_latent_frames=3), run(chunk_latent_frames=3, chunk_blend="latent")
    assert whole.shape == pixel_chunks.shape == latent_chunks.shape == (1, 17, 3, 32, 32)
    torch.testing.assert_close(run(), whole)  # seeded
    torch.testing.assert_close(run(chunk_blend="latent"), whole)  # one chunk: both modes are the same decode
    assert not torch.equal(whole, pixel_chunks) and not torch.equal(pixel_chunks, latent_chunks)
    # the tokens condition the output: a code whose row was trained vs one whose row is still zero
    row_norms = pipe.token_embedder.embedding.weight.abs().sum(1)
    trained_code, untouched_code = int(row_norms.argmax()), int(row_norms.argmin())
    assert row_norms[untouched_code] == 0 < row_norms[trained_code]
    decode = lambda code: pipe(tokens=torch.full_like(tokens, code), num_inference_steps=2,
                               output_type="pt", generator=torch.Generator().manual_seed(0)).frames
    assert not torch.allclose(decode(trained_code), decode(untouched_code))
    with pytest.raises(ValueError, match="max_size|chunk"):
        pipe(tokens=tokens.repeat(1, 4, 1, 1), num_inference_steps=1, output_type="pt")
