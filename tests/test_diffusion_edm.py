"""EDM objective: preconditioning identical to diffusers' EDMEulerScheduler, sigma sampling, loss weighting, Video2World
conditioning (loss only where not conditioned), and the nano-trial options."""

import math

import pytest
import torch
from diffusers import EDMEulerScheduler

from cosmos_hf.diffusion.edm import (
    EDMConfig,
    EDMObjective,
    UncertaintyLogVar,
    denoise,
    edm_loss_weight,
    edm_scalings,
    sample_lognormal_sigma,
    video_condition_from_frames,
)
from cosmos_hf.diffusion.nano import tiny_transformer, transformer_config


class RecordingNetwork(torch.nn.Module):
    """A stand-in transformer that records its inputs and returns a fixed linear function of them."""

    def __init__(self, out_channels):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(0.3))
        self.out_channels = out_channels
        self.calls = []

    def forward(self, hidden_states, timestep, encoder_hidden_states, fps=None, condition_mask=None,
                padding_mask=None, return_dict=False):
        self.calls.append(dict(hidden_states=hidden_states, timestep=timestep, text=encoder_hidden_states,
                               condition_mask=condition_mask))
        return (self.weight * hidden_states[:, : self.out_channels],)


@pytest.mark.parametrize("sigma_data", [0.5, 0.2])
def test_scalings_equal_diffusers_scheduler_preconditioning(sigma_data):
    scheduler = EDMEulerScheduler(sigma_data=sigma_data)
    sample, output = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4)
    for sigma in (0.002, 0.3, 1.0, 17.0, 80.0):
        c_skip, c_out, c_in, c_noise = edm_scalings(torch.tensor(sigma), sigma_data)
        sigma_t = torch.tensor(sigma)
        torch.testing.assert_close(sample * c_in, scheduler.precondition_inputs(sample, sigma_t))
        torch.testing.assert_close(c_noise, scheduler.precondition_noise(sigma_t))
        torch.testing.assert_close(c_skip * sample + c_out * output,
                                   scheduler.precondition_outputs(sample, output, sigma_t))
        # EDM's weight is 1 / c_out^2
        torch.testing.assert_close(edm_loss_weight(sigma_t, sigma_data), 1 / c_out**2)


def test_denoise_equals_scheduler_step_on_a_real_transformer():
    transformer = tiny_transformer(latent_channels=4, text_embed_dim=16)
    scheduler = EDMEulerScheduler(final_sigmas_type="sigma_min")
    scheduler.set_timesteps(5)
    latents = torch.randn(1, 4, 2, 4, 4) * 3
    text = torch.randn(1, 6, 16)
    padding = torch.zeros(1, 1, 4, 4)
    for i, t in enumerate(scheduler.timesteps):
        scaled = scheduler.scale_model_input(latents, t)
        raw = transformer(hidden_states=scaled, timestep=t.expand(1), encoder_hidden_states=text,
                          padding_mask=padding, return_dict=False)[0]
        expected = scheduler.step(raw, t, latents, return_dict=False)[1]
        scheduler._step_index -= 1
        ours = denoise(transformer, latents, scheduler.sigmas[i], text, sigma_data=0.5)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
        latents = scheduler.step(expected, t, latents, return_dict=False, pred_original_sample=expected)[0]


def test_lognormal_sigma_sampling_statistics_and_generator_determinism():
    sigma = sample_lognormal_sigma(20000, p_mean=-1.2, p_std=1.2, generator=torch.Generator().manual_seed(0))
    assert abs(sigma.log().mean().item() + 1.2) < 0.03
    assert abs(sigma.log().std().item() - 1.2) < 0.03
    again = sample_lognormal_sigma(20000, -1.2, 1.2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sigma, again)


def test_video_noise_adjustment_scales_sigma_by_sqrt_latent_frames():
    network = RecordingNetwork(3)
    objective = EDMObjective({"adjust_video_noise": True, "text_dropout": 0.0})
    text = torch.zeros(1, 4, 8)
    video = objective(network, torch.randn(1, 3, 9, 4, 4), text, generator=torch.Generator().manual_seed(1))
    image = objective(network, torch.randn(1, 3, 1, 4, 4), text, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(video["sigma"], image["sigma"] * 3.0)


def test_uncertainty_weighting_loss_formula():
    network = RecordingNetwork(3)
    objective = EDMObjective({"text_dropout": 0.0})
    latents, text = torch.randn(2, 3, 2, 4, 4) * 0.5, torch.zeros(2, 4, 8)
    sigma = torch.tensor([0.3, 4.0])
    plain = objective(network, latents, text, sigma=sigma, noise=torch.ones_like(latents))
    # u(sigma) starts at exactly 0: the loss starts as the plain EDM loss
    torch.testing.assert_close(plain["loss"], plain["edm_loss"])
    with torch.no_grad():
        objective.logvar.linear.weight.fill_(0.05)
    weighted = objective(network, latents, text, sigma=sigma, noise=torch.ones_like(latents))
    per_sample = ((latents - weighted["x0_pred"]) ** 2).flatten(1).mean(1) * edm_loss_weight(sigma, 0.5)
    u = weighted["logvar"]
    assert u.abs().min() > 0
    torch.testing.assert_close(weighted["loss"], (per_sample * torch.exp(-u) + u).mean())
    assert isinstance(objective.logvar, UncertaintyLogVar)


def test_text_dropout_zeroes_whole_prompts():
    network = RecordingNetwork(3)
    objective = EDMObjective({"text_dropout": 0.5})
    text = torch.ones(64, 4, 8)
    objective(network, torch.randn(64, 3, 1, 2, 2), text, generator=torch.Generator().manual_seed(0))
    seen = network.calls[-1]["text"]
    per_prompt = seen.flatten(1)
    dropped = (per_prompt == 0).all(1)
    kept = (per_prompt == 1).all(1)
    assert (dropped | kept).all() and 10 < dropped.sum() < 54


def test_video2world_conditioning_frames_carry_no_loss_and_enter_as_augmented_inputs():
    network = RecordingNetwork(3)
    objective = EDMObjective({"video2world": True, "text_dropout": 0.0, "min_condition_frames": 2,
                              "max_condition_frames": 2})
    latents = torch.randn(2, 3, 5, 4, 4) * 0.5
    out = objective(network, latents, torch.zeros(2, 4, 8), generator=torch.Generator().manual_seed(0))
    # x0 on the conditioning frames is the ground truth -> zero error there, nonzero elsewhere
    assert torch.equal(out["x0_pred"][:, :, :2], latents[:, :, :2])
    assert (out["x0_pred"][:, :, 2:] - latents[:, :, 2:]).abs().sum() > 0
    call = network.calls[-1]
    mask = call["condition_mask"]
    assert mask.shape == (2, 1, 5, 4, 4)
    assert mask[:, :, :2].eq(1).all() and mask[:, :, 2:].eq(0).all()


def test_first_random_n_draws_every_count_in_range():
    objective = EDMObjective({"video2world": True, "min_condition_frames": 0, "max_condition_frames": 2})
    generator = torch.Generator().manual_seed(0)
    counts = {int(objective.sample_condition(torch.zeros(1, 3, 5, 2, 2), generator).indicator.sum())
              for _ in range(60)}
    assert counts == {0, 1, 2}


def test_conditioning_input_is_c_in_of_augment_sigma():
    # the network sees conditioning frames as clean + augment noise, scaled by c_in(augment_sigma)
    network = RecordingNetwork(3)
    latents = torch.randn(1, 3, 3, 2, 2)
    condition = video_condition_from_frames(latents, 1, 0.25, generator=torch.Generator().manual_seed(0))
    noisy = torch.randn_like(latents) * 10
    denoise(network, noisy, 10.0, torch.zeros(1, 2, 4), condition=condition)
    seen = network.calls[-1]["hidden_states"]
    _, _, c_in_aug, _ = edm_scalings(torch.tensor(0.25), 0.5)
    _, _, c_in, _ = edm_scalings(torch.tensor(10.0), 0.5)
    expected_cond = (latents[:, :, :1] + 0.25 * condition.augment_noise[:, :, :1]) * c_in_aug
    torch.testing.assert_close(seen[:, :, :1], expected_cond)
    torch.testing.assert_close(seen[:, :, 1:], noisy[:, :, 1:] * c_in)


def test_residual_option_makes_an_untrained_model_copy_the_last_conditioning_frame():
    config = transformer_config("tiny", 3, 8, video2world=True, condition_frame_channels=True)
    from diffusers import CosmosTransformer3DModel

    transformer = CosmosTransformer3DModel(**config)
    torch.nn.init.zeros_(transformer.proj_out.weight)  # zero-initialised output projection
    latents = torch.randn(1, 3, 4, 8, 8) * 0.5
    condition = video_condition_from_frames(latents, 2, 0.0)
    x0 = denoise(transformer, torch.randn_like(latents) * 80, 80.0, torch.zeros(1, 3, 8), condition=condition,
                 condition_frame_channels=True, residual_from_last_condition_frame=True)
    last = latents[:, :, 1:2].expand(-1, -1, 2, -1, -1)
    # at sigma=80, c_skip ~ 4e-5: the prediction is the last conditioning frame plus a negligible skip term
    assert (x0[:, :, 2:] - last).abs().max() < 0.01
    torch.testing.assert_close(x0[:, :, :2], latents[:, :, :2])


def test_foreground_weighting_upweights_moving_pixels():
    network = RecordingNetwork(3)
    base = {"video2world": True, "text_dropout": 0.0, "min_condition_frames": 1, "max_condition_frames": 1,
            "loss_add_logvar": False}
    latents = torch.zeros(1, 3, 3, 4, 4)
    latents[:, :, 2, :2, :2] = 1.0  # something moved in the last frame
    args = dict(sigma=torch.tensor([1.0]), noise=torch.zeros_like(latents), generator=torch.Generator().manual_seed(0))
    plain = EDMObjective(base)(network, latents, torch.zeros(1, 2, 8), **args)
    weighted = EDMObjective({**base, "foreground_loss_weight": 5.0})(network, latents, torch.zeros(1, 2, 8), **args)
    assert weighted["loss"] > 2 * plain["loss"]


def test_still_frame_reference_feeds_the_chosen_references_to_the_reference_channels():
    # condition_reference="still_frame": the extra input channels hold the still-frame reference of the drawn
    # conditioning length (entry n-1), not the last conditioning latent frame
    network = RecordingNetwork(3)
    base = {"video2world": True, "text_dropout": 0.0, "loss_add_logvar": False, "condition_frame_channels": True,
            "condition_reference": "still_frame"}
    latents = torch.randn(2, 3, 4, 4, 4)
    still_references = torch.randn(2, 2, 3, 4, 4)
    for num_cond in (1, 2):
        objective = EDMObjective({**base, "min_condition_frames": num_cond, "max_condition_frames": num_cond})
        objective(network, latents, torch.zeros(2, 2, 8), sigma=torch.tensor([1.0, 1.0]),
                  still_references=still_references)
        extra = network.calls[-1]["hidden_states"][:, 3:]  # the latents (3 channels), then the reference
        expected = (still_references[:, num_cond - 1] / 0.5)[:, :, None].expand(-1, -1, 4, -1, -1)
        torch.testing.assert_close(extra, expected)
    plain = EDMObjective({**base, "condition_reference": "last_latent_frame", "max_condition_frames": 1,
                          "min_condition_frames": 1})
    plain(network, latents, torch.zeros(2, 2, 8), sigma=torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(network.calls[-1]["hidden_states"][:, 3:],
                               (latents[:, :, :1] / 0.5).expand(-1, -1, 4, -1, -1))
    with pytest.raises(ValueError, match="needs the still-frame references"):
        EDMObjective(base)(network, latents, torch.zeros(2, 2, 8))
    with pytest.raises(ValueError, match="holds 1 conditioning lengths; max_condition_frames is 2"):
        EDMObjective(base)(network, latents, torch.zeros(2, 2, 8), still_references=still_references[:, :1])


def test_dropped_condition_drops_the_still_frame_reference_too():
    condition = video_condition_from_frames(torch.randn(2, 3, 3, 4, 4), 1, 0.0, reference=torch.ones(2, 3, 4, 4),
                                            drop_condition=torch.tensor([True, False]))
    reference = condition.last_frame_reference()
    assert reference[0].abs().max() == 0 and torch.all(reference[1] == 1)


def test_condition_reference_option_is_checked():
    with pytest.raises(ValueError, match=r"condition_reference must be one of \('last_latent_frame', 'still_frame'\)"):
        EDMConfig.from_dict({"condition_reference": "still"})
    with pytest.raises(ValueError, match="set one of them too"):
        EDMConfig.from_dict({"condition_reference": "still_frame"})


def test_config_rejects_unknown_and_out_of_range_options():
    with pytest.raises(ValueError, match="unknown EDM objective options"):
        EDMConfig.from_dict({"sigma_dta": 0.5})
    with pytest.raises(ValueError, match="text_dropout"):
        EDMConfig.from_dict({"text_dropout": 1.5})
    with pytest.raises(ValueError, match="min_condition_frames"):
        EDMConfig.from_dict({"min_condition_frames": 3, "max_condition_frames": 1})
    with pytest.raises(ValueError, match="conditioning latent frames"):
        video_condition_from_frames(torch.zeros(1, 3, 2, 2, 2), 3, 0.1)
    assert math.isclose(EDMConfig().sigma_data, 0.5)
