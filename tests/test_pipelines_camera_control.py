"""CosmosCameraControlPipeline on a tiny random model: Hub-layout round trip, the rays the DiT receives, the
Video2World equivalence of a fresh (zero-column) model, determinism, output types and bad camera input."""

import numpy as np
import pytest
import torch

from cosmos_hf.diffusion.post_training import pipeline_from_video2world
from cosmos_hf.diffusion.camera_control import (
    CosmosCameraControlTransformer3DModel,
    joystick_trajectory,
    latent_frame_poses,
    plucker_rays,
)
from cosmos_hf.pipelines.pipeline_cosmos_camera_control import CosmosCameraControlPipeline
from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline
from cosmos_hf.sim.world import intrinsics_from_fov


def camera_pipeline(base_folder, perturb: bool = False):
    base = CosmosVideo2WorldPipeline.from_pretrained(base_folder, disable_safety_checker=True)
    transformer = CosmosCameraControlTransformer3DModel.from_video2world(base.transformer).eval()
    if perturb:  # give the (zero-initialised) ray columns of the patch embedding some weight
        with torch.no_grad():
            weight = transformer.patch_embed.proj.weight
            weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(1)) * 0.5)
    pipe = pipeline_from_video2world(CosmosCameraControlPipeline, base, transformer, disable_safety_checker=True)
    pipe.set_progress_bar_config(disable=True)
    base.set_progress_bar_config(disable=True)
    return pipe, base


@pytest.fixture(scope="module")
def pipes(tiny_video2world_folder):
    return camera_pipeline(tiny_video2world_folder)


def orbit(num_frames=9, degrees=40.0):
    """OpenCV poses turning about the camera's y axis while moving right."""
    moves = ["turn_right", "right"] * num_frames
    return joystick_trajectory(moves[: num_frames - 1], num_frames, turn_degrees=degrees / num_frames).numpy()


CONDITION = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 1, 32, 32)


def call(pipe, seed=0, **kwargs):
    args = dict(video=CONDITION, prompt="a red ball", num_inference_steps=2, output_type="np",
                generator=torch.Generator().manual_seed(seed))
    args.update(kwargs)
    return pipe(**args).frames


def test_saved_folder_loads_back_as_the_camera_pipeline_with_and_without_remote_code(pipes, tmp_path):
    from diffusers import DiffusionPipeline

    pipe, _ = pipes
    pipe.save_pretrained(tmp_path / "camera")
    remote = DiffusionPipeline.from_pretrained(tmp_path / "camera", trust_remote_code=True,
                                               disable_safety_checker=True)
    direct = CosmosCameraControlPipeline.from_pretrained(tmp_path / "camera", disable_safety_checker=True)
    for loaded in (remote, direct):
        assert type(loaded) is CosmosCameraControlPipeline
        assert type(loaded.transformer) is CosmosCameraControlTransformer3DModel
        assert loaded.config.default_fov_degrees == pipe.config.default_fov_degrees
        loaded.set_progress_bar_config(disable=True)
    poses = orbit()
    np.testing.assert_allclose(call(remote, cam_to_world=poses), call(pipe, cam_to_world=poses), atol=1e-5)


def test_the_dit_receives_plucker_rays_of_the_latent_frame_poses(pipes):
    pipe, _ = pipes
    poses = orbit()
    intrinsics = intrinsics_from_fov(32, 32, 45.0)
    seen = []
    # a forward hook sees the call's final kwargs (after the pipeline's own pre-hook added the rays)
    handle = pipe.transformer.register_forward_hook(
        lambda module, args, kwargs, output: seen.append(kwargs["plucker"].clone()), with_kwargs=True)
    try:
        call(pipe, cam_to_world=poses, intrinsics=intrinsics)
    finally:
        handle.remove()
    expected = plucker_rays(intrinsics, latent_frame_poses(poses, 4), (4, 4), (32, 32))
    assert len(seen) == 2  # one DiT call per step (guidance 1)
    for plucker in seen:
        torch.testing.assert_close(plucker, expected)
    # the hook was scoped to the call
    assert not pipe.transformer._forward_pre_hooks


def test_a_fresh_camera_model_samples_exactly_like_its_video2world_base(pipes):
    pipe, base = pipes
    with_camera = call(pipe, cam_to_world=orbit())
    without = base(video=CONDITION, prompt="a red ball", num_inference_steps=2, output_type="np",
                   generator=torch.Generator().manual_seed(0)).frames
    np.testing.assert_allclose(with_camera, without, atol=1e-5)


def test_the_camera_path_changes_the_video_once_the_ray_columns_are_trained(tiny_video2world_folder):
    pipe, _ = camera_pipeline(tiny_video2world_folder, perturb=True)
    still = call(pipe, cam_to_world=np.repeat(np.eye(4)[None], 9, 0))
    moving = call(pipe, cam_to_world=orbit())
    joystick = call(pipe, camera_moves="forward")
    assert np.abs(still - moving).max() > 1e-3 and np.abs(still - joystick).max() > 1e-3
    np.testing.assert_array_equal(call(pipe, cam_to_world=orbit()), moving)  # same generator seed: same video


def test_output_types(pipes):
    pipe, _ = pipes
    assert call(pipe, camera_moves="left").shape == (1, 9, 32, 32, 3)
    assert call(pipe, camera_moves="left", output_type="pt").shape == (1, 9, 3, 32, 32)
    pil = call(pipe, camera_moves="left", output_type="pil")
    assert len(pil) == 1 and len(pil[0]) == 9 and pil[0][0].size == (32, 32)


@pytest.mark.parametrize("bad, message", [
    (dict(cam_to_world=np.repeat(np.eye(4)[None], 5, 0)), "5 poses but num_frames=9"),
    (dict(cam_to_world=np.repeat(np.eye(4)[None], 9, 0), camera_moves="left"), "exactly one of"),
    (dict(), "exactly one of"),
    (dict(camera_moves=["forward"] * 3), "one move per frame step"),
    (dict(camera_moves="fly"), "unknown joystick moves"),
    (dict(camera_moves="left", intrinsics=np.eye(4)), "intrinsics must be"),
    (dict(cam_to_world=np.full((9, 4, 4), np.nan)), "NaN"),
    (dict(cam_to_world=np.repeat(np.eye(4)[None, :3], 9, 0)), r"cam_to_world must be \[T, 4, 4\]"),
    (dict(cam_to_world=np.repeat(np.eye(4)[None, None], 2, 0).repeat(9, 1)), "cam_to_world batch 2 does not match 1"),
    (dict(camera_moves="left", intrinsics=np.repeat(np.eye(3)[None], 5, 0)), "for 5 frames but num_frames=9"),
    (dict(camera_moves="left", intrinsics=np.tile(np.eye(3), (2, 9, 1, 1))), "intrinsics batch 2 does not match 1"),
    # not rigid: a scaled rotation block, a mirror (det -1), a projective bottom row
    (dict(cam_to_world=np.repeat(np.diag([2.0, 2.0, 2.0, 1.0])[None], 9, 0)), "rigid poses"),
    (dict(cam_to_world=np.repeat(np.diag([-1.0, 1.0, 1.0, 1.0])[None], 9, 0)), "rigid poses"),
    (dict(cam_to_world=np.repeat((np.eye(4) + np.pad([[0.5]], ((3, 0), (2, 1))))[None], 9, 0)), "rigid poses"),
])
def test_bad_camera_input_is_refused_with_a_clear_error(pipes, bad, message):
    pipe, _ = pipes
    with pytest.raises((ValueError, TypeError), match=message):
        call(pipe, **bad)
