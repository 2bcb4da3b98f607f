"""Text2World / Video2World pipelines: numerically diffusers' Cosmos pipelines, Hub-layout save/load, determinism,
output types, pluggable safety checker that cannot be skipped by accident, clear errors for bad inputs (where
diffusers returns a black or saturated video)."""

import numpy as np
import pytest
import torch
from diffusers import CosmosTextToWorldPipeline, CosmosVideoToWorldPipeline, DiffusionPipeline, EDMEulerScheduler

from cosmos_hf.diffusion.nano import tiny_cosmos_vae, tiny_t5_text_encoder, tiny_transformer
from cosmos_hf.diffusion.pixel_space import CosmosPixelSpaceAutoencoder
from cosmos_hf.pipelines.pipeline_cosmos_text2world import CosmosText2WorldPipeline
from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline


class PassThroughChecker:
    """diffusers' pipelines refuse to run without a checker; this one lets everything through."""

    def to(self, *args, **kwargs):
        return self

    def check_text_safety(self, prompt):
        return True

    def check_video_safety(self, video):
        return video


def scheduler():
    return EDMEulerScheduler(sigma_max=80.0, sigma_min=0.002, sigma_data=0.5, final_sigmas_type="sigma_min")


@pytest.fixture(scope="module")
def text_parts():
    return tiny_t5_text_encoder()


def make_t2w(text_parts, **kwargs):
    tokenizer, encoder = text_parts
    pipe = CosmosText2WorldPipeline(encoder, tokenizer, tiny_transformer(4, 16), tiny_cosmos_vae(4), scheduler(),
                                    default_height=32, default_width=32, default_num_frames=5,
                                    max_sequence_length=8, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_v2w(text_parts, vae=None, **kwargs):
    tokenizer, encoder = text_parts
    vae = vae or tiny_cosmos_vae(4)
    pipe = CosmosVideo2WorldPipeline(encoder, tokenizer, tiny_transformer(vae.config.latent_channels, 16,
                                                                          video2world=True),
                                     vae, scheduler(), default_height=32, default_width=32, default_num_frames=9,
                                     max_sequence_length=8, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_text2world_equals_diffusers_pipeline(text_parts):
    # prompt_embeds and latent output skip our guard, so they need the explicit opt-out
    pipe = make_t2w(text_parts, disable_safety_checker=True)
    reference = CosmosTextToWorldPipeline(pipe.text_encoder, pipe.tokenizer, pipe.transformer, pipe.vae,
                                          pipe.scheduler, safety_checker=PassThroughChecker())
    reference.set_progress_bar_config(disable=True)
    embeds = pipe._get_t5_prompt_embeds(["a red ball falls"], 8)
    negative = pipe._get_t5_prompt_embeds(["blue cube"], 8)
    args = dict(prompt_embeds=embeds, negative_prompt_embeds=negative, height=32, width=32, num_frames=5,
                num_inference_steps=3, guidance_scale=3.0)
    ours = pipe(generator=seeded(), output_type="latent", **args).frames
    theirs = reference(generator=seeded(), output_type="latent", **args).frames
    assert ours.shape == (1, 4, 2, 4, 4)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    # decoded: diffusers' checker path rounds frames down to uint8 levels, ours without a checker does not
    ours = pipe(generator=seeded(), output_type="pt", **args).frames
    theirs = reference(generator=seeded(), output_type="pt", **args).frames
    assert ours.shape == (1, 5, 3, 32, 32)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("guidance_scale,augment_sigma", [(1.0, 0.001), (3.0, 0.001), (3.0, 5.0)])
def test_video2world_equals_diffusers_pipeline(text_parts, guidance_scale, augment_sigma):
    pipe = make_v2w(text_parts, disable_safety_checker=True)
    reference = CosmosVideoToWorldPipeline(pipe.text_encoder, pipe.tokenizer, pipe.transformer, pipe.vae,
                                           pipe.scheduler, safety_checker=PassThroughChecker())
    reference.set_progress_bar_config(disable=True)
    video = [np.random.default_rng(i).random((32, 32, 3)).astype(np.float32) for i in range(5)]
    args = dict(video=video, prompt_embeds=pipe._get_t5_prompt_embeds(["a red ball"], 8),
                negative_prompt_embeds=pipe._get_t5_prompt_embeds(["green cube"], 8), height=32, width=32,
                num_frames=9, num_inference_steps=3, guidance_scale=guidance_scale, augment_sigma=augment_sigma)
    ours = pipe(generator=seeded(), output_type="latent", **args).frames
    theirs = reference(generator=seeded(), output_type="latent", **args).frames
    assert ours.shape == (1, 4, 3, 4, 4)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_save_pretrained_round_trips_to_the_same_class_and_output(text_parts, tmp_path):
    pipe = make_t2w(text_parts)
    expected = pipe("a red ball falls", num_inference_steps=2, generator=seeded(), output_type="np").frames
    pipe.save_pretrained(tmp_path / "t2w")
    assert (tmp_path / "t2w" / "pipeline.py").is_file()
    for loaded in (DiffusionPipeline.from_pretrained(tmp_path / "t2w", trust_remote_code=True),
                   CosmosText2WorldPipeline.from_pretrained(tmp_path / "t2w")):
        assert type(loaded) is CosmosText2WorldPipeline
        assert loaded.config.default_num_frames == 5 and loaded.config.max_sequence_length == 8
        loaded.set_progress_bar_config(disable=True)
        got = loaded("a red ball falls", num_inference_steps=2, generator=seeded(), output_type="np").frames
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_pixel_space_video2world_round_trip_keeps_options(text_parts, tmp_path):
    vae = CosmosPixelSpaceAutoencoder(latents_mean=[0.0] * 3, latents_std=[0.5] * 3)
    pipe = make_v2w(text_parts, vae=vae, residual_from_last_condition_frame=True)
    video = torch.rand(1, 3, 1, 32, 32) * 2 - 1
    expected = pipe(video=video, prompt="a ball", num_inference_steps=2, generator=seeded(), output_type="pt").frames
    pipe.save_pretrained(tmp_path / "v2w")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "v2w", trust_remote_code=True)
    assert type(loaded) is CosmosVideo2WorldPipeline and loaded.config.residual_from_last_condition_frame
    assert isinstance(loaded.vae, CosmosPixelSpaceAutoencoder)
    loaded.set_progress_bar_config(disable=True)
    got = loaded(video=video, prompt="a ball", num_inference_steps=2, generator=seeded(), output_type="pt").frames
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    # the first output frame reproduces the conditioning frame
    assert (got[0, 0] - (video[0, :, 0] + 1) / 2).abs().max() < 0.02


def test_default_guidance_scale_comes_from_the_saved_config(text_parts, tmp_path):
    pipe = make_v2w(text_parts, default_guidance_scale=1.0)
    video = torch.rand(1, 3, 1, 32, 32) * 2 - 1
    args = dict(video=video, prompt="a ball", num_inference_steps=2, output_type="pt")
    unguided = pipe(generator=seeded(), guidance_scale=1.0, **args).frames
    guided = pipe(generator=seeded(), guidance_scale=3.0, **args).frames
    assert (unguided - guided).abs().max() > 1e-4
    pipe.save_pretrained(tmp_path / "v2w")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "v2w", trust_remote_code=True)
    assert loaded.config.default_guidance_scale == 1.0
    loaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(loaded(generator=seeded(), **args).frames, unguided, rtol=0, atol=1e-6)
    # without a saved value the default stays diffusers' 7.0
    assert make_t2w(text_parts).config.default_guidance_scale == 7.0


def test_guidance_min_sigma_guides_only_the_steps_at_or_above_it(text_parts, tmp_path):
    pipe = make_v2w(text_parts)
    video = torch.rand(1, 3, 1, 32, 32) * 2 - 1
    args = dict(video=video, prompt="a ball", num_inference_steps=3, output_type="pt")
    calls = []
    denoise = pipe.transformer.forward
    pipe.transformer.forward = lambda *a, **k: calls.append(1) or denoise(*a, **k)
    unguided = pipe(generator=seeded(), guidance_scale=1.0, **args).frames
    assert len(calls) == 3
    guided = pipe(generator=seeded(), guidance_scale=3.0, **args).frames
    assert len(calls) == 3 + 6  # both branches at every step
    sigmas = pipe.scheduler.sigmas[:3].tolist()  # 80, ~4.9, 0.002: a bound between the first two guides one step
    first_only = pipe(generator=seeded(), guidance_scale=3.0, guidance_min_sigma=(sigmas[0] + sigmas[1]) / 2,
                      **args).frames
    assert len(calls) == 9 + 4
    none = pipe(generator=seeded(), guidance_scale=3.0, guidance_min_sigma=sigmas[0] + 1, **args).frames
    torch.testing.assert_close(none, unguided, rtol=0, atol=0)
    assert (first_only - guided).abs().max() > 1e-4 and (first_only - unguided).abs().max() > 1e-4
    torch.testing.assert_close(pipe(generator=seeded(), guidance_scale=3.0, guidance_min_sigma=0, **args).frames,
                               guided, rtol=0, atol=0)
    with pytest.raises(ValueError, match="guidance_min_sigma must be >= 0"):
        pipe(generator=seeded(), guidance_scale=3.0, guidance_min_sigma=-1.0, **args)
    pipe.transformer.forward = denoise


def test_condition_detail_transfer_adds_what_the_tokenizer_loses_of_the_last_frame(text_parts, tmp_path):
    pipe = make_v2w(text_parts)
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    args = dict(video=video, prompt="a ball", num_inference_steps=2, guidance_scale=1.0)
    guard, pipe.safety_checker = pipe.safety_checker, None  # latent output needs the guard switched off explicitly
    latents = pipe(generator=seeded(), output_type="latent", **args).frames
    pipe.safety_checker = guard
    transferred = pipe(generator=seeded(), output_type="pt", condition_detail_transfer=True, **args).frames
    detail = pipe.condition_detail(video, 9)
    assert detail.shape == (1, 3, 9, 32, 32) and detail.abs().mean() > 1e-3  # the tiny tokenizer is lossy
    decoded = pipe.vae.decode(pipe.denormalize_latents(latents)).sample
    expected = ((decoded + detail).clamp(-1, 1) + 1) / 2
    # (the default guardrail passes frames through uint8: one level of difference)
    torch.testing.assert_close(transferred, expected.permute(0, 2, 1, 3, 4), rtol=0, atol=1 / 255 + 1e-6)
    # the saved default applies when the call passes None
    pipe.register_to_config(default_condition_detail_transfer=True)
    pipe.save_pretrained(tmp_path / "v2w")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "v2w", trust_remote_code=True)
    loaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(loaded(generator=seeded(), output_type="pt", **args).frames, transferred,
                               rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="condition_detail_transfer works on decoded frames"):
        loaded(output_type="latent", **args)


def still_frame_detail(pipe, num_frames=9):
    """A random 5-frame conditioning video, the still video of its last frame, the ungated detail and the round trip."""
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    still = video[:, :, -1:].expand(-1, -1, num_frames, -1, -1)
    ungated = pipe.condition_detail(video, num_frames)
    return video, still, ungated, still - ungated


def test_condition_detail_gate_adds_the_detail_only_where_the_model_kept_the_still_frame(text_parts, tmp_path):
    pipe = make_v2w(text_parts)
    video, still, ungated, round_trip = still_frame_detail(pipe)
    # a decoded video that keeps the still round trip on the left half and departs by 0.2 (image units) on the right
    decoded = round_trip.clone()
    decoded[..., 16:] += 0.4
    gated = pipe.condition_detail(video, 9, decoded=decoded, gate=0.1)
    torch.testing.assert_close(gated[..., :16], ungated[..., :16])  # kept the still frame: the whole detail
    assert not gated[..., 16:].any()  # departed by more than the gate: none
    half = pipe.condition_detail(video, 9, decoded=decoded, gate=0.4)  # departed by half the gate: half the detail
    torch.testing.assert_close(half[..., 16:], ungated[..., 16:] * 0.5)
    with pytest.raises(ValueError, match="a gate or keep_threshold needs the decoded video"):
        pipe.condition_detail(video, 9, gate=0.1)
    # the call applies it to the decoded video, and the saved default is used when the call passes None
    args = dict(video=video, prompt="a ball", num_inference_steps=2, guidance_scale=1.0, output_type="pt",
                condition_detail_transfer=True)
    guard, pipe.safety_checker = pipe.safety_checker, None
    latents = pipe(generator=seeded(), **{**args, "output_type": "latent", "condition_detail_transfer": False}).frames
    pipe.safety_checker = guard
    decoded = pipe.vae.decode(pipe.denormalize_latents(latents)).sample
    expected = ((decoded + pipe.condition_detail(video, 9, decoded=decoded, gate=0.05)).clamp(-1, 1) + 1) / 2
    got = pipe(generator=seeded(), condition_detail_gate=0.05, **args).frames
    torch.testing.assert_close(got, expected.permute(0, 2, 1, 3, 4), rtol=0, atol=1 / 255 + 1e-6)
    pipe.register_to_config(default_condition_detail_gate=0.05)
    pipe.save_pretrained(tmp_path / "v2w")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "v2w", trust_remote_code=True)
    loaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(loaded(generator=seeded(), **args).frames, got, rtol=0, atol=1e-5)
    # a call's 0 turns the saved gate off: the detail everywhere, as an ungated pipeline adds it
    pipe.register_to_config(default_condition_detail_gate=None)
    ungated_frames = pipe(generator=seeded(), **args).frames
    torch.testing.assert_close(loaded(generator=seeded(), condition_detail_gate=0, **args).frames, ungated_frames,
                               rtol=0, atol=1e-5)
    assert not torch.allclose(ungated_frames, got, atol=1e-3)  # the gate does change this video
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="condition_detail_gate must be > 0 and <= 1"):
            loaded(condition_detail_gate=bad, **args)


def test_generator_determinism_and_output_types(text_parts):
    pipe = make_t2w(text_parts)
    a = pipe("a cube", num_inference_steps=2, generator=seeded(1), output_type="np").frames
    b = pipe("a cube", num_inference_steps=2, generator=seeded(1), output_type="np").frames
    c = pipe("a cube", num_inference_steps=2, generator=seeded(2), output_type="np").frames
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    assert a.shape == (1, 5, 32, 32, 3) and a.min() >= 0 and a.max() <= 1
    pil = pipe("a cube", num_inference_steps=1, generator=seeded(1)).frames
    assert len(pil) == 1 and len(pil[0]) == 5 and pil[0][0].size == (32, 32)
    unguarded = make_t2w(text_parts, disable_safety_checker=True)
    latents = unguarded("a cube", num_inference_steps=1, output_type="latent", num_videos_per_prompt=2).frames
    assert latents.shape == (2, 4, 2, 4, 4)


def test_safety_checker_is_pluggable(text_parts):
    class Blocking(PassThroughChecker):
        def check_text_safety(self, prompt):
            return "forbidden" not in prompt

        def check_video_safety(self, video):
            return np.zeros_like(video)

    pipe = make_t2w(text_parts, safety_checker=Blocking())
    with pytest.raises(ValueError, match="rejected the prompt"):
        pipe("a forbidden thing", num_inference_steps=1)
    frames = pipe("a ball", num_inference_steps=1, output_type="np").frames
    assert frames.max() == 0.0


def test_bad_inputs_give_clear_errors(text_parts):
    t2w = make_t2w(text_parts)
    with pytest.raises(ValueError, match=r"num_frames must be 1 \+ 4\*k"):
        t2w("a ball", num_frames=6)
    with pytest.raises(ValueError, match="guidance_scale must be >= 1"):
        t2w("a ball", guidance_scale=0.5)
    with pytest.raises(ValueError, match="height must be a positive multiple of 16"):
        t2w("a ball", height=40)
    with pytest.raises(ValueError, match="output_type"):
        t2w("a ball", output_type="gif")
    with pytest.raises(ValueError, match="either `prompt` or `prompt_embeds`"):
        t2w("a ball", prompt_embeds=torch.zeros(1, 8, 16))
    with pytest.raises(ValueError, match="max_size"):
        t2w("a ball", num_frames=1 + 4 * 20)
    v2w = make_v2w(text_parts)
    frames = [np.zeros((32, 32, 3), np.float32)] * 2
    with pytest.raises(ValueError, match=r"must fill whole latent frames: one of \[1, 5\]"):
        v2w(video=frames, prompt="a ball")
    with pytest.raises(ValueError, match="must be fewer than num_frames"):
        v2w(video=[np.zeros((32, 32, 3), np.float32)] * 9, prompt="a ball")
    with pytest.raises(ValueError, match="exactly one of `image`"):
        v2w(prompt="a ball")
    with pytest.raises(ValueError, match="video tensor must be"):
        v2w(video=torch.zeros(1, 4, 1, 32, 32), prompt="a ball")


def test_minilm_text_encoder_features_are_zero_after_the_prompt():
    from cosmos_hf.diffusion.text_encoding import encode_prompts, load_text_encoder, minilm_path

    assert (minilm_path() / "model.safetensors").is_file()
    tokenizer, encoder = load_text_encoder("minilm")
    features = encode_prompts(tokenizer, encoder, ["a red ball rolls down a slope", "a cube"], 16)
    assert features.shape == (2, 16, 384)
    length = len(tokenizer("a cube").input_ids)
    assert features[1, length:].abs().sum() == 0 and features[1, :length].abs().sum() > 0
    with pytest.raises(ValueError, match="exceeds the tokenizer's limit"):
        encode_prompts(tokenizer, encoder, ["x"], 4096)


def test_guardrails_are_on_by_default_with_explicit_opt_out(text_parts, tmp_path):
    from cosmos_hf.guardrails import CosmosSafetyChecker

    pipe = make_t2w(text_parts)
    assert isinstance(pipe.safety_checker, CosmosSafetyChecker)
    with pytest.raises(ValueError, match="rejected the prompt"):
        pipe("a man with a p1pe b0mb", num_inference_steps=1)
    assert pipe("a red ball rolls", num_inference_steps=1, output_type="np").frames.shape == (1, 5, 32, 32, 3)
    assert make_t2w(text_parts, disable_safety_checker=True).safety_checker is None
    with pytest.raises(ValueError, match="not both"):
        make_t2w(text_parts, safety_checker=PassThroughChecker(), disable_safety_checker=True)
    # a saved pipeline comes back guarded: the checker is code, not weights
    pipe.save_pretrained(tmp_path / "t2w")
    reloaded = DiffusionPipeline.from_pretrained(tmp_path / "t2w", trust_remote_code=True)
    assert isinstance(reloaded.safety_checker, CosmosSafetyChecker)


def test_upsample_prompt_feeds_the_guard_and_the_model(text_parts):
    class RecordingChecker(PassThroughChecker):
        seen = []

        def check_text_safety(self, prompt):
            self.seen.append(prompt)
            return "explodes" not in prompt

    class FakeUpsampler:
        def upsample(self, prompt):
            return f"{prompt}. The scene is lit from above and the object explodes."

    class BenignUpsampler:
        def upsample(self, prompt):
            return f"A detailed shot: {prompt} on a grey floor."

    class LaunderingUpsampler:  # rewrites the unsafe request into words the check after it passes
        def upsample(self, prompt):
            raise AssertionError("the upsampler saw a prompt the guardrail rejects")

    pipe = make_t2w(text_parts, safety_checker=RecordingChecker())
    with pytest.raises(ValueError, match="rejected the prompt"):
        pipe("a cube", num_inference_steps=1, upsample_prompt=True, prompt_upsampler=FakeUpsampler())
    # the user's own prompt is checked before the upsampler sees it (it used to reach the upsampler unchecked)
    with pytest.raises(ValueError, match="rejected the prompt"):
        pipe("a cube explodes", num_inference_steps=1, upsample_prompt=True, prompt_upsampler=LaunderingUpsampler())
    encoded = []
    original_encode = pipe._encode_text
    pipe._encode_text = lambda prompt, *args: encoded.append(prompt) or original_encode(prompt, *args)
    pipe("a cube", num_inference_steps=1, output_type="np", upsample_prompt=True, prompt_upsampler=BenignUpsampler())
    assert RecordingChecker.seen[-2:] == ["a cube", encoded[-1]]  # the user's prompt, then the upsampled one
    assert encoded[-1] == "A detailed shot: a cube on a grey floor."
    with pytest.raises(ValueError, match="prompt_upsampler="):
        pipe("a cube", num_inference_steps=1, upsample_prompt=True)


def nan_like(shape):
    tensor = torch.zeros(shape)
    tensor.view(-1)[0] = float("nan")
    return tensor


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (dict(video=nan_like((1, 3, 1, 32, 32))), ValueError, "video contains 1 NaN or inf"),
        (dict(latents=nan_like((1, 4, 3, 4, 4))), ValueError, "latents contains 1 NaN or inf"),
        (dict(fps=0), ValueError, r"fps must be > 0 \(a finite number; frames per second"),
        (dict(fps=-24), ValueError, "fps must be > 0"),
        (dict(guidance_scale=float("inf")), ValueError, r"guidance_scale must be >= 1 \(a finite number"),
        (dict(guidance_scale=float("nan")), ValueError, "guidance_scale must be >= 1"),
        (dict(augment_sigma=float("nan")), ValueError, "augment_sigma must be >= 0"),
        (dict(video=torch.full((1, 3, 1, 32, 32), 200.0)), ValueError, r"values span \[200, 200\].*expected \[-1, 1\]"),
        (dict(video=[np.full((32, 32, 3), 200.0, np.float32)]), ValueError, r"values span \[399, 399\]"),
        (dict(video=torch.full((1, 3, 1, 32, 32), 200, dtype=torch.uint8)), TypeError, "tensors must be float"),
        (dict(image=np.full((32, 32, 3), 200.0, np.float32), video=None), ValueError, "image values span"),
        (dict(generator=42), TypeError, r"generator must be a torch.Generator .*got int 42"),
        (dict(generator=[seeded(), seeded()]), ValueError, "got 2 generators for a batch of 1"),
        (dict(num_inference_steps=2.5), TypeError, "num_inference_steps must be >= 1 \\(an integer"),
    ],
)
def test_video2world_refuses_inputs_that_would_give_black_or_saturated_video(text_parts, bad, error, message):
    """Each of these used to return a black, saturated or NaN video without an error (diffusers' behaviour)."""
    pipe = make_v2w(text_parts)
    args = dict(video=torch.zeros(1, 3, 1, 32, 32), prompt="a ball", num_inference_steps=1, output_type="np")
    with pytest.raises(error, match=message):
        pipe(**{**args, **bad})


def test_video2world_refuses_nan_prompt_embeds_and_features_of_the_wrong_width(text_parts):
    pipe = make_v2w(text_parts, disable_safety_checker=True)  # prompt_embeds need the opt-out (no text to guard)
    args = dict(video=torch.zeros(1, 3, 1, 32, 32), num_inference_steps=1, output_type="np")
    with pytest.raises(ValueError, match="prompt_embeds contains 1 NaN or inf"):
        pipe(prompt_embeds=nan_like((1, 8, 16)), **args)
    with pytest.raises(ValueError, match="negative_prompt_embeds contains"):
        pipe(prompt_embeds=torch.zeros(1, 8, 16), negative_prompt_embeds=nan_like((1, 8, 16)), guidance_scale=2.0,
             **args)
    with pytest.raises(ValueError, match="text_embed_dim=16"):
        pipe(prompt_embeds=torch.zeros(1, 8, 32), **args)
    assert pipe(prompt_embeds=torch.zeros(1, 8, 16), **args).frames.shape == (1, 9, 32, 32, 3)


def test_text2world_validates_its_arguments_before_sampling(text_parts):
    pipe = make_t2w(text_parts)
    with pytest.raises(ValueError, match="fps must be > 0"):
        pipe("a ball", fps=0)
    with pytest.raises(ValueError, match="guidance_scale must be >= 1"):
        pipe("a ball", guidance_scale=float("nan"))
    with pytest.raises(ValueError, match="latents contains"):
        pipe("a ball", latents=nan_like((1, 4, 2, 4, 4)))
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        pipe("a ball", generator=42)
    with pytest.raises(ValueError, match="max_sequence_length must be >= 1"):
        pipe("a ball", max_sequence_length=0)


def test_uint8_numpy_video_is_read_as_0_to_255(text_parts):
    pipe = make_v2w(text_parts)
    video = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    as_array = pipe._conditioning_video(None, video, 32, 32, 9, 1)
    as_float_frames = pipe._conditioning_video(None, [video[0].astype(np.float32) / 255], 32, 32, 9, 1)
    assert as_array.min() >= -1 and as_array.max() <= 1
    torch.testing.assert_close(as_array, as_float_frames, rtol=0, atol=1e-6)
    as_uint8_frames = pipe._conditioning_video(None, [video[0]], 32, 32, 9, 1)  # diffusers would give 2*255-1
    torch.testing.assert_close(as_uint8_frames, as_float_frames, rtol=0, atol=1e-6)


def test_guardrail_cannot_be_skipped_by_prompt_embeds_or_latent_output(text_parts, tmp_path):
    embeds = torch.zeros(1, 8, 16)
    for pipe in (make_t2w(text_parts), make_t2w(text_parts, safety_checker=PassThroughChecker())):
        with pytest.raises(ValueError, match="prompt_embeds without a prompt: the text guardrail has no text"):
            pipe(prompt_embeds=embeds, num_inference_steps=1)
        with pytest.raises(ValueError, match="output_type='latent' returns undecoded output"):
            pipe("a ball", num_inference_steps=1, output_type="latent")
    v2w = make_v2w(text_parts)
    with pytest.raises(ValueError, match="disable_safety_checker=True"):
        v2w(video=torch.zeros(1, 3, 1, 32, 32), prompt_embeds=embeds, num_inference_steps=1)
    with pytest.raises(ValueError, match="video guardrail cannot check"):
        v2w(video=torch.zeros(1, 3, 1, 32, 32), prompt="a ball", num_inference_steps=1, output_type="latent")
    # the explicit opt-out, at construction or when loading
    make_t2w(text_parts).save_pretrained(tmp_path / "t2w")
    unguarded = CosmosText2WorldPipeline.from_pretrained(tmp_path / "t2w", disable_safety_checker=True)
    assert unguarded.safety_checker is None
    unguarded.set_progress_bar_config(disable=True)
    assert unguarded(prompt_embeds=embeds, num_inference_steps=1, output_type="latent").frames.shape == (1, 4, 2, 4, 4)


@pytest.mark.parametrize("kind", ["text2world", "video2world"])
def test_callback_on_step_end_sees_and_may_replace_the_latents(text_parts, kind):
    # diffusers' callback API; a dict comprehension over locals() raised KeyError 'latents' before Python 3.12
    pipe = make_t2w(text_parts) if kind == "text2world" else make_v2w(text_parts)
    inputs = {"video": torch.zeros(1, 3, 1, 32, 32)} if kind == "video2world" else {}
    seen = []

    def callback(pipeline, step, timestep, callback_kwargs):
        seen.append((step, tuple(callback_kwargs["latents"].shape)))
        return {"latents": torch.zeros_like(callback_kwargs["latents"])} if step == 1 else callback_kwargs

    args = dict(prompt="a cube", num_inference_steps=2, output_type="np", **inputs)
    replaced = pipe(generator=seeded(), callback_on_step_end=callback, **args).frames
    assert [step for step, _ in seen] == [0, 1] and all(len(shape) == 5 for _, shape in seen)
    assert np.abs(replaced - pipe(generator=seeded(), **args).frames).max() > 1e-3  # the returned latents are used


def test_saving_a_guarded_pipeline_warns_nothing_and_keeps_the_guardrail(text_parts, tmp_path, capfd):
    from cosmos_hf.guardrails import CosmosSafetyChecker

    pipe = make_t2w(text_parts)
    capfd.readouterr()
    pipe.save_pretrained(tmp_path / "t2w")
    assert "cannot be saved" not in capfd.readouterr().err  # diffusers warned about the (unsaveable) default guard
    assert isinstance(pipe.safety_checker, CosmosSafetyChecker)  # still guarded after saving
    assert pipe.config.safety_checker[1] == "CosmosSafetyChecker"
    reloaded = DiffusionPipeline.from_pretrained(tmp_path / "t2w", trust_remote_code=True)
    assert isinstance(reloaded.safety_checker, CosmosSafetyChecker)


def test_one_sampling_step_lands_on_the_x0_prediction_not_on_noise(text_parts):
    """diffusers' EDMEulerScheduler ends a 1-step Karras schedule at sigma_max ([80, 80]): without the fix a 1-step
    sample is decoded noise. Fixed, one step ends at sigma_min, and equals two steps (whose second step, from
    sigma_min to sigma_min, moves nothing)."""
    pipe = make_t2w(text_parts, disable_safety_checker=True)
    one = pipe("a cube", num_inference_steps=1, generator=seeded(3), output_type="latent").frames
    assert pipe.scheduler.sigmas.tolist() == pytest.approx([pipe.scheduler.config.sigma_max,
                                                            pipe.scheduler.config.sigma_min])
    two = pipe("a cube", num_inference_steps=2, generator=seeded(3), output_type="latent").frames
    torch.testing.assert_close(one, two)
    noise = torch.randn(one.shape, generator=seeded(3)) * pipe.scheduler.config.sigma_max
    assert one.abs().max() < noise.abs().max() / 10  # a denoised sample, not sigma_max noise


def test_strength_starts_from_the_noised_still_video_and_runs_the_last_steps(text_parts, tmp_path):
    """`strength` as in diffusers' image-to-image pipelines, the image being the still video of the last conditioning
    frame: only the last round(N * strength) steps run, from that video's latents noised to the first kept sigma."""
    pipe = make_v2w(text_parts, disable_safety_checker=True)
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    args = dict(video=video, prompt="a ball", num_inference_steps=10, guidance_scale=1.0, output_type="latent")
    steps = []

    def count(pipe, i, t, kwargs):
        steps.append(float(pipe.scheduler.sigmas[i]))
        return {}

    full = pipe(generator=seeded(), **args).frames
    torch.testing.assert_close(pipe(generator=seeded(), strength=1.0, **args).frames, full)
    pipe(generator=seeded(), strength=0.5, callback_on_step_end=count, **args)
    pipe.set_sampling_timesteps(10)
    assert steps == pytest.approx(pipe.scheduler.sigmas[5:10].tolist())  # the last 5 of 10 steps
    # one kept step runs from sigma_min to sigma_min, which moves nothing: the output is the start, i.e. the still
    # video's latents plus sigma_min noise, and not a sample from noise
    last = pipe(generator=seeded(), strength=0.1, **args).frames
    still = pipe.normalize_latents(pipe.encode_still(video, 9)[1])
    assert (last - still).abs().max() < 10 * pipe.scheduler.config.sigma_min
    assert (full - still).abs().max() > 0.1
    # the saved default applies when the call passes None
    pipe.register_to_config(default_strength=0.1)
    pipe.save_pretrained(tmp_path / "v2w")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "v2w", trust_remote_code=True, disable_safety_checker=True)
    loaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(loaded(generator=seeded(), **args).frames, last)
    for bad in (0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="strength must be > 0 and <= 1"):
            loaded(strength=bad, **args)


def test_condition_keep_threshold_copies_the_last_frame_where_the_model_predicts_no_change(text_parts, tmp_path):
    pipe = make_v2w(text_parts)
    video, still, ungated, round_trip = still_frame_detail(pipe)
    # a decoded video that departs from the still round trip by 0.01 (image units) on the left, 0.2 on the right
    decoded = round_trip.clone()
    decoded[..., :16] += 0.02
    decoded[..., 16:] += 0.4
    detail = pipe.condition_detail(video, 9, decoded=decoded, keep_threshold=0.05)
    torch.testing.assert_close(decoded[..., :16] + detail[..., :16], still[..., :16])  # below: the frame itself
    torch.testing.assert_close(detail[..., 16:], ungated[..., 16:])  # above: the plain transfer
    args = dict(video=video, prompt="a ball", num_inference_steps=2, guidance_scale=1.0, output_type="pt")
    with pytest.raises(ValueError, match="condition_keep_threshold needs condition_detail_transfer=True"):
        pipe(condition_keep_threshold=0.05, **args)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"condition_keep_threshold must be >= 0 and <= 1 .*0 = off"):
            pipe(condition_detail_transfer=True, condition_keep_threshold=bad, **args)
    # at the largest threshold every pixel is kept: the output is the last conditioning frame, repeated
    kept = pipe(generator=seeded(), condition_detail_transfer=True, condition_keep_threshold=1.0, **args).frames
    torch.testing.assert_close(kept, ((still + 1) / 2).permute(0, 2, 1, 3, 4), rtol=0, atol=1 / 255 + 1e-6)
    pipe.register_to_config(default_condition_detail_transfer=True, default_condition_keep_threshold=1.0)
    pipe.save_pretrained(tmp_path / "v2w")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "v2w", trust_remote_code=True)
    loaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(loaded(generator=seeded(), **args).frames, kept, rtol=0, atol=1e-5)
    # a saved default is turned off per call by 0, or together with the transfer by condition_detail_transfer=False
    pipe.register_to_config(default_condition_keep_threshold=None)
    expected = pipe(generator=seeded(), condition_detail_transfer=True, **args).frames
    plain = pipe(generator=seeded(), condition_detail_transfer=False, **args).frames
    torch.testing.assert_close(loaded(generator=seeded(), condition_keep_threshold=0, **args).frames, expected)
    torch.testing.assert_close(loaded(generator=seeded(), condition_detail_transfer=False, **args).frames, plain)
    assert not torch.allclose(expected, kept, atol=1e-3)  # the saved threshold did change the output


def test_still_frame_reference_gives_the_model_the_latent_of_a_still_video_of_the_last_frame(text_parts, tmp_path):
    # condition_reference="still_frame": the reference channels hold `encode_still_reference` of the conditioning
    # frames (what the trainer feeds), not the last conditioning latent frame (which blurs frames 1-4 together)
    tokenizer, encoder = text_parts
    transformer = tiny_transformer(4, 16, video2world=True, in_channels=4 + 1 + 4)
    pipe = CosmosVideo2WorldPipeline(encoder, tokenizer, transformer, tiny_cosmos_vae(4), scheduler(),
                                     default_height=32, default_width=32, default_num_frames=9, max_sequence_length=8,
                                     condition_frame_channels=True, condition_reference="still_frame",
                                     disable_safety_checker=True)
    pipe.set_progress_bar_config(disable=True)
    seen = []
    pipe.transformer.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["hidden_states"]),
                                               with_kwargs=True)
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    pipe(video=video, prompt="a ball", num_inference_steps=2, guidance_scale=1.0, generator=seeded(),
         output_type="pt")
    still = pipe.encode_still_reference(video)
    assert still.shape == (1, 4, 4, 4)
    expected = (still / 0.5)[:, :, None].expand(-1, -1, seen[0].shape[2], -1, -1)
    torch.testing.assert_close(seen[0][:, 4:], expected)
    # ... which is not what the default reference gives
    last_latent = pipe.encode_conditioning(video, 9)[0][:, :, 1]
    assert (last_latent - still).abs().max() > 1e-3
    pipe.save_pretrained(tmp_path / "v2w")
    assert CosmosVideo2WorldPipeline.from_pretrained(tmp_path / "v2w").config.condition_reference == "still_frame"
    with pytest.raises(ValueError, match=r"condition_reference must be one of \('last_latent_frame', 'still_frame'\)"):
        make_v2w(text_parts, condition_reference="still")


def test_load_pipeline_loads_our_folders_without_diffusers_remote_code_copy(text_parts, tmp_path, monkeypatch):
    # diffusers copies a folder's pipeline.py to one fixed cache path on every load, not atomically: two evaluations
    # started together crashed ("module 'diffusers_modules.local.pipeline' has no attribute ..."). load_pipeline gives
    # the same pipeline for our folders without that copy, and leaves other folders to diffusers.
    from diffusers.utils import dynamic_modules_utils

    from cosmos_hf.pipelines import load_pipeline

    make_v2w(text_parts, default_guidance_scale=1.0).save_pretrained(tmp_path / "v2w")
    expected = type(DiffusionPipeline.from_pretrained(tmp_path / "v2w", trust_remote_code=True))

    def no_remote_code(*args, **kwargs):
        raise AssertionError("diffusers' remote-code loader was used")

    monkeypatch.setattr(dynamic_modules_utils, "get_cached_module_file", no_remote_code)
    loaded = load_pipeline(tmp_path / "v2w", trust_remote_code=True)
    assert type(loaded) is expected is CosmosVideo2WorldPipeline and loaded.config.default_guidance_scale == 1.0
    monkeypatch.undo()
    # an edited entry point is no longer ours: it goes to diffusers, which asks for trust_remote_code
    entry = tmp_path / "v2w" / "pipeline.py"
    entry.write_text(entry.read_text() + "print('edited')\n")
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_pipeline(tmp_path / "v2w")


def test_a_folder_of_another_cosmos_pipeline_is_refused_naming_both_classes(text_parts, tmp_path):
    """A Video2World folder given where a diffusion decoder belongs (`assemble_ar_pipeline.py --diffusion-decoder`)
    failed with diffusers' "pass trust_remote_code=True", which would then load the folder's own class."""
    from cosmos_hf.pipelines import CosmosDiffusionDecoderPipeline

    make_v2w(text_parts).save_pretrained(tmp_path / "v2w")
    with pytest.raises(ValueError, match="holds a CosmosVideo2WorldPipeline .*not a CosmosDiffusionDecoderPipeline"):
        CosmosDiffusionDecoderPipeline.from_pretrained(tmp_path / "v2w", disable_safety_checker=True)
    assert type(CosmosVideo2WorldPipeline.from_pretrained(tmp_path / "v2w")) is CosmosVideo2WorldPipeline
