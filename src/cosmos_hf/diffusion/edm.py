"""EDM training objective for Cosmos-Predict1 diffusion world models, matched to diffusers' Cosmos inference.

Everything here is written so that a model trained with :class:`EDMObjective` samples correctly with diffusers'
`EDMEulerScheduler` and the Cosmos Text2World / Video2World denoising loops:

* preconditioning (Karras et al. 2022, eq. 7) with ``sigma_data`` (0.5 by default)::

      c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)      c_out  = sigma * sigma_data / sqrt(sigma^2 + sigma_data^2)
      c_in   = 1 / sqrt(sigma^2 + sigma_data^2)             c_noise = 0.25 * log(sigma)

  ``x0_pred = c_skip * x_t + c_out * F(c_in * x_t, c_noise)`` — exactly ``EDMEulerScheduler.precondition_*``;
* clean latents are the VAE latents normalised to ``sigma_data`` std (what diffusers' pipelines do before decoding);
* log-normal training sigmas, optionally scaled by sqrt(latent frames) for video batches;
* the per-sigma EDM weight ``(sigma^2 + sigma_data^2) / (sigma * sigma_data)^2`` and the paper's uncertainty weighting
  (a learned log-variance u(sigma): loss = w * mse / exp(u) + u);
* Video2World: the condition-mask channel, the first n (random) latent frames as conditioning, noise augmentation of
  the conditioning frames with a log-normal sigma (fed through c_in(augment_sigma) / c_in(sigma), as diffusers'
  pipeline does it at inference), the conditioning region replaced by the ground truth in x0 so it carries no loss.

Options from DESIGN.md's nano trials sit behind flags; every flag's default is the reference recipe:
``condition_frame_channels`` (the last conditioning frame as extra input channels of every frame),
``residual_from_last_condition_frame`` (x0 = last conditioning frame + EDM residual, so an untrained model is
copy-last-frame), ``condition_reference`` (what those two options call the last conditioning frame: the last
conditioning latent frame, or the latent of a still video of the last conditioning pixel frame),
``foreground_loss_weight`` (extra weight where the target differs from the last conditioning frame).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn


CONDITION_REFERENCES = ("last_latent_frame", "still_frame")


@dataclass
class EDMConfig:
    """Hyper-parameters of the EDM objective. Defaults follow cosmos-predict1's training recipe."""

    sigma_data: float = 0.5
    # log-normal training sigma: log(sigma) ~ N(p_mean, p_std^2)
    p_mean: float = 0.0
    p_std: float = 1.0
    sigma_min: float = 0.0002
    sigma_max: float = 80.0
    # multiply the training sigma of video batches by sqrt(number of latent frames)
    adjust_video_noise: bool = False
    # learned log-variance u(sigma) (uncertainty weighting); False -> plain EDM-weighted MSE
    loss_add_logvar: bool = True
    # probability to drop the text condition (zero embeddings) for classifier-free guidance
    text_dropout: float = 0.2
    # --- Video2World ---
    video2world: bool = False
    min_condition_frames: int = 0  # "first_random_n": n ~ U{min, max} latent frames are conditioning
    max_condition_frames: int = 2
    augment_sigma_p_mean: float = -3.0  # conditioning-frame noise augmentation, log-normal (mostly 0..0.3)
    augment_sigma_p_std: float = 2.0
    augment_sigma_multiplier: float = 1.0
    condition_dropout: float = 0.0  # drop the conditioning frames (zero region + zero mask) for CFG on input frames
    # --- options from the nano trials (off = reference recipe) ---
    condition_frame_channels: bool = False
    residual_from_last_condition_frame: bool = False
    # the reference frame of the two options above: "last_latent_frame" (the last conditioning latent frame, which
    # with a 4x temporal tokenizer blurs pixel frames 1-4 together when they move) or "still_frame" (the latent of a
    # still video of the last conditioning pixel frame: sharp where the object ended up; see
    # `CosmosVideo2WorldPipeline.encode_still_reference`)
    condition_reference: str = "last_latent_frame"
    foreground_loss_weight: float = 1.0
    foreground_threshold: float = 0.1

    @classmethod
    def from_dict(cls, values: dict | None) -> "EDMConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown EDM objective options {unknown}; valid options: {sorted(known)}")
        config = cls(**values)
        config.validate()
        return config

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self):
        if self.sigma_data <= 0:
            raise ValueError(f"sigma_data must be > 0, got {self.sigma_data}")
        if not 0 <= self.text_dropout < 1:
            raise ValueError(f"text_dropout must be in [0, 1), got {self.text_dropout}")
        if not 0 <= self.condition_dropout < 1:
            raise ValueError(f"condition_dropout must be in [0, 1), got {self.condition_dropout}")
        if not 0 <= self.min_condition_frames <= self.max_condition_frames:
            raise ValueError(
                "need 0 <= min_condition_frames <= max_condition_frames, got "
                f"{self.min_condition_frames} and {self.max_condition_frames}"
            )
        if self.foreground_loss_weight < 0:
            raise ValueError(f"foreground_loss_weight must be >= 0, got {self.foreground_loss_weight}")
        if self.condition_reference not in CONDITION_REFERENCES:
            raise ValueError(f"condition_reference must be one of {CONDITION_REFERENCES}, got "
                             f"{self.condition_reference!r}")
        if self.condition_reference != "last_latent_frame" and not (
                self.condition_frame_channels or self.residual_from_last_condition_frame):
            raise ValueError(f"condition_reference={self.condition_reference!r} is the reference frame of "
                             "condition_frame_channels / residual_from_last_condition_frame: set one of them too")


def edm_scalings(sigma: torch.Tensor, sigma_data: float):
    """(c_skip, c_out, c_in, c_noise) for noise level(s) `sigma`, as `EDMEulerScheduler` applies them."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32)
    denominator = sigma**2 + sigma_data**2
    c_skip = sigma_data**2 / denominator
    c_out = sigma * sigma_data / denominator.sqrt()
    c_in = 1.0 / denominator.sqrt()
    c_noise = 0.25 * sigma.log()
    return c_skip, c_out, c_in, c_noise


def edm_loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """EDM's lambda(sigma) = 1 / c_out^2: makes the effective network-output loss unit-weighted at every sigma."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_lognormal_sigma(batch_size: int, p_mean: float, p_std: float, generator=None, device=None) -> torch.Tensor:
    """sigma = exp(p_mean + p_std * n), n ~ N(0, 1): the log-normal noise-level distribution of EDM / Cosmos."""
    noise = torch.randn(batch_size, generator=generator, device=device)
    return torch.exp(p_mean + p_std * noise)


def _expand(x: torch.Tensor, ndim: int) -> torch.Tensor:
    return x.reshape(x.shape + (1,) * (ndim - x.ndim))


class UncertaintyLogVar(nn.Module):
    """The learned log-variance u(sigma) of the paper's uncertainty-based loss weighting.

    Random Fourier features of c_noise (fixed, stored as buffers so checkpoints reproduce them) feed one linear layer
    without bias, initialised to zero so training starts from plain EDM weighting.
    """

    def __init__(self, num_channels: int = 128, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("frequencies", 2 * math.pi * torch.randn(num_channels, generator=generator))
        self.register_buffer("phases", 2 * math.pi * torch.rand(num_channels, generator=generator))
        self.linear = nn.Linear(num_channels, 1, bias=False)
        nn.init.zeros_(self.linear.weight)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        features = torch.cos(c_noise.float()[:, None] * self.frequencies[None] + self.phases[None]) * math.sqrt(2)
        return self.linear(features).squeeze(-1)


@dataclass
class VideoCondition:
    """Video2World conditioning of one batch.

    indicator: [B, 1, T, 1, 1], 1 on conditioning latent frames (whose values come from `latents`).
    mask:      [B, 1, T, H, W], the condition-mask channel concatenated to the transformer input.
    latents:   [B, C, T, H, W], clean (sigma_data-normalised) latents holding the conditioning frames.
    augment_sigma: [B], noise level of the conditioning-frame augmentation.
    augment_noise: [B, C, T, H, W] standard normal noise for the augmentation.
    reference: [B, C, H, W] or None: the reference frame of `condition_frame_channels` /
        `residual_from_last_condition_frame` when it is not the last conditioning latent frame
        (`condition_reference="still_frame"`: `CosmosVideo2WorldPipeline.encode_still_reference`).
    """

    indicator: torch.Tensor
    mask: torch.Tensor
    latents: torch.Tensor
    augment_sigma: torch.Tensor
    augment_noise: torch.Tensor
    reference: torch.Tensor | None = None

    def last_frame_reference(self) -> torch.Tensor:
        """The reference frame of each sample broadcast over time ([B, C, T, H, W]; 0 if no conditioning frame):
        `reference` when set, else the last conditioning latent frame."""
        indicator = self.indicator[:, 0, :, 0, 0]  # [B, T]
        num_cond = indicator.sum(dim=1).long()
        index = (num_cond - 1).clamp(min=0)
        if self.reference is not None:
            gathered = self.reference.to(self.latents.dtype)
        else:
            gathered = self.latents[torch.arange(self.latents.shape[0], device=self.latents.device), :, index]
        gathered = gathered * (num_cond > 0).to(gathered.dtype)[:, None, None, None]
        return gathered[:, :, None].expand_as(self.latents)


def video_condition_from_frames(
    latents: torch.Tensor,
    num_condition_frames: torch.Tensor | int,
    augment_sigma: torch.Tensor | float,
    generator=None,
    drop_condition: torch.Tensor | None = None,
    reference: torch.Tensor | None = None,
) -> VideoCondition:
    """Build a :class:`VideoCondition` whose first `num_condition_frames` latent frames (per sample) are conditioning.

    drop_condition ([B] bool): for those samples the conditioning region is zeroed and the mask is all zeros, as the
    reference's "zero_condition_region_condition_mask" unconditional type.
    """
    batch, _, frames, height, width = latents.shape
    device = latents.device
    num_cond = torch.as_tensor(num_condition_frames, device=device).long().reshape(-1).expand(batch)
    if (num_cond < 0).any() or (num_cond > frames).any():
        raise ValueError(f"number of conditioning latent frames must be in [0, {frames}], got {num_cond.tolist()}")
    indicator = (torch.arange(frames, device=device)[None] < num_cond[:, None]).to(latents.dtype)
    indicator = indicator[:, None, :, None, None]
    mask = indicator.expand(batch, 1, frames, height, width).clone()
    cond_latents = latents
    if drop_condition is not None and drop_condition.any():
        keep = (~drop_condition).to(latents.dtype)[:, None, None, None, None]
        mask = mask * keep
        cond_latents = latents * keep
        if reference is not None:
            reference = reference * keep[:, :, 0]
    augment_sigma = torch.as_tensor(augment_sigma, dtype=torch.float32, device=device).reshape(-1).expand(batch)
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    return VideoCondition(indicator, mask, cond_latents, augment_sigma.clone(), noise, reference=reference)


class EDMObjective(nn.Module):
    """EDM denoiser + training loss around a `CosmosTransformer3DModel`-compatible network.

    The module owns only the learned log-variance; the transformer is passed to each call so the same objective
    works with a plain, a peft-wrapped or an accelerate-wrapped (DDP/FSDP) transformer.
    """

    def __init__(self, config: EDMConfig | dict | None = None):
        super().__init__()
        self.config = config if isinstance(config, EDMConfig) else EDMConfig.from_dict(config)
        self.logvar = UncertaintyLogVar() if self.config.loss_add_logvar else None

    # ----------------------------------------------------------------------------------------------------------
    def denoise(
        self,
        transformer,
        noisy_latents: torch.Tensor,
        sigma: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        fps: int | None = None,
        condition: VideoCondition | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x0 prediction for `noisy_latents` at per-sample noise level `sigma` ([B] or scalar)."""
        return denoise(
            transformer,
            noisy_latents,
            sigma,
            encoder_hidden_states,
            sigma_data=self.config.sigma_data,
            fps=fps,
            condition=condition,
            padding_mask=padding_mask,
            condition_frame_channels=self.config.condition_frame_channels,
            residual_from_last_condition_frame=self.config.residual_from_last_condition_frame,
        )

    def sample_condition(self, latents: torch.Tensor, generator=None,
                         still_references: torch.Tensor | None = None) -> VideoCondition:
        """Training-time Video2World condition: first-random-n frames, log-normal augmentation sigma, dropout.

        `still_references` ([B, max_condition_frames, C, H, W]; entry n-1 is the still-frame reference for n
        conditioning latent frames, `CosmosVideo2WorldPipeline.encode_still_reference`) is needed exactly when `condition_reference="still_frame"`.
        """
        cfg = self.config
        batch, frames = latents.shape[0], latents.shape[2]
        high = min(cfg.max_condition_frames, frames)
        low = min(cfg.min_condition_frames, high)
        # one n per batch, as the reference draws it (keeps the batch's sequence layout identical)
        num_cond = int(torch.randint(low, high + 1, (1,), generator=generator).item())
        augment_sigma = cfg.augment_sigma_multiplier * sample_lognormal_sigma(
            batch, cfg.augment_sigma_p_mean, cfg.augment_sigma_p_std, generator=generator
        ).to(latents.device)
        drop = None
        if cfg.condition_dropout > 0:
            drop = (torch.rand(batch, generator=generator) < cfg.condition_dropout).to(latents.device)
        reference = None
        if cfg.condition_reference == "still_frame":
            if still_references is None:
                raise ValueError("condition_reference='still_frame' needs the still-frame references of each clip "
                                 "(`still_references`, [B, max_condition_frames, C, H, W])")
            if still_references.shape[1] < high:
                raise ValueError(f"still_references holds {still_references.shape[1]} conditioning lengths; "
                                 f"max_condition_frames is {high}")
            if num_cond > 0:
                reference = still_references[:, num_cond - 1].to(latents.device, latents.dtype)
        return video_condition_from_frames(latents, num_cond, augment_sigma, generator=generator, drop_condition=drop,
                                           reference=reference)

    def forward(
        self,
        transformer,
        latents: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        fps: int | None = None,
        padding_mask: torch.Tensor | None = None,
        generator=None,
        sigma: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        condition: VideoCondition | None = None,
        still_references: torch.Tensor | None = None,
    ) -> dict:
        """Training loss for clean (sigma_data-normalised) `latents` [B, C, T, H, W]. Returns a dict with `loss`.
        `still_references`: see `sample_condition` (only with `condition_reference="still_frame"`).

        A batch with one latent frame is an image batch: no video-noise adjustment and no video conditioning, so
        image and video batches can be mixed (joint training) with one objective.
        """
        cfg = self.config
        batch, _, frames = latents.shape[:3]
        device = latents.device
        is_video = frames > 1
        if sigma is None:
            sigma = sample_lognormal_sigma(batch, cfg.p_mean, cfg.p_std, generator=generator).to(device)
            if cfg.adjust_video_noise and is_video:
                sigma = sigma * math.sqrt(frames)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=device).reshape(-1).expand(batch)
        if noise is None:
            noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype).to(device)
        if cfg.text_dropout > 0:
            keep = (torch.rand(batch, generator=generator) >= cfg.text_dropout).to(device, encoder_hidden_states.dtype)
            encoder_hidden_states = encoder_hidden_states * keep[:, None, None]
        if cfg.video2world and is_video and condition is None:
            condition = self.sample_condition(latents, generator=generator, still_references=still_references)
        elif not (cfg.video2world and is_video):
            condition = None if not cfg.video2world else _empty_condition(latents)

        noisy = latents + _expand(sigma, latents.ndim).to(latents.dtype) * noise
        x0_pred = self.denoise(transformer, noisy, sigma, encoder_hidden_states, fps, condition, padding_mask)

        squared_error = (latents.float() - x0_pred.float()) ** 2
        if condition is not None and cfg.foreground_loss_weight != 1.0:
            reference = condition.last_frame_reference() if condition.indicator.any() else latents[:, :, :1]
            moving = ((latents - reference).abs().mean(dim=1, keepdim=True) > cfg.foreground_threshold).float()
            squared_error = squared_error * (1.0 + (cfg.foreground_loss_weight - 1.0) * moving)
        weight = edm_loss_weight(sigma, cfg.sigma_data)
        edm_loss = squared_error.flatten(1).mean(1) * weight  # [B]; conditioning region is exactly 0 here
        if self.logvar is not None:
            _, _, _, c_noise = edm_scalings(sigma, cfg.sigma_data)
            logvar = self.logvar(c_noise.to(device))
            loss = (edm_loss * torch.exp(-logvar) + logvar).mean()
        else:
            logvar = None
            loss = edm_loss.mean()
        return {
            "loss": loss,
            "edm_loss": edm_loss.mean().detach(),
            "mse": squared_error.mean().detach(),
            "sigma": sigma.detach(),
            "logvar": None if logvar is None else logvar.detach(),
            "x0_pred": x0_pred.detach(),
        }


def _empty_condition(latents: torch.Tensor) -> VideoCondition:
    # image batches of a Video2World model: condition-mask channel present (the network expects it) but all zeros
    return video_condition_from_frames(latents, 0, 0.0)


def denoise(
    transformer,
    noisy_latents: torch.Tensor,
    sigma,
    encoder_hidden_states: torch.Tensor,
    sigma_data: float = 0.5,
    fps: int | None = None,
    condition: VideoCondition | None = None,
    padding_mask: torch.Tensor | None = None,
    condition_frame_channels: bool = False,
    residual_from_last_condition_frame: bool = False,
    use_condition_values: torch.Tensor | bool = True,
) -> torch.Tensor:
    """EDM-preconditioned x0 prediction — the one function both training and our pipelines call.

    With a `condition`, conditioning frames enter as ``(cond + augment_sigma * n) * c_in(augment_sigma) / c_in(sigma)``
    (so after the c_in(sigma) input scaling they look like clean frames noised at augment_sigma), the condition mask is
    concatenated, and x0 on the conditioning frames is replaced by the clean conditioning latents.
    `use_condition_values=False` reproduces diffusers' inference rule for sigma <= augment_sigma: the conditioning
    values are not injected (but the mask channel stays).
    """
    batch = noisy_latents.shape[0]
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=noisy_latents.device).reshape(-1).expand(batch)
    c_skip, c_out, c_in, c_noise = (_expand(c, noisy_latents.ndim) for c in edm_scalings(sigma, sigma_data))
    model_input = noisy_latents
    condition_mask = None
    extra_channels = None
    reference = None
    indicator = None
    if condition is not None:
        indicator = condition.indicator.to(noisy_latents.dtype)
        if isinstance(use_condition_values, bool):
            indicator = indicator if use_condition_values else indicator * 0
        else:
            indicator = indicator * _expand(use_condition_values.to(indicator.dtype), indicator.ndim)
        _, _, c_in_augment, _ = edm_scalings(condition.augment_sigma.to(noisy_latents.device), sigma_data)
        augmented = condition.latents + _expand(condition.augment_sigma, 5).to(noisy_latents.dtype) * condition.augment_noise
        augmented = augmented * _expand(c_in_augment, 5) / c_in
        model_input = indicator * augmented + (1 - indicator) * noisy_latents
        condition_mask = condition.mask
        if condition_frame_channels or residual_from_last_condition_frame:
            reference = condition.last_frame_reference()
        if condition_frame_channels:
            extra_channels = reference / sigma_data
    dtype = _module_dtype(transformer)
    hidden_states = (model_input * c_in).to(dtype)
    if extra_channels is not None:
        hidden_states = torch.cat([hidden_states, extra_channels.to(dtype)], dim=1)
    if padding_mask is None:
        padding_mask = noisy_latents.new_zeros(1, 1, noisy_latents.shape[-2], noisy_latents.shape[-1], dtype=dtype)
    network_output = transformer(
        hidden_states=hidden_states,
        timestep=c_noise.flatten().to(dtype),
        encoder_hidden_states=encoder_hidden_states.to(dtype),
        fps=fps,
        condition_mask=None if condition_mask is None else condition_mask.to(dtype),
        padding_mask=padding_mask.to(dtype),
        return_dict=False,
    )[0].float()
    # diffusers' scheduler preconditions the output with the un-replaced sample (pipeline `latents`); on the
    # generated region both are the same, and the conditioning region is overwritten below.
    if reference is not None and residual_from_last_condition_frame:
        x0 = reference + c_skip * (noisy_latents - reference) + c_out * network_output
    else:
        x0 = c_skip * noisy_latents.float() + c_out * network_output
    if condition is not None:
        x0 = indicator * condition.latents + (1 - indicator) * x0
    return x0


def _module_dtype(module) -> torch.dtype:
    try:
        return next(module.parameters()).dtype
    except (StopIteration, AttributeError):
        return torch.float32
