"""The diffusers skeleton every cosmos-hf diffusion pipeline shares (issue #20): `encode_prompt` / `prepare_latents`,
one EDM loop (`denoising_loop`) with diffusers' `callback_on_step_end` and `interrupt`, one meaning of
`guidance_scale`, and component type hints with which diffusers' `from_pipe` keeps every component.

Tiny random models (32x32, 9 frames); the numerics of each pipeline are checked in its own test file."""

import pytest
import torch
from diffusers import AutoencoderKLCosmos, EDMEulerScheduler

from cosmos_hf.diffusion.action_conditioning import CosmosActionConditionedTransformer3DModel
from cosmos_hf.diffusion.camera_control import CosmosCameraControlTransformer3DModel
from cosmos_hf.diffusion.diffusion_decoder import CosmosDVTokenEmbedder, decoder_scheduler
from cosmos_hf.diffusion.multiview import CosmosMultiViewTransformer3DModel
from cosmos_hf.diffusion.nano import tiny_cosmos_vae, tiny_t5_text_encoder, tiny_transformer
from cosmos_hf.diffusion.pixel_space import CosmosPixelSpaceAutoencoder
from cosmos_hf.diffusion.post_training import pipeline_from_video2world
from cosmos_hf.pipelines import (
    CosmosActionConditionedPipeline,
    CosmosCameraControlPipeline,
    CosmosDiffusionDecoderPipeline,
    CosmosMultiViewPipeline,
    CosmosText2WorldPipeline,
    CosmosVideo2WorldPipeline,
)
from cosmos_hf.pipelines.shared_weights import ReferencedAutoencoderKLCosmos

VIDEO = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 1, 32, 32)  # one conditioning frame


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def text_parts():
    return tiny_t5_text_encoder()


@pytest.fixture(scope="module")
def t2w(text_parts):
    tokenizer, encoder = text_parts
    return quiet(CosmosText2WorldPipeline(encoder, tokenizer, tiny_transformer(4, 16), tiny_cosmos_vae(4),
                                          EDMEulerScheduler(), default_height=32, default_width=32,
                                          default_num_frames=5, max_sequence_length=8, disable_safety_checker=True))


@pytest.fixture(scope="module")
def v2w(tiny_video2world_folder):
    return quiet(CosmosVideo2WorldPipeline.from_pretrained(tiny_video2world_folder, disable_safety_checker=True))


@pytest.fixture(scope="module")
def camera(v2w):
    transformer = CosmosCameraControlTransformer3DModel.from_video2world(v2w.transformer).eval()
    return quiet(pipeline_from_video2world(CosmosCameraControlPipeline, v2w, transformer, disable_safety_checker=True))


@pytest.fixture(scope="module")
def action(v2w):
    transformer = CosmosActionConditionedTransformer3DModel.from_video2world(
        v2w.transformer, action_dim=7, num_action_frames=8).eval()
    return quiet(pipeline_from_video2world(CosmosActionConditionedPipeline, v2w, transformer,
                                           disable_safety_checker=True))


@pytest.fixture(scope="module")
def multiview(v2w):
    transformer = CosmosMultiViewTransformer3DModel.from_video2world(
        v2w.transformer, num_views=2, view_embed_dim=4, trajectory_dim=0).eval()
    return quiet(pipeline_from_video2world(CosmosMultiViewPipeline, v2w, transformer, disable_safety_checker=True))


@pytest.fixture(scope="module")
def decoder(text_parts):
    tokenizer, encoder = text_parts
    torch.manual_seed(3)
    embedder = CosmosDVTokenEmbedder()
    torch.nn.init.normal_(embedder.embedding.weight)
    return quiet(CosmosDiffusionDecoderPipeline(
        encoder, tokenizer, tiny_transformer(latent_channels=4, in_channels=4 + 32), tiny_cosmos_vae(),
        decoder_scheduler(), embedder, default_fps=24, max_sequence_length=8, disable_safety_checker=True))


TOKENS = torch.randint(1, 64000, (1, 2, 4, 4), generator=seeded(7))  # a 2 x 4 x 4 latent grid

# name -> (fixture, call with seeded inputs, `steps` steps, guidance on so that the unconditional branch runs)
CALLS = {
    "text2world": ("t2w", lambda pipe, steps=2, **kw: pipe(
        "a red ball", num_inference_steps=steps, guidance_scale=2.0, output_type="pt", generator=seeded(), **kw)),
    "video2world": ("v2w", lambda pipe, steps=2, **kw: pipe(
        video=VIDEO, prompt="a cube", num_inference_steps=steps, guidance_scale=2.0, output_type="pt",
        generator=seeded(), **kw)),
    "camera": ("camera", lambda pipe, steps=2, **kw: pipe(
        video=VIDEO, prompt="a cube", camera_moves="turn_left", num_inference_steps=steps, guidance_scale=2.0,
        output_type="pt", generator=seeded(), **kw)),
    "action": ("action", lambda pipe, steps=2, **kw: pipe(
        video=VIDEO, actions=torch.zeros(12, 7), num_inference_steps=steps, guidance_scale=2.0, output_type="pt",
        generator=seeded(), **kw)),
    "multiview": ("multiview", lambda pipe, steps=2, **kw: pipe(
        ["a", "b"], video=torch.stack([VIDEO] * 2, 1), num_inference_steps=steps, guidance_scale=2.0,
        output_type="pt", generator=seeded(), **kw)),
    "decoder": ("decoder", lambda pipe, steps=2, **kw: pipe(
        tokens=TOKENS, prompt="a", num_inference_steps=steps, guidance_scale=1.8, output_type="pt",
        generator=seeded(), **kw)),
}


def count_transformer_calls(pipe):
    calls = []
    handle = pipe.transformer.register_forward_pre_hook(lambda module, args: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("name", CALLS)
def test_a_callback_that_edits_the_latents_changes_the_output(name, request):
    fixture, call = CALLS[name]
    pipe = request.getfixturevalue(fixture)
    run = lambda **kw: call(pipe, **kw).frames  # noqa: E731
    seen = []

    def shift_latents(pipeline, step, timestep, callback_kwargs):
        seen.append((step, sorted(callback_kwargs)))
        assert pipeline is pipe and pipeline.current_timestep == timestep
        return {"latents": callback_kwargs["latents"] + 0.5}

    plain = run()
    edited = run(callback_on_step_end=shift_latents)
    assert seen[:2] == [(0, ["latents"]), (1, ["latents"])]
    assert (edited - plain).abs().max() > 1e-3  # the returned latents are the ones sampled on
    assert torch.equal(run(), plain)  # and nothing of the edited call stays behind


@pytest.mark.parametrize("name", CALLS)
def test_setting_interrupt_in_a_callback_skips_the_remaining_steps(name, request):
    fixture, call = CALLS[name]
    pipe = request.getfixturevalue(fixture)
    run = lambda **kw: call(pipe, **kw).frames  # noqa: E731

    def stop(pipeline, step, timestep, callback_kwargs):
        pipeline._interrupt = True
        return callback_kwargs

    calls, handle = count_transformer_calls(pipe)
    try:
        full = run(steps=3)  # 3 steps: with 2, the last Euler step of these schedulers changes nothing
        per_call = len(calls)
        calls.clear()
        stopped = run(steps=3, callback_on_step_end=stop)
    finally:
        handle.remove()
    assert pipe.interrupt  # diffusers' property reads `_interrupt`
    assert len(calls) == 2  # the first step only: conditional + unconditional branch
    assert per_call >= 6
    if name == "action":  # 12 actions = two chunks; the rollout stops after the interrupted first one
        assert full.shape[1] == 13 and stopped.shape[1] == 9
    else:
        assert stopped.shape == full.shape and not torch.equal(stopped, full)
    run()
    assert not pipe.interrupt  # the next call starts afresh


def test_callback_tensor_inputs_are_diffusers_names_and_replacements_take_effect(t2w):
    seen = []

    def drop_text(pipeline, step, timestep, callback_kwargs):
        seen.append(sorted(callback_kwargs))
        return {"prompt_embeds": torch.zeros_like(callback_kwargs["prompt_embeds"])}

    names = ["latents", "prompt_embeds", "negative_prompt_embeds"]
    args = dict(num_inference_steps=3, guidance_scale=2.0, output_type="latent", generator=seeded())
    pipe = quiet(CosmosText2WorldPipeline(**t2w.components, default_height=32, default_width=32, default_num_frames=5,
                                          max_sequence_length=8, disable_safety_checker=True))
    edited = pipe("a red ball", callback_on_step_end=drop_text, callback_on_step_end_tensor_inputs=names,
                  **args).frames
    assert seen[0] == sorted(names)
    assert not torch.equal(edited, pipe("a red ball", **args).frames)  # steps 2 and 3 saw the zero text
    with pytest.raises(ValueError, match=r"callback_on_step_end_tensor_inputs may name .*got \['x0'\]"):
        pipe("a red ball", callback_on_step_end=drop_text, callback_on_step_end_tensor_inputs=["x0"], **args)


def test_the_loop_guides_with_the_cosmos_rule_and_each_pipeline_has_its_documented_switch(t2w, decoder):
    captured = []
    original_step = t2w.scheduler.step

    def capture(model_output, timestep, sample, **kwargs):
        captured.append(kwargs["pred_original_sample"])
        return original_step(model_output, timestep, sample, **kwargs)

    def branches(latents, sigma, text_embeds, conditional):
        return torch.full_like(latents, 1.0 if conditional else 0.5)

    t2w.scheduler.set_timesteps(2)
    t2w._guidance_scale, t2w._interrupt = 3.0, False
    t2w.scheduler.step = capture
    try:
        t2w.denoising_loop(torch.zeros(1, 4, 2, 4, 4), branches, torch.zeros(1, 8, 16), torch.zeros(1, 8, 16))
    finally:
        del t2w.scheduler.step
    torch.testing.assert_close(captured[0], torch.full((1, 4, 2, 4, 4), 1.0 + 3.0 * (1.0 - 0.5)))
    # guidance_scale 1: no guidance for the world pipelines (diffusers' Cosmos rule), guidance for the decoder
    # (the reference decoder's: only 0 switches it off)
    t2w._guidance_scale = decoder._guidance_scale = 1.0
    assert not t2w.do_classifier_free_guidance and decoder.do_classifier_free_guidance
    decoder._guidance_scale = 0.0
    assert not decoder.do_classifier_free_guidance


# ---------------------------------------------------------------------------------------------- encode_prompt
def test_encode_prompt_text2world_and_video2world(t2w, v2w):
    for pipe in (t2w, v2w):
        features = pipe._get_t5_prompt_embeds(["a red ball", "a cube"], 8)
        embeds, negative = pipe.encode_prompt(["a red ball", "a cube"], num_videos_per_prompt=2,
                                              max_sequence_length=8)
        torch.testing.assert_close(embeds, features.repeat_interleave(2, dim=0), rtol=0, atol=0)
        assert torch.equal(negative, torch.zeros_like(embeds))  # no negative prompt: "no text"
        _, negative = pipe.encode_prompt("a cube", negative_prompt="a ball", max_sequence_length=8)
        torch.testing.assert_close(negative, pipe._get_t5_prompt_embeds(["a ball"], 8), rtol=0, atol=0)
        assert pipe.encode_prompt("a cube", do_classifier_free_guidance=False, max_sequence_length=8)[1] is None
        with pytest.raises(ValueError, match="negative_prompt has 1 entries but there are 2 prompts"):
            pipe.encode_prompt(["a", "b"], negative_prompt=["c"], max_sequence_length=8)


def test_encode_prompt_multiview_lays_views_out_along_the_text(multiview):
    embeds, negative = multiview.encode_prompt([["a red ball", "a cube"]], max_sequence_length=8)
    per_view = multiview._get_t5_prompt_embeds(["a red ball", "a cube"], 8)
    torch.testing.assert_close(embeds, per_view.flatten(0, 1)[None], rtol=0, atol=0)  # [1, V*L, D]
    assert torch.equal(negative, torch.zeros_like(embeds))
    with pytest.raises(ValueError, match="one caption per view"):
        multiview.encode_prompt("a shared caption", max_sequence_length=8)


def test_encode_prompt_decoder_gives_float_text_and_zero_unconditional_text(decoder):
    embeds, negative = decoder.encode_prompt("a cube", batch_size=2, max_sequence_length=8)
    assert embeds.dtype == torch.float32 and embeds.shape == (2, 8, 16)
    torch.testing.assert_close(embeds, decoder._get_t5_prompt_embeds(["a cube"] * 2, 8), rtol=0, atol=0)
    assert torch.equal(negative, torch.zeros_like(embeds))
    with pytest.raises(ValueError, match="got 1 prompts for 2 token grids"):
        decoder.encode_prompt(["a"], batch_size=2)


# ---------------------------------------------------------------------------------------------- prepare_latents
def test_prepare_latents_text2world(t2w):
    latents = t2w.prepare_latents(1, None, 32, 32, 5, generator=seeded())
    sigma_max = t2w.scheduler.config.sigma_max
    torch.testing.assert_close(latents, torch.randn(1, 4, 2, 4, 4, generator=seeded()) * sigma_max, rtol=0, atol=0)
    given = torch.ones(1, 4, 2, 4, 4)
    assert torch.equal(t2w.prepare_latents(1, 4, 32, 32, 5, latents=given), given * sigma_max)
    with pytest.raises(ValueError, match=r"latents must have shape \(1, 4, 2, 4, 4\)"):
        t2w.prepare_latents(1, None, 32, 32, 5, latents=torch.ones(1, 4, 3, 4, 4))


@pytest.mark.parametrize("fixture", ["v2w", "camera", "action"])
def test_prepare_latents_video2world_encodes_then_draws_and_builds_both_branches(fixture, request):
    pipe = request.getfixturevalue(fixture)
    frames = torch.cat([VIDEO] * 5, dim=2)  # 5 frames = 2 latent frames of a x4 tokenizer
    latents, condition, uncondition = pipe.prepare_latents(frames, 1, None, 32, 32, 9, True, False,
                                                           generator=seeded(), augment_sigma=0.01)
    generator = seeded()
    encoded, num_cond = pipe.encode_conditioning(frames, 9, generator)  # the same draws, in the same order
    expected = torch.randn(1, 4, 3, 4, 4, generator=generator) * pipe.scheduler.config.sigma_max
    assert num_cond == 2
    torch.testing.assert_close(latents, expected, rtol=0, atol=0)
    torch.testing.assert_close(condition.latents, encoded, rtol=0, atol=0)
    assert condition.indicator[0, 0, :, 0, 0].tolist() == [1, 1, 0] and condition.mask.shape == (1, 1, 3, 4, 4)
    assert condition.augment_sigma.tolist() == [pytest.approx(0.01)] and condition.augment_noise is None
    assert uncondition is condition  # the unconditional branch sees the frames too ...
    _, _, dropped = pipe.prepare_latents(frames, 1, None, 32, 32, 9, True, True, generator=seeded())
    assert not dropped.mask.any() and not dropped.latents.any()  # ... unless input_frames_guidance
    assert pipe.prepare_latents(frames, 1, None, 32, 32, 9, False, generator=seeded())[2] is None


def test_prepare_latents_multiview_lays_views_out_along_time(multiview):
    views = torch.stack([VIDEO, -VIDEO], dim=1)  # [1, V=2, 3, 1, 32, 32]
    latents, conditioning, num_cond = multiview.prepare_latents(views, 1, 32, 32, 9, generator=seeded())
    assert latents.shape == conditioning.shape == (1, 4, 2 * 3, 4, 4) and num_cond == 1
    generator = seeded()
    encoded, _ = multiview.encode_conditioning(views.flatten(0, 1), 9, generator)  # [V, C, 3, h, w]
    torch.testing.assert_close(conditioning[:, :, 0], encoded[0:1, :, 0], rtol=0, atol=0)  # view 0, frame 0
    torch.testing.assert_close(conditioning[:, :, 3], encoded[1:2, :, 0], rtol=0, atol=0)  # view 1, frame 0
    expected = torch.randn(1, 4, 6, 4, 4, generator=generator) * multiview.scheduler.config.sigma_max
    torch.testing.assert_close(latents, expected, rtol=0, atol=0)
    _, text_only, num_cond = multiview.prepare_latents(None, 1, 32, 32, 9, generator=seeded())
    assert num_cond == 0 and not text_only.any()


def test_prepare_latents_decoder_starts_at_the_reference_noise_level(decoder):
    latents = decoder.prepare_latents(2, None, 3, 4, 4, generator=seeded())
    expected = torch.randn(2, 4, 3, 4, 4, generator=seeded()) * (80.0**2 + 1) ** 0.5  # reference init sigma
    torch.testing.assert_close(latents, expected)


# ---------------------------------------------------------------------------------------------- from_pipe
@pytest.mark.parametrize("vae_kind", ["diffusers", "referenced"])
def test_from_pipe_keeps_every_component_of_a_video2world_pipeline(v2w, vae_kind):
    base = v2w
    if vae_kind == "referenced":  # what the bundled nano pipelines load (weights shared with the tokenizer folder)
        base = CosmosVideo2WorldPipeline.from_pipe(v2w, vae=ReferencedAutoencoderKLCosmos.from_config(v2w.vae.config),
                                                   disable_safety_checker=True)
    assert type(base.vae) in (AutoencoderKLCosmos, ReferencedAutoencoderKLCosmos)
    transformer = CosmosCameraControlTransformer3DModel.from_video2world(base.transformer).eval()
    pipe = CosmosCameraControlPipeline.from_pipe(base, transformer=transformer, disable_safety_checker=True)
    assert type(pipe) is CosmosCameraControlPipeline and pipe.transformer is transformer
    for name in ("vae", "text_encoder", "tokenizer", "scheduler"):
        assert getattr(pipe, name) is getattr(base, name), name  # shared, not copied, not dropped
    assert pipe.config.default_guidance_scale == base.config.default_guidance_scale  # the base's config travels
    assert pipe.config.condition_frame_channels is True
    # and back: a plain Video2World pipeline again, whose DiT type is checked against the hint
    back = CosmosVideo2WorldPipeline.from_pipe(pipe, transformer=base.transformer, disable_safety_checker=True)
    assert back.vae is base.vae and back.transformer is base.transformer


def test_from_pipe_keeps_a_pixel_space_vae(text_parts):
    tokenizer, encoder = text_parts
    vae = CosmosPixelSpaceAutoencoder()
    base = CosmosText2WorldPipeline(encoder, tokenizer, tiny_transformer(3, 16), vae, EDMEulerScheduler(),
                                    disable_safety_checker=True)
    copy = CosmosText2WorldPipeline.from_pipe(base, disable_safety_checker=True)
    assert copy.vae is vae and copy.transformer is base.transformer


def test_pipeline_from_video2world_is_from_pipe_with_overrides(v2w):
    transformer = CosmosMultiViewTransformer3DModel.from_video2world(
        v2w.transformer, num_views=2, view_embed_dim=4, trajectory_dim=0).eval()
    pipe = pipeline_from_video2world(CosmosMultiViewPipeline, v2w, transformer, disable_safety_checker=True,
                                     default_fps=8)
    assert type(pipe) is CosmosMultiViewPipeline and pipe.transformer is transformer and pipe.vae is v2w.vae
    assert pipe.config.default_fps == 8 and pipe.config.default_height == v2w.config.default_height
    assert pipe.safety_checker is None
    # the guardrail is never taken over silently: without the opt-out the default guard is built
    from cosmos_hf.guardrails import CosmosSafetyChecker

    guarded = pipeline_from_video2world(CosmosMultiViewPipeline, v2w, transformer)
    assert isinstance(guarded.safety_checker, CosmosSafetyChecker)


def test_from_pipe_keeps_every_component_of_the_decoder_and_autoregressive_pipelines(decoder):
    from cosmos_hf import CosmosARConfig, CosmosARForCausalLM, CosmosARVideo2WorldPipeline
    from cosmos_hf.tokenizers.configs import from_config_name

    torch.manual_seed(0)
    dv = from_config_name("DV4x8x8", channels=8, channels_mult=[1, 2, 2], num_res_blocks=1, z_channels=16).eval()
    ar_model = CosmosARForCausalLM(CosmosARConfig(
        vocab_size=64000, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, latent_shape=[3, 2, 2])).eval()
    copy = CosmosDiffusionDecoderPipeline.from_pipe(decoder, dv_tokenizer=dv, disable_safety_checker=True)
    assert all(getattr(copy, name) is module for name, module in decoder.components.items() if name != "dv_tokenizer")
    ar = CosmosARVideo2WorldPipeline.from_components(ar_model, dv, diffusion_decoder=copy, disable_safety_checker=True)
    ar_copy = CosmosARVideo2WorldPipeline.from_pipe(ar, disable_safety_checker=True)
    assert all(getattr(ar_copy, name) is module for name, module in ar.components.items())
    assert ar_copy.decoder_vae is decoder.vae and ar_copy.decoder_token_embedder is decoder.token_embedder


def test_the_loop_checks_for_emulated_bf16_with_the_transformers_dtype(t2w, monkeypatch):
    import cosmos_hf.pipelines.pipeline_cosmos_text2world as module

    seen = []
    monkeypatch.setattr(module, "warn_if_emulated_bf16", lambda dtype, device, what: seen.append((dtype, device, what)))
    CALLS["text2world"][1](t2w, steps=1)
    assert seen == [(torch.float32, torch.device("cpu"),
                     "CosmosText2WorldPipeline's CosmosTransformer3DModel")]
