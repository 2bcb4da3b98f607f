"""The nano world models bundled in pipelines/ load as their own pipeline classes with their saved defaults and
generate 17-frame 64x64 videos; their folders carry no copied text-encoder weights."""

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image

import cosmos_hf  # noqa: F401  (registers the custom components)
from cosmos_hf import sim

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


def _load(name, **kwargs):
    pipe = DiffusionPipeline.from_pretrained(PIPELINES / name, trust_remote_code=True, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _first_frame():
    record = sim.simulate("free_fall", seed=3, num_frames=5, height=64, width=64, fps=12)
    return record, [Image.fromarray(record.video[0])]


def test_nano_video2world_loads_with_its_defaults_and_continues_a_frame():
    pipe = _load("cosmos-nano-video2world")
    assert type(pipe).__name__ == "CosmosVideo2WorldPipeline"
    assert pipe.config.default_guidance_scale == 1.25 and pipe.config.default_condition_detail_transfer  # v0.7+
    assert pipe.config.default_condition_keep_threshold == 0.1  # v0.3+: the card's numbers use the saved defaults
    assert pipe.vae.config.spatial_compression_ratio == 4  # v0.3+: in the CV4x4x4 tokenizer's latent space
    assert type(pipe.text_encoder).__name__ == "MiniLMTextEncoder"
    assert sorted(p.name for p in (PIPELINES / "cosmos-nano-video2world" / "text_encoder").iterdir()) == ["config.json"]
    record, frames = _first_frame()
    video = pipe(video=frames, prompt=record.caption, num_inference_steps=3, output_type="np",
                 generator=torch.Generator().manual_seed(0)).frames[0]
    assert video.shape == (17, 64, 64, 3) and np.isfinite(video).all()
    # the detail transfer puts the conditioning frame's own pixels back on the first output frame
    assert np.abs(video[0] * 255 - record.video[0]).mean() < 3.0


def test_nano_text2world_generates_from_a_prompt():
    pipe = _load("cosmos-nano-text2world")
    assert type(pipe).__name__ == "CosmosText2WorldPipeline" and pipe.config.default_guidance_scale == 1.0
    video = pipe(prompt="A red ball falls onto the floor.", num_inference_steps=3, output_type="np",
                 generator=torch.Generator().manual_seed(0)).frames[0]
    assert video.shape == (17, 64, 64, 3) and np.isfinite(video).all()


def test_text2world_view_report_scores_each_view_and_noise_level_reproducibly(tmp_path):
    import json

    report = _training_script("report_text2world_views")
    folder = str(PIPELINES / "cosmos-nano-text2world")
    out = tmp_path / "views.json"
    with pytest.raises(SystemExit):  # seeds from 1000 on are the nano Text2World's training clips
        report.main([folder, "--clips", "1001", "--out", str(out)])
    assert report.main([folder, "--clips", "1", "--views", "0", "2", "--out", str(out)]) == 0
    errors = json.loads(out.read_text())["pipelines"][folder]
    assert sorted(errors) == ["view_0", "view_2"]
    for per_sigma in errors.values():
        values = [per_sigma[f"sigma_{sigma:g}"] for sigma in report.SIGMAS]
        assert all(np.isfinite(v) and v > 0 for v in values)
        assert values[0] < values[-1]  # less noise, less to guess
    clips = report.held_out_clips(1, [2], 17, 64, 12)
    assert report.denoising_errors(folder, clips, 12) == {"view_2": errors["view_2"]}  # same noise, same numbers
    with pytest.raises(SystemExit):
        report.main([folder, "--views", "4"])


def test_nano_ar_video2world_medusa_greedy_equals_greedy():
    # token output skips the video guardrail, so it needs the explicit opt-out
    pipe = _load("cosmos-nano-ar-video2world", disable_safety_checker=True)
    assert type(pipe).__name__ == "CosmosARVideo2WorldPipeline" and pipe.ar_model.config.medusa_num_heads > 0
    assert pipe.has_diffusion_decoder
    _, frames = _first_frame()
    plain = pipe(video=frames, output_type="tokens").frames
    medusa = pipe(video=frames, output_type="tokens", use_medusa=True).frames
    assert plain.shape == (1, 5, 8, 8) and torch.equal(plain, medusa)
    video = pipe(video=frames, output_type="np", use_diffusion_decoder=False).frames[0]
    assert video.shape == (17, 64, 64, 3)


def test_nano_ar_candidate_trees_accept_more_tokens_per_pass_than_the_heads_chain():
    """On the trained model, the previous latent frame's tokens are often what the model predicts: adding them to the
    candidate tree must raise the accepted tokens per verification pass, with the greedy tokens unchanged."""
    from cosmos_hf.autoregressive.medusa import medusa_generate

    pipe = _load("cosmos-nano-ar-video2world")
    _, frames = _first_frame()
    prompt = pipe.dv_tokenizer.tokenize(pipe._conditioning_frames(None, frames)).reshape(1, -1)
    new = pipe.ar_model.config.num_video_tokens - prompt.shape[1]
    plain = pipe.ar_model.generate(prompt, max_new_tokens=new, do_sample=False)
    chain = medusa_generate(pipe.ar_model, prompt, new)
    tree = medusa_generate(pipe.ar_model, prompt, new, temporal_candidates=8)
    assert torch.equal(chain.sequences, plain) and torch.equal(tree.sequences, plain)
    assert chain.mean_tokens_per_step > 1.5 and tree.mean_tokens_per_step > chain.mean_tokens_per_step + 0.5


@torch.no_grad()
def test_nano_ar_dv4x4x4_continues_with_its_saved_keep_threshold():
    pipe = _load("cosmos-nano-ar-video2world-dv4x4x4", disable_safety_checker=True)
    config = pipe.config
    # v0.2: keep 0.3 and no bias, chosen on the validation seeds 100-101
    assert (config.default_previous_frame_logit_bias, config.default_condition_keep_threshold) == (None, 0.3)
    model_config = pipe.ar_model.config
    assert model_config.latent_shape == [5, 16, 16] and model_config.num_hidden_layers == 10
    assert pipe.ar_model.medusa_heads is None and pipe.dv_tokenizer.config.spatial_compression == 4
    record = sim.simulate("free_fall", seed=3, num_frames=17, height=64, width=64, fps=12)
    frames = [Image.fromarray(frame) for frame in record.video[:5]]
    tokens = pipe(video=frames, output_type="tokens").frames
    assert tokens.shape == (1, 5, 16, 16)
    assert torch.equal(pipe(video=frames, output_type="tokens", use_medusa=True).frames, tokens)
    biased = pipe(video=frames, output_type="tokens", previous_frame_logit_bias=2.0).frames
    # a call's bias keeps more tokens as they were one latent frame earlier
    same = lambda grid: (grid[:, 2:] == grid[:, 1:-1]).float().mean()  # noqa: E731
    assert same(biased) > same(tokens)
    video = pipe(video=frames, output_type="np", use_medusa=True).frames[0]
    assert video.shape == (17, 64, 64, 3)
    # the saved keep threshold: the output is the last conditioning frame's own pixels wherever the prediction is
    # still, so most predicted pixels equal it exactly (a bare DV decode matches only saturated ones, about 20%)
    last = record.video[4].astype(np.float64)
    kept = np.all(np.abs(video[5:] * 255 - last) < 0.5, axis=-1).mean()
    bare = pipe(video=frames, output_type="np", use_medusa=True, condition_keep_threshold=0).frames[0]
    assert kept > 0.5 + np.all(np.abs(bare[5:] * 255 - last) < 0.5, axis=-1).mean()
    # the continuation stays close to the simulator (the falling objects move; copy-last scores about 25 dB)
    mse = np.mean((video[5:] * 255 - record.video[5:].astype(np.float64)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 22.0


def test_nano_dv4x4x4_tokenizer_keeps_the_objects_the_dv4x8x8_loses():
    """The bundled DV4x4x4 (the tokens for AR models that can beat copying): a 5 x 16 x 16 grid of its 1,000 codes
    for 17 frames, and a round trip far sharper than the DV4x8x8's on a held-out clip."""
    from cosmos_hf.data import frames_to_tensor
    from cosmos_hf.evaluation.video_metrics import psnr
    from cosmos_hf.tokenizers import load_tokenizer

    record = sim.simulate("free_fall", seed=7, num_frames=17, height=64, width=64, view=1, fps=12)
    video = frames_to_tensor(record.video)
    scores = {}
    for name in ("dv4x4x4", "dv4x8x8"):
        tokenizer = load_tokenizer(PIPELINES / f"cosmos-nano-tokenizer-{name}").eval()
        tokens = tokenizer.tokenize(video)
        assert tokens.dtype == torch.int64 and 0 <= int(tokens.min()) and int(tokens.max()) < 1000
        recon = tokenizer.detokenize(tokens).float().clamp(-1, 1)
        frames = ((recon[0].permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
        scores[name] = psnr(frames, record.video), tokens.shape
    assert scores["dv4x4x4"][1] == (1, 5, 16, 16) and scores["dv4x8x8"][1] == (1, 5, 8, 8)
    assert scores["dv4x4x4"][0] > 26.0 and scores["dv4x4x4"][0] > scores["dv4x8x8"][0] + 1.5, scores


def test_nano_action_conditioned_rolls_out_recorded_push_actions():
    from cosmos_hf.data.post_training_datasets import PushActionClips

    pipe = _load("cosmos-nano-action-conditioned")
    assert type(pipe).__name__ == "CosmosActionConditionedPipeline"
    assert pipe.transformer.config.num_action_frames == 16 and pipe.transformer.config.action_dim == 7
    clip = PushActionClips(1, num_frames=21, height=64, width=64, fps=8, seed_offset=0, workers=1).clips[0]
    first = torch.from_numpy(clip["video"][:1]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
    video = pipe(video=first, actions=clip["actions"], num_inference_steps=2, output_type="np",
                 generator=torch.Generator().manual_seed(0)).frames[0]
    assert video.shape == (21, 64, 64, 3) and np.isfinite(video).all()  # 20 actions -> 20 frames after the first


def _training_script(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, PIPELINES.parent / "training" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _post_trained_report(tmp_path, *args) -> dict:
    """training/report_post_trained.py on one held-out clip, one sampling step, no base model: its JSON."""
    import json

    out = tmp_path / "report.json"
    assert _training_script("report_post_trained").main(
        [*args, "--clips", "1", "--steps", "1", "--base", "none", "--sim_workers", "1", "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_post_trained_report_scores_the_action_model_on_the_requested_views(tmp_path):
    action = _post_trained_report(tmp_path, "--action", str(PIPELINES / "cosmos-nano-action-conditioned"),
                                  "--push_views", "2")["action"]
    assert action["views"] == [2] and action["frames"] == 33 and action["window"] == 17
    assert set(action["psnr"]) == {"model", "hold_actions", "copy_last_frame"}
    assert set(action["psnr_per_window"]["model"]) == {"window_1", "window_2"}
    assert all(0 < value < 100 for value in action["psnr_moving_pixels"].values())


def test_post_trained_report_prompts_the_camera_model_in_the_requested_caption_style(tmp_path):
    camera = _post_trained_report(tmp_path, "--camera", str(PIPELINES / "cosmos-nano-camera-control"),
                                  "--captions", "scene")["camera"]
    assert camera["captions"] == "scene" and set(camera["psnr"]) == {"model", "static_camera", "copy_last_frame"}


def test_post_trained_report_refuses_clips_past_the_held_out_seeds(tmp_path):
    """Clip i is simulator seed i and the post-training configs train on seeds 10000+: `--clips 10001` scored a
    training clip as held out. Refused before any pipeline loads (so the folder need not exist)."""
    with pytest.raises(SystemExit):
        _training_script("report_post_trained").main(["--camera", str(tmp_path / "missing"), "--clips", "10001",
                                                      "--out", str(tmp_path / "report.json")])
    assert not (tmp_path / "report.json").exists()


def test_nano_camera_control_follows_a_joystick_path():
    pipe = _load("cosmos-nano-camera-control")
    assert type(pipe).__name__ == "CosmosCameraControlPipeline"
    record, frames = _first_frame()
    outputs = [pipe(image=frames[0], prompt=record.caption, camera_moves=move, num_inference_steps=2, output_type="np",
                    generator=torch.Generator().manual_seed(0)).frames[0] for move in ("turn_left", "turn_right")]
    assert all(video.shape == (17, 64, 64, 3) and np.isfinite(video).all() for video in outputs)
    assert not np.array_equal(outputs[0], outputs[1])  # the trained ray columns are not zero: the path reaches it


def test_nano_multiview_continues_every_camera_of_a_held_out_rig_along_its_path():
    from cosmos_hf.data.post_training_datasets import MultiViewClips

    pipe = _load("cosmos-nano-multiview")
    assert type(pipe).__name__ == "CosmosMultiViewPipeline" and pipe.num_views == 3
    assert pipe.transformer.config.trajectory_std is not None  # the release reads a standardised path
    clip = MultiViewClips(1, num_views=3, num_frames=9, fps=12, captions="scene", workers=1)[0]  # as the card
    outputs = [pipe(prompt=clip["caption"], video=clip["video"][:, :, :1], trajectory=trajectory,
                    num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np").frames[0]
               for trajectory in (clip["trajectory"], torch.zeros_like(clip["trajectory"]))]
    assert all(views.shape == (3, 9, 64, 64, 3) and np.isfinite(views).all() for views in outputs)
    assert not np.array_equal(outputs[0], outputs[1])  # the trained trajectory columns reach the output


@pytest.mark.parametrize("name", ["cosmos-nano-video2world", "cosmos-nano-text2world", "cosmos-nano-ar-video2world",
                                  "cosmos-nano-ar-video2world-dv4x4x4", "cosmos-nano-action-conditioned", "cosmos-nano-camera-control",
                                  "cosmos-nano-multiview"])
def test_bundled_world_model_has_a_model_card(name):
    card = (PIPELINES / name / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: diffusers\n") and "## Training" in card and "## Limitations" in card
