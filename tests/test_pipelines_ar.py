"""CosmosARVideo2WorldPipeline on tiny random components: input frames -> DV tokens -> generation -> decoding.

Checks that generation is the model's own KV-cache decoding (equal to `generate()`), respects the token budget of
the latent grid, Medusa gives the greedy tokens, sampling is seeded, the Video2World variant uses its text and
`<bov>`, the diffusion decoder path runs, the save/load contract holds, and bad input gets clear errors."""

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, EDMEulerScheduler

from cosmos_hf import CosmosARConfig, CosmosARForCausalLM
from cosmos_hf.autoregressive.medusa import init_medusa_heads_from_lm_head
from cosmos_hf.diffusion.diffusion_decoder import CosmosDiffusionDecoderPipeline, CosmosDVTokenEmbedder
from cosmos_hf.diffusion.nano import tiny_cosmos_vae, tiny_t5_text_encoder, tiny_transformer
from cosmos_hf.pipelines.pipeline_cosmos_ar_video2world import CosmosARVideo2WorldPipeline, sample_next_tokens
from cosmos_hf.tokenizers.configs import from_config_name

GRID = [3, 2, 2]  # 9 frames of 16x16 through DV4x8x8


def tiny_dv():
    torch.manual_seed(0)
    return from_config_name("DV4x8x8", channels=8, channels_mult=[1, 2, 2], num_res_blocks=1, z_channels=16).eval()


def tiny_ar(**overrides):
    torch.manual_seed(1)
    config = CosmosARConfig(vocab_size=64000, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                            num_attention_heads=2, num_key_value_heads=1, latent_shape=GRID, pad_to_multiple_of=8,
                            initializer_range=0.3, **overrides)
    return CosmosARForCausalLM(config).eval()


@pytest.fixture(scope="module")
def dv():
    return tiny_dv()


@pytest.fixture(scope="module")
def pipe(dv):
    model = tiny_ar(medusa_num_heads=2)
    init_medusa_heads_from_lm_head(model)
    # most tests read the token grid (output_type="tokens"), which skips the video guard: opted out explicitly
    pipeline = CosmosARVideo2WorldPipeline(model, dv, disable_safety_checker=True)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def frames(num=1, seed=0):
    return torch.rand(1, 3, num, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_greedy_generation_is_generate_and_fills_the_latent_grid(pipe, dv):
    tokens = pipe(video=frames(5), output_type="tokens").frames
    assert tokens.shape == (1, *GRID)
    prompt = dv.tokenize(frames(5)).reshape(1, -1)  # 2 latent frames = 8 tokens given
    assert torch.equal(tokens.reshape(1, -1)[:, :8], prompt)
    reference = pipe.ar_model.generate(prompt, max_new_tokens=4, do_sample=False)
    assert reference.shape[1] == 12  # generate respects max_new_tokens
    assert torch.equal(tokens.reshape(1, -1), reference)
    # one input frame: 1 latent frame given, 2 generated
    assert torch.equal(pipe(image=None, video=frames(1), output_type="tokens").frames.reshape(1, -1)[:, :4],
                       dv.tokenize(frames(1)).reshape(1, -1))


def test_medusa_greedy_equals_plain_greedy(pipe):
    plain = pipe(video=frames(1, seed=3), output_type="tokens").frames
    assert torch.equal(pipe(video=frames(1, seed=3), output_type="tokens", use_medusa=True).frames, plain)
    # medusa_kwargs reach medusa_generate: another tree, the same tokens; a bad value names itself
    chain = pipe(video=frames(1, seed=3), output_type="tokens", use_medusa=True,
                 medusa_kwargs={"temporal_candidates": 0, "head_top_k": 2}).frames
    assert torch.equal(chain, plain)
    with pytest.raises(ValueError, match="head_top_k must be in"):
        pipe(video=frames(1, seed=3), output_type="tokens", use_medusa=True, medusa_kwargs={"head_top_k": 0})


def test_sampling_is_seeded_by_generator(pipe):
    run = lambda seed: pipe(video=frames(1), output_type="tokens", do_sample=True, temperature=1.5,  # noqa: E731
                            top_p=0.95, generator=torch.Generator().manual_seed(seed)).frames
    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))
    logits = torch.tensor([[0.0, 5.0, 4.9, -3.0]])
    assert sample_next_tokens(logits, do_sample=False).item() == 1
    picks = {sample_next_tokens(logits, True, top_k=2, generator=torch.Generator().manual_seed(s)).item()
             for s in range(30)}
    assert picks == {1, 2}  # top-k keeps the two best


def test_sampling_with_top_k_keeps_only_the_top_k_tokens_with_or_without_medusa(pipe):
    # top_k=1 leaves the argmax alone: whatever the seed, sampling must give the greedy tokens (Medusa used to drop
    # top_k and sample from the whole top-p nucleus)
    greedy = pipe(video=frames(1), output_type="tokens").frames
    for seed in range(3):
        for use_medusa in (False, True):
            sampled = pipe(video=frames(1), output_type="tokens", do_sample=True, top_k=1, use_medusa=use_medusa,
                           generator=torch.Generator().manual_seed(seed)).frames
            assert torch.equal(sampled, greedy), (seed, use_medusa)


def test_decoded_outputs(pipe):
    out = pipe(video=frames(1), output_type="np").frames
    assert out.shape == (1, 9, 16, 16, 3) and out.min() >= 0 and out.max() <= 1
    pil = pipe(video=frames(1), output_type="pil").frames
    assert len(pil[0]) == 9 and pil[0][0].size == (16, 16)
    # a uint8 [T, H, W, 3] array at another size is resized to the model's 16x16
    array = (torch.rand(1, 32, 32, 3) * 255).to(torch.uint8).numpy()
    assert pipe(video=array, output_type="tokens").frames.shape == (1, *GRID)


def test_use_medusa_without_heads_verifies_previous_frame_tokens_and_gives_the_greedy_tokens(dv):
    headless = CosmosARVideo2WorldPipeline(tiny_ar(), dv, disable_safety_checker=True)
    headless.set_progress_bar_config(disable=True)
    plain = headless(video=frames(5, seed=7), output_type="tokens").frames
    assert torch.equal(headless(video=frames(5, seed=7), output_type="tokens", use_medusa=True).frames, plain)


def test_keep_threshold_outputs_the_last_conditioning_frame_where_the_decode_stays_still(pipe, dv):
    video = frames(5)
    plain = pipe(video=video, output_type="pt").frames
    # threshold 1 (the largest RGB distance): every predicted pixel is taken for still, so every frame after the
    # 5 given ones is exactly the last given frame; the given frames keep their own decode
    kept = pipe(video=video, output_type="pt", condition_keep_threshold=1.0).frames  # [B, T, 3, H, W] in [0, 1]
    last = (video[:, :, -1] + 1) / 2
    for t in range(5, 9):
        torch.testing.assert_close(kept[:, t], last, atol=1e-6, rtol=0)
    torch.testing.assert_close(kept[:, :5], plain[:, :5])
    # per pixel: kept where the decode is within the threshold of the still video's round trip, untouched elsewhere
    still = video[:, :, -1:].expand(-1, -1, 9, -1, -1)
    still_decoded = dv.detokenize(dv.tokenize(still)).float().clamp(-1, 1)
    decoded = still_decoded.clone()
    decoded[:, :, 6:, 4:10, 4:10] = -still_decoded[:, :, 6:, 4:10, 4:10].sign()  # a large change in one patch
    out = pipe.keep_still_pixels(video, decoded, threshold=0.1)
    moved = torch.zeros_like(decoded, dtype=torch.bool)
    moved[:, :, 6:, 4:10, 4:10] = True
    moved[:, :, :5] = True  # the given frames are never replaced
    assert torch.equal(out[moved], decoded[moved])
    assert torch.equal(out[~moved], still.float()[~moved])


def test_detail_gate_adds_the_still_frames_lost_detail_where_the_decode_stays_still(pipe, dv):
    video = frames(5, seed=4)
    still = video[:, :, -1:].expand(-1, -1, 9, -1, -1)
    still_decoded = dv.detokenize(dv.tokenize(still)).float().clamp(-1, 1)
    decoded = still_decoded.clone()
    decoded[:, :, 6:, 4:10, 4:10] = -still_decoded[:, :, 6:, 4:10, 4:10].sign()  # a large change in one patch
    decoded[:, :, 7, 12:, 12:] += 0.1  # a small one (0.05 in [0, 1] units): half the detail at gate 0.1
    out = pipe.restore_still_detail(video, decoded, detail_gate=0.1)
    detail = still.float() - still_decoded
    # where the decode is the still round trip, the output is the still frame itself (round trip + its lost detail)
    untouched = torch.ones_like(decoded[:, :1], dtype=torch.bool)
    untouched[:, :, 6:, 4:10, 4:10] = False
    untouched[:, :, 7, 12:, 12:] = False
    untouched[:, :, :5] = False
    untouched = untouched.expand_as(decoded)
    torch.testing.assert_close(out[untouched], still.float()[untouched].clamp(-1, 1), atol=1e-6, rtol=0)
    # the moved patch (departure >= the gate) keeps the model's pixels, with no trace of the still frame's detail
    assert torch.equal(out[:, :, 6:, 4:10, 4:10], decoded[:, :, 6:, 4:10, 4:10])
    # a departure of half the gate gets half the detail
    torch.testing.assert_close(out[:, :, 7, 12:, 12:],
                               (decoded + 0.5 * detail)[:, :, 7, 12:, 12:].clamp(-1, 1), atol=1e-5, rtol=0)
    # the given frames keep their own decode
    assert torch.equal(out[:, :, :5], decoded[:, :, :5])
    # with a keep threshold too, pixels within the threshold are the still frame, the rest gated as above
    both = pipe.restore_still_detail(video, decoded, keep_threshold=0.01, detail_gate=0.1)
    torch.testing.assert_close(both[:, :, 7, 12:, 12:], out[:, :, 7, 12:, 12:])
    assert torch.equal(both[untouched], still.float()[untouched])


def saved_and_explicit(dv, **saved_defaults):
    """Two pipelines on the same tiny model: one with `saved_defaults` in its config, one without."""
    model = tiny_ar()
    pipes = [CosmosARVideo2WorldPipeline(model, dv, disable_safety_checker=True, **defaults)
             for defaults in (saved_defaults, {})]
    for pipeline in pipes:
        pipeline.set_progress_bar_config(disable=True)
    return pipes


def test_saved_detail_gate_is_the_call_default_and_a_calls_zero_turns_it_off(dv, tmp_path):
    saved, explicit = saved_and_explicit(dv, default_condition_detail_gate=0.5)
    video = frames(5, seed=5)
    gated = explicit(video=video, output_type="pt", condition_detail_gate=0.5).frames
    plain = explicit(video=video, output_type="pt").frames
    assert not torch.allclose(gated[:, 5:], plain[:, 5:])  # the gate changed the predicted frames
    torch.testing.assert_close(gated[:, :5], plain[:, :5])
    torch.testing.assert_close(saved(video=video, output_type="pt").frames, gated)
    torch.testing.assert_close(saved(video=video, output_type="pt", condition_detail_gate=0).frames, plain)
    assert torch.equal(saved(video=video, output_type="tokens").frames,
                       explicit(video=video, output_type="tokens").frames)
    saved.save_pretrained(tmp_path)
    assert CosmosARVideo2WorldPipeline.load_config(tmp_path)["default_condition_detail_gate"] == 0.5


def test_previous_frame_logit_bias_keeps_tokens_the_model_is_unsure_of_in_every_decoding_path(dv, tmp_path):
    saved, explicit = saved_and_explicit(dv, default_previous_frame_logit_bias=1e4)
    video = frames(5, seed=8)
    tokens = explicit(video=video, output_type="tokens", previous_frame_logit_bias=1e4).frames
    assert torch.equal(tokens[:, 2], tokens[:, 1])  # a huge bias: the one generated latent frame copies the last given
    plain = explicit(video=video, output_type="tokens").frames
    assert not torch.equal(plain[:, 2], plain[:, 1])
    # a moderate bias (this random model is confident: 6 nats) gives something between the two, and the same tokens
    # with Medusa (previous-frame candidates only: the model has no heads)
    some = explicit(video=video, output_type="tokens", previous_frame_logit_bias=6.0).frames
    assert not torch.equal(some, plain) and not torch.equal(some, tokens)
    assert torch.equal(explicit(video=video, output_type="tokens", previous_frame_logit_bias=6.0, use_medusa=True)
                       .frames, some)
    # sampling adds the bias before the warpers: cold sampling with a huge bias copies too
    assert torch.equal(explicit(video=video, output_type="tokens", do_sample=True, temperature=1e-4, top_p=None,
                                previous_frame_logit_bias=1e4, generator=torch.Generator().manual_seed(0)).frames,
                       tokens)
    # the saved default applies to every output type; a call's 0 turns it off
    assert torch.equal(saved(video=video, output_type="tokens").frames, tokens)
    assert torch.equal(saved(video=video, output_type="tokens", previous_frame_logit_bias=0).frames, plain)
    saved.save_pretrained(tmp_path)
    assert CosmosARVideo2WorldPipeline.load_config(tmp_path)["default_previous_frame_logit_bias"] == 1e4
    with pytest.raises(ValueError, match="previous_frame_logit_bias must be a finite number"):
        explicit(video=video, output_type="tokens", previous_frame_logit_bias=float("inf"))


def test_still_detail_report_scores_what_the_pipeline_outputs_for_each_setting(pipe):
    """training/report_ar_still_detail.py generates once and post-processes per setting: each setting's frames must
    be the pipeline's own output for that keep threshold and detail gate."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "training" / "report_ar_still_detail.py"
    spec = importlib.util.spec_from_file_location("report_ar_still_detail", script)
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    clip = ((frames(5, seed=6)[0].permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy()  # [5, 16, 16, 3]
    shared = report.SharedGreedyAR(pipe, use_medusa=False)
    outputs = []
    for keep, gate in [(None, None), (0.05, None), (None, 0.25), (0.05, 0.25)]:
        ours = report.StillDetailSetting(shared, keep, gate)(clip, "", 9)
        outputs.append(ours)
        theirs = pipe(video=[frame for frame in clip], output_type="np", condition_keep_threshold=keep,
                      condition_detail_gate=gate).frames[0]
        assert ours.dtype == np.uint8 and ours.shape == (9, 16, 16, 3)
        assert np.abs(ours.astype(int) - (theirs * 255).round().astype(int)).max() <= 1  # float rounding only
    assert len(shared.cache) == 1  # one generation served every setting
    assert all(np.abs(a.astype(int) - outputs[0].astype(int)).max() > 1 for a in outputs[1:])  # settings differ
    # a bias generates its own tokens: the pipeline's, with that bias
    biased = report.StillDetailSetting(report.SharedGreedyAR(pipe, False, 1e4), None, None)(clip, "", 9)
    theirs = pipe(video=[frame for frame in clip], output_type="np", previous_frame_logit_bias=1e4).frames[0]
    assert np.abs(biased.astype(int) - (theirs * 255).round().astype(int)).max() <= 1
    assert np.abs(biased.astype(int) - outputs[0].astype(int)).max() > 1


def test_still_detail_report_true_tokens_score_the_round_trip_of_the_true_clip(pipe):
    """--true-tokens: the setting decodes the DV tokens of the whole true clip (the tokenizer's ceiling) and
    post-processes them with the first frames as conditioning, as the pipeline would for perfect tokens."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "training" / "report_ar_still_detail.py"
    spec = importlib.util.spec_from_file_location("report_ar_still_detail", script)
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    truth = frames(9, seed=7)  # [1, 3, 9, 16, 16]
    clip = ((truth[0].permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    truth = torch.from_numpy(clip).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # what the report reads
    setting = report.StillDetailSetting(report.TrueTokens(pipe), 0.05, None)
    assert setting.requires_ground_truth  # run_physics_benchmark passes the clip only to such predictors
    ours = setting(clip[:5], "", 9, {"ground_truth": clip})
    round_trip = pipe.dv_tokenizer.detokenize(pipe.dv_tokenizer.tokenize(truth)).float().clamp(-1, 1)
    expected = pipe.restore_still_detail(truth[:, :, :5], round_trip, keep_threshold=0.05)
    expected = ((expected[0].permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(ours, expected)
    # the predicted frames decode the truth's own tokens: a still truth decodes differently (the tiny random DV
    # barely separates clips, so without a keep threshold, which would hide the difference)
    raw = report.StillDetailSetting(report.TrueTokens(pipe), None, None)
    still_truth = np.repeat(clip[4:5], 9, axis=0)
    assert not np.array_equal(raw(clip[:5], "", 9, {"ground_truth": clip})[5:],
                              raw(clip[:5], "", 9, {"ground_truth": still_truth})[5:])


def test_saved_keep_threshold_applies_to_the_dv_decode_only(dv, tmp_path):
    saved, explicit = saved_and_explicit(dv, default_condition_keep_threshold=1.0)
    video = frames(1, seed=3)
    torch.testing.assert_close(saved(video=video, output_type="pt").frames,
                               explicit(video=video, output_type="pt", condition_keep_threshold=1.0).frames)
    # token output is untouched by the saved default (an explicit threshold there is an error)
    assert torch.equal(saved(video=video, output_type="tokens").frames,
                       explicit(video=video, output_type="tokens").frames)
    # 0 turns the saved default off for a call
    torch.testing.assert_close(saved(video=video, output_type="pt", condition_keep_threshold=0).frames,
                               explicit(video=video, output_type="pt").frames)
    saved.save_pretrained(tmp_path)
    assert CosmosARVideo2WorldPipeline.load_config(tmp_path)["default_condition_keep_threshold"] == 1.0


def test_bad_input_errors(pipe, dv):
    with pytest.raises(ValueError, match=r"takes one of \[1, 5\]"):
        pipe(video=frames(2))
    with pytest.raises(ValueError, match="exactly one"):
        pipe()
    with pytest.raises(ValueError, match="no Medusa heads"):  # without heads only previous-frame copies remain
        CosmosARVideo2WorldPipeline(tiny_ar(), dv)(video=frames(1), use_medusa=True,
                                                   medusa_kwargs={"temporal_candidates": 0})
    with pytest.raises(ValueError, match="output_type"):
        pipe(video=frames(1), output_type="latent")
    model = pipe.ar_model
    with pytest.raises(ValueError, match=r"token id 64000 out of range"):
        model(torch.tensor([[1, 64000]]))
    with pytest.raises(ValueError, match=r"position ids must lie in \[0, 16\).*latent_shape \[3, 2, 2\]"):
        model.generate(torch.zeros(1, 10, dtype=torch.long), max_new_tokens=8, do_sample=False)


def test_video2world_variant_uses_bov_and_text(dv):
    model = tiny_ar(insert_cross_attention=True, cross_attention_dim=16, use_abs_pos_emb=True, use_bov_token=True)
    tokenizer, text_encoder = tiny_t5_text_encoder(d_model=16)
    with pytest.raises(ValueError, match="text_encoder"):
        CosmosARVideo2WorldPipeline(model, dv)
    pipe = CosmosARVideo2WorldPipeline(model, dv, text_encoder=text_encoder, tokenizer=tokenizer,
                                       max_sequence_length=8, disable_safety_checker=True)
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match="prompt"):
        pipe(video=frames(1))
    a = pipe(video=frames(1), prompt="a red ball falls", output_type="tokens").frames
    b = pipe(video=frames(1), prompt="a blue cube slides", output_type="tokens").frames
    assert a.shape == (1, *GRID) and not torch.equal(a, b)  # text reaches the model through cross-attention
    guarded = CosmosARVideo2WorldPipeline(model, dv, text_encoder=text_encoder, tokenizer=tokenizer,
                                          max_sequence_length=8)
    guarded.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match="rejected the prompt"):  # built-in guardrail, on by default
        guarded(video=frames(1), prompt="a p1pe b0mb goes off", output_type="np")


def test_guardrails_default_on_and_checked_on_decoded_video(dv):
    from cosmos_hf.guardrails import CosmosSafetyChecker

    class Blackout:
        def check_text_safety(self, prompt):
            return True

        def check_video_safety(self, video):
            return video * 0

    assert isinstance(CosmosARVideo2WorldPipeline(tiny_ar(), dv).safety_checker, CosmosSafetyChecker)
    assert CosmosARVideo2WorldPipeline(tiny_ar(), dv, disable_safety_checker=True).safety_checker is None
    guarded = CosmosARVideo2WorldPipeline(tiny_ar(), dv, safety_checker=Blackout())
    guarded.set_progress_bar_config(disable=True)
    assert guarded(video=frames(1), output_type="np").frames.max() == 0.0


def test_diffusion_decoder_path_and_save_load_round_trip(pipe, dv, tmp_path):
    tokenizer, text_encoder = tiny_t5_text_encoder()
    torch.manual_seed(2)
    decoder = CosmosDiffusionDecoderPipeline(
        text_encoder, tokenizer, tiny_transformer(latent_channels=4, in_channels=4 + 32), tiny_cosmos_vae(),
        EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, prediction_type="epsilon",
                          final_sigmas_type="sigma_min"),
        CosmosDVTokenEmbedder(), dv_tokenizer=dv, default_fps=24, max_sequence_length=8, chunk_blend="latent",
    )
    full = CosmosARVideo2WorldPipeline.from_components(pipe.ar_model, dv, diffusion_decoder=decoder,
                                                       disable_safety_checker=True)
    assert full.diffusion_decoder.config.chunk_blend == "latent"  # the decoder's chunk joining travels with it
    full.set_progress_bar_config(disable=True)
    refined = full(video=frames(1), output_type="pt", decoder_num_inference_steps=2,
                   generator=torch.Generator().manual_seed(0)).frames
    plain = full(video=frames(1), output_type="pt", use_diffusion_decoder=False).frames
    assert refined.shape == plain.shape == (1, 9, 3, 16, 16) and not torch.allclose(refined, plain)
    with pytest.raises(ValueError, match="applies to the DV tokenizer's decode: pass use_diffusion_decoder=False"):
        full(video=frames(1), output_type="pt", condition_keep_threshold=0.1)

    full.save_pretrained(tmp_path / "ar_pipe")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "ar_pipe", trust_remote_code=True,
                                               disable_safety_checker=True)
    assert type(loaded) is CosmosARVideo2WorldPipeline and loaded.has_diffusion_decoder
    assert loaded.diffusion_decoder.config.chunk_blend == "latent"
    loaded.set_progress_bar_config(disable=True)
    again = CosmosARVideo2WorldPipeline.from_pretrained(tmp_path / "ar_pipe")
    assert type(again) is CosmosARVideo2WorldPipeline
    assert torch.equal(loaded(video=frames(1), output_type="tokens").frames,
                       full(video=frames(1), output_type="tokens").frames)
    torch.testing.assert_close(loaded(video=frames(1), output_type="pt", decoder_num_inference_steps=2,
                                      generator=torch.Generator().manual_seed(0)).frames, refined)
    # a folder saved with default_use_diffusion_decoder=False decodes with the DV tokenizer unless asked
    full.register_to_config(default_use_diffusion_decoder=False)
    full.save_pretrained(tmp_path / "ar_pipe_dv")
    dv_default = DiffusionPipeline.from_pretrained(tmp_path / "ar_pipe_dv", trust_remote_code=True,
                                                   disable_safety_checker=True)
    dv_default.set_progress_bar_config(disable=True)
    torch.testing.assert_close(dv_default(video=frames(1), output_type="pt").frames, plain)
    torch.testing.assert_close(dv_default(video=frames(1), output_type="pt", use_diffusion_decoder=True,
                                          decoder_num_inference_steps=2,
                                          generator=torch.Generator().manual_seed(0)).frames, refined)


def test_token_output_needs_the_explicit_guardrail_opt_out(dv):
    guarded = CosmosARVideo2WorldPipeline(tiny_ar(), dv)
    guarded.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match="output_type='tokens' returns undecoded output.*disable_safety_checker=True"):
        guarded(video=frames(1), output_type="tokens")


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (dict(video=frames(1) * float("nan")), ValueError, "video contains .* NaN or inf"),
        (dict(video=(frames(1) + 1) * 127.5), ValueError, r"values span \[.*\] after preprocessing, expected"),
        (dict(video=((frames(1) + 1) * 127.5).to(torch.uint8)), TypeError, "tensors must be float"),
        (dict(generator=42), TypeError, "generator must be a torch.Generator"),
        (dict(do_sample=True, generator=[torch.Generator()]), TypeError, "token sampling draws .* one torch.Generator"),
        (dict(do_sample=True, temperature=float("nan")), ValueError, "temperature must be > 0"),
        (dict(top_k=0), ValueError, "top_k must be >= 1"),
        (dict(top_p=float("nan")), ValueError, r"top_p must be > 0 and <= 1"),
        (dict(decoder_guidance_scale=float("inf")), ValueError, "decoder_guidance_scale must be >= 0"),
        (dict(condition_keep_threshold=-0.1), ValueError, r"condition_keep_threshold must be >= 0 and <= 1"),
        (dict(condition_keep_threshold=1.5), ValueError, r"condition_keep_threshold must be >= 0 and <= 1"),
        (dict(condition_keep_threshold=0.1), ValueError, "cannot be used with output_type='tokens'"),
        (dict(condition_detail_gate=1.5), ValueError, r"condition_detail_gate must be >= 0 and <= 1"),
        (dict(condition_detail_gate=0.1), ValueError, "condition_detail_gate works on decoded frames"),
    ],
)
def test_bad_arguments_are_refused_before_generation(pipe, bad, error, message):
    with pytest.raises(error, match=message):
        pipe(**{"video": frames(1), "output_type": "tokens", **bad})


def test_diffusion_decoder_latent_output_and_prompt_go_through_its_guard(dv):
    tokenizer, text_encoder = tiny_t5_text_encoder()
    decoder = CosmosDiffusionDecoderPipeline(
        text_encoder, tokenizer, tiny_transformer(latent_channels=4, in_channels=4 + 32), tiny_cosmos_vae(),
        EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, final_sigmas_type="sigma_min"),
        CosmosDVTokenEmbedder(), max_sequence_length=8,
    )
    decoder.set_progress_bar_config(disable=True)
    tokens = torch.randint(1, 64000, (1, 2, 4, 4))
    with pytest.raises(ValueError, match="output_type='latent' returns undecoded output"):
        decoder(tokens=tokens, num_inference_steps=1, output_type="latent")
    with pytest.raises(ValueError, match="rejected the prompt"):
        decoder(tokens=tokens, prompt="a p1pe b0mb goes off", num_inference_steps=1, output_type="np")
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        decoder(tokens=tokens, num_inference_steps=1, generator=42)
    with pytest.raises(ValueError, match="fps must be > 0"):
        decoder(tokens=tokens, num_inference_steps=1, fps=0)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_warns_that_float32_is_faster(dv, native, monkeypatch):
    import warnings

    from cosmos_hf import utils

    monkeypatch.setattr(utils, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(utils, "_WARNED_EMULATED_BF16", set())
    pipeline = CosmosARVideo2WorldPipeline(tiny_ar().to(torch.bfloat16), dv, disable_safety_checker=True)
    pipeline.set_progress_bar_config(disable=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline(video=frames(5), output_type="tokens")
        pipeline(video=frames(5), output_type="tokens")
    messages = [str(w.message) for w in caught if "native bf16" in str(w.message)]
    if native:
        assert messages == []
    else:  # once per process, naming what runs in bf16 and the fix
        assert len(messages) == 1 and "CosmosARForCausalLM runs in bfloat16" in messages[0]
        assert "torch_dtype=torch.float32" in messages[0]
    assert not utils.warn_if_emulated_bf16(torch.float32, "cpu", "a float32 model")
