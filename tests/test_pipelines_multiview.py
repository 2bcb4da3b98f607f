"""CosmosMultiViewPipeline on a tiny random model: the documented output layout, one-view equivalence with the
Video2World base, per-view conditioning (the per-view "last conditioning frame"), Hub-layout round trip,
determinism and bad view / caption / trajectory input."""

import numpy as np
import pytest
import torch

from cosmos_hf.diffusion.post_training import pipeline_from_video2world
from cosmos_hf.diffusion.multiview import CosmosMultiViewTransformer3DModel
from cosmos_hf.diffusion.post_training import multiview_condition
from cosmos_hf.pipelines.pipeline_cosmos_multiview import CosmosMultiViewPipeline
from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline


def multiview_pipeline(base_folder, num_views=2, trajectory_dim=27):
    base = CosmosVideo2WorldPipeline.from_pretrained(base_folder, disable_safety_checker=True)
    transformer = CosmosMultiViewTransformer3DModel.from_video2world(
        base.transformer, num_views=num_views, view_embed_dim=4, trajectory_dim=trajectory_dim).eval()
    pipe = pipeline_from_video2world(CosmosMultiViewPipeline, base, transformer, disable_safety_checker=True)
    pipe.set_progress_bar_config(disable=True)
    base.set_progress_bar_config(disable=True)
    return pipe, base


@pytest.fixture(scope="module")
def pipes(tiny_video2world_folder):
    return multiview_pipeline(tiny_video2world_folder)


VIDEO = torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 1, 32, 32)  # 2 views x 1 conditioning frame
TRAJECTORY = np.stack([np.linspace(0, 0.3, 9), np.zeros(9), np.zeros(9)], axis=1)  # [T, 3]


def generate(pipe, seed=0, **kwargs):
    args = dict(prompt=["a red ball rolls", "a blue cube slides"], video=VIDEO, trajectory=TRAJECTORY,
                num_inference_steps=2, output_type="np", generator=torch.Generator().manual_seed(seed))
    args.update(kwargs)
    return pipe(**args).frames


def test_output_layout_is_batch_views_frames(pipes):
    pipe, _ = pipes
    assert generate(pipe).shape == (1, 2, 9, 32, 32, 3)
    assert generate(pipe, output_type="pt").shape == (1, 2, 9, 3, 32, 32)
    pil = generate(pipe, output_type="pil")
    assert len(pil) == 1 and len(pil[0]) == 2 and len(pil[0][0]) == 9 and pil[0][0][0].size == (32, 32)
    # two samples: one list of per-view captions each
    two = generate(pipe, prompt=[["a", "b"], ["c", "d"]], video=VIDEO[None].expand(2, -1, -1, -1, -1, -1),
                   generator=None)
    assert two.shape == (2, 2, 9, 32, 32, 3)
    # without conditioning frames every view is generated from its caption
    assert generate(pipe, video=None).shape == (1, 2, 9, 32, 32, 3)
    np.testing.assert_array_equal(generate(pipe, seed=3), generate(pipe, seed=3))


def test_one_view_model_samples_exactly_like_its_video2world_base(tiny_video2world_folder):
    pipe, base = multiview_pipeline(tiny_video2world_folder, num_views=1, trajectory_dim=0)
    frames = generate(pipe, prompt=["a red ball rolls"], video=VIDEO[:1], trajectory=None)
    expected = base(video=VIDEO[:1], prompt="a red ball rolls", num_inference_steps=2, output_type="np",
                    generator=torch.Generator().manual_seed(0)).frames
    np.testing.assert_allclose(frames[:, 0], expected, atol=1e-5)


def test_each_view_is_conditioned_on_its_own_first_frames():
    latents = torch.randn(1, 4, 2 * 3, 2, 2)  # 2 views x 3 latent frames
    condition = multiview_condition(latents, num_views=2, num_condition_frames=1, augment_sigma=0.0)
    assert condition.indicator[0, 0, :, 0, 0].tolist() == [1, 0, 0, 1, 0, 0]
    reference = condition.last_frame_reference()  # the frame the condition_frame_channels option shows
    for frame in range(6):
        view_start = 0 if frame < 3 else 3
        torch.testing.assert_close(reference[:, :, frame], latents[:, :, view_start])
    empty = multiview_condition(latents, num_views=2, num_condition_frames=0, augment_sigma=0.0)
    assert not empty.mask.any() and not empty.last_frame_reference().any()


def test_saved_folder_loads_back_as_the_multiview_pipeline(pipes, tmp_path):
    from diffusers import DiffusionPipeline

    pipe, _ = pipes
    pipe.save_pretrained(tmp_path / "multiview")
    remote = DiffusionPipeline.from_pretrained(tmp_path / "multiview", trust_remote_code=True,
                                               disable_safety_checker=True)
    direct = CosmosMultiViewPipeline.from_pretrained(tmp_path / "multiview", disable_safety_checker=True)
    for loaded in (remote, direct):
        assert type(loaded) is CosmosMultiViewPipeline and loaded.num_views == 2
        loaded.set_progress_bar_config(disable=True)
    np.testing.assert_allclose(generate(remote), generate(pipe), atol=1e-5)


@pytest.mark.parametrize("bad, message", [
    (dict(prompt="one caption"), "one caption per view"),
    (dict(prompt=["a", "b", "c"]), "3 captions for a 2-view model"),
    (dict(trajectory=np.zeros((5, 3))), "27 values per sample"),
    (dict(trajectory=None), "pass `trajectory`"),
    (dict(video=VIDEO[:1]), "2 views"),
    (dict(video=[VIDEO[:1, :, :1], torch.zeros(1, 3, 5, 32, 32)]), "same number of conditioning frames"),
    (dict(video=[VIDEO[:1]] * 3), "conditioning videos for 3 views; this model has 2"),
    (dict(video=torch.zeros(3, 3, 1, 32, 32)), r"\(2 views\), got \(3, 3, 1, 32, 32\)"),
    (dict(trajectory=np.zeros((2, 27))), r"27 values per sample .*got shape \(2, 27\)"),
    (dict(output_type="latent"), "output_type"),
])
def test_bad_multiview_input_is_refused_with_a_clear_error(pipes, bad, message):
    pipe, _ = pipes
    with pytest.raises((ValueError, TypeError), match=message):
        generate(pipe, **bad)


@pytest.mark.parametrize("saved, message", [
    (dict(default_strength=0.5), "samples from noise only: default_strength must be 1.0"),
    (dict(default_condition_keep_threshold=2.0), "condition_keep_threshold must be >= 0 and <= 1"),
    (dict(default_condition_detail_gate=0.0), "condition_detail_gate must be > 0 and <= 1"),
])
def test_bad_saved_defaults_are_refused_before_sampling(tiny_video2world_folder, saved, message):
    pipe, _ = multiview_pipeline(tiny_video2world_folder)
    pipe.register_to_config(default_condition_detail_transfer=True, **saved)
    steps = []
    with pytest.raises(ValueError, match=message):
        generate(pipe, callback_on_step_end=lambda p, i, t, kw: steps.append(i) or {})
    assert steps == []  # refused before the first denoising step


def test_saved_keep_threshold_applies_to_every_view(tiny_video2world_folder):
    pipe, _ = multiview_pipeline(tiny_video2world_folder)
    pipe.register_to_config(default_condition_detail_transfer=True)
    transfer_only = generate(pipe)
    pipe.register_to_config(default_condition_keep_threshold=1.0)  # every pixel departs less than 1: all kept
    kept = generate(pipe)
    # each view's frames are its own last conditioning frame (VIDEO holds values in [-1, 1]; output in [0, 1])
    still = ((VIDEO[:, :, 0].permute(0, 2, 3, 1).numpy() + 1) / 2)[None, :, None]
    np.testing.assert_allclose(kept, np.broadcast_to(still, kept.shape), atol=1e-5)
    assert np.abs(transfer_only - kept).max() > 1e-3
