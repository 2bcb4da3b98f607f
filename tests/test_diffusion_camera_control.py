"""Camera control: Plücker rays on analytic cameras, joystick paths, and the camera-conditioned DiT."""

import math

import pytest
import torch

from cosmos_hf.diffusion import (
    CosmosCameraControlTransformer3DModel,
    joystick_trajectory,
    latent_frame_poses,
    plucker_rays,
)
from cosmos_hf.diffusion.nano import tiny_transformer

K_LATENT = torch.tensor([[5.0, 0.0, 3.0], [0.0, 4.0, 2.0], [0.0, 0.0, 1.0]])  # principal point on latent pixel (2, 3)


def _pose(rotation=None, translation=(0.0, 0.0, 0.0)):
    pose = torch.eye(4, dtype=torch.float64)
    if rotation is not None:
        pose[:3, :3] = rotation
    pose[:3, 3] = torch.tensor(translation, dtype=torch.float64)
    return pose


def _rotation(axis: str, degrees: float):
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float64)
    if axis == "y":
        return torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float64)
    return torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float64)


# ---------------------------------------------------------------------------------------------------- Plücker rays


def test_plucker_pure_translation_keeps_directions_and_moments_are_o_cross_d():
    start = _pose(_rotation("y", 20.0), (1.0, 2.0, 3.0))
    step = torch.tensor([0.3, -0.1, 0.4], dtype=torch.float64)
    poses = torch.stack([start, start.clone(), start.clone()])
    poses[1, :3, 3] += step
    poses[2, :3, 3] += 2 * step
    rays = plucker_rays(K_LATENT, poses, (5, 7))
    assert rays.shape == (1, 6, 3, 5, 7) and rays.dtype == torch.float32
    moments, directions = rays[0, :3], rays[0, 3:]
    # translation only: every frame sees the same (relative) directions, unit length
    torch.testing.assert_close(directions[:, 1], directions[:, 0], atol=1e-6, rtol=0)
    torch.testing.assert_close(directions.norm(dim=0), torch.ones(3, 5, 7), atol=1e-6, rtol=0)
    # centres relative to frame 0 (in frame 0's camera axes), scaled so the farthest pair is 1 apart
    centre = start[:3, :3].T @ step / (2 * step.norm())
    for t in range(3):
        expected = torch.cross(
            (t * centre).float()[:, None, None].expand(3, 5, 7), directions[:, t], dim=0
        )
        torch.testing.assert_close(moments[:, t], expected, atol=1e-6, rtol=0)
    assert moments[:, 0].abs().max() < 1e-6  # the first camera is the origin


def test_plucker_pure_rotation_about_the_centre_has_zero_moments():
    centre = (0.5, -1.0, 2.0)
    poses = torch.stack([_pose(_rotation(axis, deg), centre) for axis, deg in (("x", 0), ("y", 30), ("z", -45))])
    rays = plucker_rays(K_LATENT, poses, (5, 7))
    assert torch.isfinite(rays).all()  # no division by a zero camera spread
    assert rays[0, :3].abs().max() < 1e-6


def test_plucker_principal_ray_is_the_camera_z_axis():
    rotations = [_rotation("x", 0), _rotation("y", 25), _rotation("x", -40) @ _rotation("z", 10)]
    poses = torch.stack([_pose(r, (0.1 * i, 0.0, -0.2 * i)) for i, r in enumerate(rotations)])
    rays = plucker_rays(K_LATENT, poses, (5, 7))
    for t, rotation in enumerate(rotations):
        # direction through the principal point (cx=3, cy=2 lies on latent pixel (2, 3)) in frame-0 camera axes
        expected = (rotations[0].T @ rotation)[:, 2].float()
        torch.testing.assert_close(rays[0, 3:, t, 2, 3], expected, atol=1e-6, rtol=0)


def test_plucker_maps_latent_pixel_centres_to_image_pixels():
    # K in image pixels of a 16x24 image on a 4x6 latent grid: pixel (i, j) centre is ((j+.5)*4 - .5, (i+.5)*4 - .5)
    K_image = torch.tensor([[10.0, 0.0, 11.5], [0.0, 10.0, 7.5], [0.0, 0.0, 1.0]])
    rays = plucker_rays(K_image, torch.eye(4)[None], (4, 6), image_size=(16, 24))
    direction = rays[0, 3:, 0, 1, 4]
    x, y = ((4 + 0.5) * 4 - 0.5 - 11.5) / 10.0, ((1 + 0.5) * 4 - 0.5 - 7.5) / 10.0
    expected = torch.tensor([x, y, 1.0]) / math.sqrt(x * x + y * y + 1)
    torch.testing.assert_close(direction, expected, atol=1e-6, rtol=0)


def test_plucker_normalises_the_largest_camera_distance_to_one():
    poses = torch.stack([_pose(translation=(0, 0, 0)), _pose(translation=(4, 0, 0)), _pose(translation=(0, 3, 0))])
    rays = plucker_rays(K_LATENT, poses, (5, 7))
    # farthest pair: (4, 0, 0) and (0, 3, 0), 5 apart -> centres divided by 5
    centres = torch.tensor([[0, 0, 0], [4, 0, 0], [0, 3, 0]], dtype=torch.float32) / 5.0
    d = rays[0, 3:, 2]
    torch.testing.assert_close(rays[0, :3, 2], torch.cross(centres[2][:, None, None].expand_as(d), d, dim=0),
                               atol=1e-6, rtol=0)
    bigger = poses.clone()
    bigger[:, :3, 3] *= 10
    torch.testing.assert_close(plucker_rays(K_LATENT, bigger, (5, 7)), rays, atol=1e-6, rtol=0)


def test_plucker_batched_equals_per_sample_and_accepts_numpy():
    poses_a = joystick_trajectory(["forward", "turn_left"], 3)
    poses_b = joystick_trajectory(["right", "up"], 3)
    batched = plucker_rays(K_LATENT, torch.stack([poses_a, poses_b]), (5, 7))
    torch.testing.assert_close(batched[0], plucker_rays(K_LATENT.numpy(), poses_a.numpy(), (5, 7))[0])
    torch.testing.assert_close(batched[1], plucker_rays(K_LATENT, poses_b, (5, 7))[0])


@pytest.mark.parametrize(
    "intrinsics, poses, match",
    [
        (K_LATENT, torch.eye(4)[None, None, :3], "cam_to_world must be"),
        (K_LATENT[None].repeat(2, 1, 1), torch.eye(4)[None].repeat(3, 1, 1), "intrinsics \\[T, 3, 3\\] has 2 frames"),
        (K_LATENT * torch.tensor([[-1.0], [1.0], [1.0]]), torch.eye(4)[None], "positive focal"),
        (K_LATENT, torch.full((1, 4, 4), float("nan")), "NaN"),
    ],
)
def test_plucker_rejects_bad_cameras(intrinsics, poses, match):
    with pytest.raises(ValueError, match=match):
        plucker_rays(intrinsics, poses, (5, 7))


def test_plucker_refuses_intrinsics_that_are_not_an_opencv_k():
    # a transposed K (principal point in the bottom row) has positive focal lengths and inverts fine: without the
    # check it gave rays up to 1.9 off, with no error
    poses = joystick_trajectory(["forward", "turn_left"], 3)
    scaled_homogeneous = K_LATENT.clone()
    scaled_homogeneous[2, 2] = 2.0
    for bad in (K_LATENT.T, scaled_homogeneous, K_LATENT[None].expand(3, 3, 3).transpose(-1, -2)):
        with pytest.raises(ValueError, match="bottom row \\[0, 0, 1\\]"):
            plucker_rays(bad, poses, (5, 7))


def test_plucker_refuses_poses_that_are_not_rigid():
    # transposed poses (row-major vs column-major mix-up) or a sheared / mirrored rotation block used to give
    # plausible-looking wrong rays; the Camera pipeline checked its own input, training and direct callers did not
    poses = joystick_trajectory(["forward", "turn_left"], 3)
    sheared = poses.clone()
    sheared[1, 0, 1] += 0.2
    mirrored = poses.clone()
    mirrored[:, :3, 0] *= -1
    for bad in (poses.transpose(-1, -2), sheared, mirrored):
        with pytest.raises(ValueError, match="rigid"):
            plucker_rays(K_LATENT, bad, (5, 7))


def test_plucker_rejects_bad_latent_size():
    with pytest.raises(ValueError, match="latent_size"):
        plucker_rays(K_LATENT, torch.eye(4)[None], (0, 7))


def test_latent_frame_poses_take_the_first_frame_then_every_kth():
    poses = torch.eye(4).repeat(9, 1, 1)
    poses[:, 0, 3] = torch.arange(9.0)
    latent = latent_frame_poses(poses, 4)
    assert latent[:, 0, 3].tolist() == [0.0, 4.0, 8.0]
    assert latent_frame_poses(poses[None], 4).shape == (1, 3, 4, 4)
    with pytest.raises(ValueError, match="1 \\+ 4\\*n pixel frames"):
        latent_frame_poses(poses[:8], 4)


# ---------------------------------------------------------------------------------------------------- joystick


def test_joystick_moves_are_in_the_camera_frame():
    forward = joystick_trajectory("forward", 3, step=0.5)
    torch.testing.assert_close(forward[:, :3, 3], torch.tensor([[0, 0, 0], [0, 0, 0.5], [0, 0, 1.0]]))
    up = joystick_trajectory("up", 2, step=1.0)
    assert up[1, 1, 3] == -1.0  # OpenCV y points down
    turned = joystick_trajectory(["turn_left", "forward"], 3, step=1.0, turn_degrees=90.0)
    # after a 90 degree left turn the camera looks along its former -x
    torch.testing.assert_close(turned[2, :3, 3], torch.tensor([-1.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    start = torch.eye(4)
    start[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    assert torch.equal(joystick_trajectory("stay", 4, start_cam_to_world=start), start.expand(4, 4, 4))


def test_joystick_rejects_unknown_moves_and_wrong_lengths():
    with pytest.raises(ValueError, match="unknown joystick moves \\['jump'\\]"):
        joystick_trajectory(["forward", "jump"], 3)
    with pytest.raises(ValueError, match="one move per frame step"):
        joystick_trajectory(["forward"], 3)


# ---------------------------------------------------------------------------------------------------- the model


def _inputs(batch=2, frames=3, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        hidden_states=torch.randn(batch, 4, frames, size, size, generator=g),
        timestep=torch.rand(batch, generator=g),
        encoder_hidden_states=torch.randn(batch, 5, 16, generator=g),
        fps=24,
        condition_mask=(torch.arange(frames) < 1).float()[None, None, :, None, None].expand(batch, 1, frames, size,
                                                                                          size).clone(),
        padding_mask=torch.zeros(1, 1, size, size),
    )


def _camera_model():
    base = tiny_transformer(video2world=True)
    return base, CosmosCameraControlTransformer3DModel.from_video2world(base)


def test_camera_model_from_video2world_reproduces_base_for_any_rays():
    base, model = _camera_model()
    inputs = _inputs()
    expected = base(**inputs, return_dict=False)[0]
    for seed in range(2):
        rays = torch.randn(2, 6, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 10
        assert torch.equal(model(**inputs, plucker=rays, return_dict=False)[0], expected)
    # the reference layout: [latent 4 | condition mask 1 | Plücker 6 | padding 1] for this 4-channel latent
    assert model.patch_embed.proj.in_features == (4 + 1 + 6 + 1) * 4


def test_camera_model_rays_change_the_output_once_trained_and_gradients_reach_them():
    _, model = _camera_model()
    inputs = _inputs()
    rays = plucker_rays(K_LATENT, joystick_trajectory("forward", 3), (8, 8)).expand(2, -1, -1, -1, -1)
    model.train()
    out = model(**inputs, plucker=rays, return_dict=False)[0]
    out.square().mean().backward()
    new_columns = model.patch_embed.proj.weight.grad.reshape(24, 12, 4)[:, 5:11]
    assert new_columns.abs().sum() > 0  # zero-initialised columns learn from the first step
    with torch.no_grad():
        model.patch_embed.proj.weight.normal_()
    other = plucker_rays(K_LATENT, joystick_trajectory("turn_left", 3), (8, 8)).expand(2, -1, -1, -1, -1)
    a = model(**inputs, plucker=rays, return_dict=False)[0]
    b = model(**inputs, plucker=other, return_dict=False)[0]
    assert (a - b).abs().max() > 1e-4


def test_camera_model_requires_well_shaped_rays():
    _, model = _camera_model()
    inputs = _inputs()
    with pytest.raises(ValueError, match="needs `plucker`"):
        model(**inputs)
    with pytest.raises(ValueError, match="plucker must have shape \\(2, 6, 3, 8, 8\\)"):
        model(**inputs, plucker=torch.zeros(2, 6, 2, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        model(**inputs, plucker=torch.full((2, 6, 3, 8, 8), float("nan")))


def test_camera_model_save_pretrained_round_trip(tmp_path):
    _, model = _camera_model()
    with torch.no_grad():
        model.patch_embed.proj.weight.normal_()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = CosmosCameraControlTransformer3DModel.from_pretrained(tmp_path)
    assert loaded.config.in_channels == 5 and loaded.config.camera_channels == 6
    inputs, rays = _inputs(), torch.randn(2, 6, 3, 8, 8)
    assert torch.equal(loaded(**inputs, plucker=rays, return_dict=False)[0],
                       model(**inputs, plucker=rays, return_dict=False)[0])


def test_camera_model_folder_with_a_missing_weight_is_refused(tmp_path):
    # diffusers only logged the missing key and left the weight on the meta device; the tokenizers' strict loading
    # now covers the conditioned DiTs too
    from conftest import drop_saved_weights

    _, model = _camera_model()
    model.save_pretrained(tmp_path)
    drop_saved_weights(tmp_path, "proj_out.weight")
    with pytest.raises(ValueError, match="1 missing: proj_out.weight"):
        CosmosCameraControlTransformer3DModel.from_pretrained(tmp_path)


def test_camera_model_runs_in_bfloat16():
    base = tiny_transformer(video2world=True).to(torch.bfloat16)
    model = CosmosCameraControlTransformer3DModel.from_video2world(base)
    assert model.patch_embed.proj.weight.dtype == torch.bfloat16
    inputs = {k: (v.to(torch.bfloat16) if torch.is_tensor(v) else v) for k, v in _inputs().items()}
    out = model(**inputs, plucker=torch.randn(2, 6, 3, 8, 8), return_dict=False)[0]
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
