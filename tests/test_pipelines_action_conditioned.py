"""CosmosActionConditionedPipeline on a tiny random model: the autoregressive rollout (which actions each chunk gets,
how many frames come back, padding of the last chunk), Hub-layout round trip, Video2World equivalence of a fresh
model, determinism and bad action input."""

import numpy as np
import pytest
import torch

from cosmos_hf.diffusion.post_training import pipeline_from_video2world
from cosmos_hf.data.post_training_datasets import ACTION_PROMPT
from cosmos_hf.diffusion.action_conditioning import CosmosActionConditionedTransformer3DModel
from cosmos_hf.pipelines.pipeline_cosmos_action_conditioned import CosmosActionConditionedPipeline
from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline

WINDOW = 9  # the tiny base: 9 frames = 3 latent frames -> 8 actions per window


def action_pipeline(base_folder, perturb: bool = False, **config):
    base = CosmosVideo2WorldPipeline.from_pretrained(base_folder, disable_safety_checker=True)
    transformer = CosmosActionConditionedTransformer3DModel.from_video2world(
        base.transformer, action_dim=7, num_action_frames=WINDOW - 1, **config).eval()
    if perturb:  # give the zero-initialised last layer of the AdaLN-LoRA action embedder some weight
        with torch.no_grad():
            layer = transformer.action_embedder_B_3D.fc2
            layer.weight.add_(torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(1)) * 0.5)
    pipe = pipeline_from_video2world(CosmosActionConditionedPipeline, base, transformer, disable_safety_checker=True)
    pipe.set_progress_bar_config(disable=True)
    base.set_progress_bar_config(disable=True)
    return pipe, base


@pytest.fixture(scope="module")
def pipes(tiny_video2world_folder):
    return action_pipeline(tiny_video2world_folder)


CONDITION = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 1, 32, 32)


def actions(count, seed=0):
    values = torch.randn(count, 7, generator=torch.Generator().manual_seed(seed)) * 0.05
    values[:, 6] = 1.0  # gripper open
    return values


def rollout(pipe, action_values, seed=0, **kwargs):
    args = dict(video=CONDITION, num_inference_steps=2, output_type="np", generator=torch.Generator().manual_seed(seed))
    args.update(kwargs)
    return pipe(actions=action_values, **args).frames


def record_window_actions(pipe):
    seen = []
    handle = pipe.transformer.register_forward_hook(
        lambda module, args, kwargs, output: seen.append(kwargs["action"].clone()), with_kwargs=True)
    return seen, handle


def test_rollout_returns_one_frame_per_action_and_feeds_each_chunk_its_actions(pipes):
    pipe, _ = pipes
    values = actions(20)  # 21 frames: the conditioning frame + chunks of 8 -> 3 chunks, the last one padded
    seen, handle = record_window_actions(pipe)
    try:
        frames = rollout(pipe, values)
    finally:
        handle.remove()
    assert frames.shape == (1, 21, 32, 32, 3)
    assert len(seen) == 3 * 2  # 3 chunks x 2 sampler steps
    padded = torch.cat([values, CosmosActionConditionedPipeline.hold_actions(values[-1:], 4)[0]])
    for chunk in range(3):
        for step in range(2):
            torch.testing.assert_close(seen[2 * chunk + step][0], padded[8 * chunk : 8 * chunk + 8])
    # the padding holds the end effector still with the gripper as the last action left it
    torch.testing.assert_close(padded[20:], torch.tensor([[0.0] * 6 + [1.0]] * 4))


def test_longer_conditioning_shortens_the_chunks_and_keeps_the_action_alignment(pipes):
    pipe, _ = pipes
    values = actions(12)
    video = torch.linspace(-1, 1, 3 * 5 * 32 * 32).reshape(1, 3, 5, 32, 32)  # 5 frames = 2 latent frames
    seen, handle = record_window_actions(pipe)
    try:
        frames = rollout(pipe, values, video=video, num_inference_steps=1)
    finally:
        handle.remove()
    assert frames.shape == (1, 13, 32, 32, 3)
    # chunks of 9 - 5 = 4 new frames: windows start at frames 0, 4 (and frame 4's window needs actions 4..11)
    assert len(seen) == 2
    torch.testing.assert_close(seen[0][0], values[0:8])
    torch.testing.assert_close(seen[1][0], values[4:12])


def test_a_fresh_action_model_first_chunk_is_its_video2world_base(pipes):
    pipe, base = pipes
    frames = rollout(pipe, actions(8))
    expected = base(video=CONDITION, prompt=ACTION_PROMPT, num_inference_steps=2, output_type="np",
                    generator=torch.Generator().manual_seed(0)).frames
    np.testing.assert_allclose(frames[:, 1:], expected[:, 1:], atol=1e-5)
    # the rollout returns the given conditioning frame itself (not its tokenizer round trip)
    np.testing.assert_allclose(frames[0, 0], (CONDITION[0, :, 0].permute(1, 2, 0).numpy() + 1) / 2, atol=1e-6)


def test_actions_change_the_rollout_once_the_embedder_is_trained(tiny_video2world_folder):
    pipe, _ = action_pipeline(tiny_video2world_folder, perturb=True)
    first = rollout(pipe, actions(8, seed=0))
    other = rollout(pipe, actions(8, seed=1))
    assert np.abs(first - other).max() > 1e-3
    np.testing.assert_array_equal(rollout(pipe, actions(8, seed=0)), first)  # same generator seed: same video


def test_per_latent_frame_actions_roll_out_and_load_back(tiny_video2world_folder, tmp_path):
    from diffusers import DiffusionPipeline

    pipe, _ = action_pipeline(tiny_video2world_folder, perturb=True, actions_per_latent_frame=4)  # 1 + 8 / 4 = 3
    first = rollout(pipe, actions(16, seed=0))
    late = actions(16, seed=0)
    late[12:] += 0.5  # only the actions leading into the second chunk's last latent frame
    assert first.shape == (1, 17, 32, 32, 3)
    assert np.abs(rollout(pipe, late) - first).max() > 1e-3
    pipe.save_pretrained(tmp_path / "action")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "action", trust_remote_code=True,
                                               disable_safety_checker=True)
    assert loaded.transformer.config.actions_per_latent_frame == 4
    loaded.set_progress_bar_config(disable=True)
    np.testing.assert_allclose(rollout(loaded, actions(16, seed=0)), first, atol=1e-5)


def test_saved_folder_loads_back_as_the_action_pipeline(pipes, tmp_path):
    from diffusers import DiffusionPipeline

    pipe, _ = pipes
    pipe.save_pretrained(tmp_path / "action")
    remote = DiffusionPipeline.from_pretrained(tmp_path / "action", trust_remote_code=True,
                                               disable_safety_checker=True)
    direct = CosmosActionConditionedPipeline.from_pretrained(tmp_path / "action", disable_safety_checker=True)
    for loaded in (remote, direct):
        assert type(loaded) is CosmosActionConditionedPipeline
        assert loaded.transformer.config.num_action_frames == WINDOW - 1
        loaded.set_progress_bar_config(disable=True)
    np.testing.assert_allclose(rollout(remote, actions(8)), rollout(pipe, actions(8)), atol=1e-5)


def test_output_types_and_batched_actions(pipes):
    pipe, _ = pipes
    batched = torch.stack([actions(8, seed=0), actions(8, seed=1)])
    assert rollout(pipe, batched, video=CONDITION.expand(2, -1, -1, -1, -1)).shape == (2, 9, 32, 32, 3)
    assert rollout(pipe, actions(8), output_type="pt").shape == (1, 9, 3, 32, 32)
    pil = rollout(pipe, actions(8), output_type="pil")
    assert len(pil) == 1 and len(pil[0]) == 9


@pytest.mark.parametrize("bad, message", [
    (dict(action_values=np.zeros((8, 6))), r"\[N, 7\]"),
    (dict(action_values=np.zeros((0, 7))), "at least one action"),
    (dict(action_values=np.full((8, 7), np.nan)), "NaN"),
    (dict(action_values=None), "pass `actions`"),
    (dict(action_values=np.zeros((8, 7)), num_frames=5), "num_action_frames \\+ 1 = 9"),
    (dict(action_values=np.zeros((8, 7)), output_type="latent"), "output_type"),
    (dict(action_values=np.zeros((3, 7)), video=torch.zeros(1, 3, 5, 32, 32)), "at least 5"),
    (dict(action_values=np.zeros((2, 8, 6))), r"\[B, N, 7\] \(this model takes 7-D actions\)"),
    (dict(action_values=np.zeros(7)), r"\[N, 7\]"),
    (dict(action_values=np.zeros((2, 8, 7)), prompt=["a", "b", "c"]), "actions batch 2 does not match 3"),
    (dict(action_values=np.zeros((8, 7)), num_videos_per_prompt=2), "num_videos_per_prompt is not supported"),
])
def test_bad_action_input_is_refused_with_a_clear_error(pipes, bad, message):
    pipe, _ = pipes
    action_values = bad.pop("action_values")
    with pytest.raises((ValueError, TypeError), match=message):
        rollout(pipe, action_values, **bad)
