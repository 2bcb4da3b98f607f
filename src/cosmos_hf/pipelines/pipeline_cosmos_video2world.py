"""Cosmos-Predict1 Video2World pipeline: continue a video (or an image) with a DiT conditioned on its first frames.

Built on :class:`CosmosText2WorldPipeline` (text, checks, decoding, saving) with diffusers' Video2World rule for the
conditioning frames: the conditioning video is encoded, its latent frames are injected at every step as
``(cond + augment_sigma * n) * c_in(augment_sigma) / c_in(sigma)`` next to a condition-mask channel, and the
denoised estimate keeps them. With default options this is numerically diffusers' `CosmosVideoToWorldPipeline`
(tests/test_pipelines_cosmos.py); the nano-trial options stored in the pipeline config
(`condition_frame_channels`, `residual_from_last_condition_frame`, `condition_reference`) are applied exactly as the
trainer applies them.
"""

from __future__ import annotations

import dataclasses
import numbers

import torch
from diffusers import CosmosTransformer3DModel, EDMEulerScheduler
from diffusers.pipelines.cosmos.pipeline_output import CosmosPipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..diffusion.edm import CONDITION_REFERENCES, VideoCondition, denoise
from ..guardrails.checker import CosmosSafetyChecker
from .input_checks import check_generator, check_number, preprocess_conditioning_frames, rgb_distance_option
from .pipeline_cosmos_text2world import CosmosText2WorldPipeline, CosmosVAE


class CosmosVideo2WorldPipeline(CosmosText2WorldPipeline):
    r"""Image/video-to-world generation with a Cosmos-Predict1 Video2World DiT.

    The transformer's `in_channels` is the latent channels + 1 (condition mask) [+ latent channels with
    `condition_frame_channels`]. Extra config (besides Text2World's):
        condition_frame_channels: the last conditioning latent frame is given to every frame as extra channels.
        residual_from_last_condition_frame: x0 = last conditioning frame + EDM residual.
        condition_reference: what the two options above take for the last conditioning frame:
            "last_latent_frame" (default) or "still_frame" (`encode_still_reference`).
        default_condition_detail_transfer: the call default of `condition_detail_transfer` (see `__call__`).
        default_condition_detail_gate: the call default of `condition_detail_gate` (see `__call__`).
        default_strength: the call default of `strength` (see `__call__`).
        default_condition_keep_threshold: the call default of `condition_keep_threshold` (see `__call__`).
    """

    supported_condition_references = CONDITION_REFERENCES

    def __init__(
        self,
        text_encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        transformer: CosmosTransformer3DModel,
        vae: CosmosVAE,
        scheduler: EDMEulerScheduler,
        safety_checker: CosmosSafetyChecker | None = None,
        default_height: int = 704,
        default_width: int = 1280,
        default_num_frames: int = 121,
        default_fps: int = 30,
        max_sequence_length: int = 512,
        condition_frame_channels: bool = False,
        residual_from_last_condition_frame: bool = False,
        disable_safety_checker: bool = False,
        default_guidance_scale: float = 7.0,
        default_condition_detail_transfer: bool = False,
        default_condition_detail_gate: float | None = None,
        default_strength: float = 1.0,
        default_condition_keep_threshold: float | None = None,
        condition_reference: str = "last_latent_frame",
    ):
        if condition_reference not in self.supported_condition_references:
            raise ValueError(f"condition_reference must be one of {self.supported_condition_references} for "
                             f"{type(self).__name__}, got {condition_reference!r}")
        super().__init__(
            text_encoder, tokenizer, transformer, vae, scheduler, safety_checker, default_height, default_width,
            default_num_frames, default_fps, max_sequence_length, disable_safety_checker=disable_safety_checker,
            default_guidance_scale=default_guidance_scale,
        )
        self.register_to_config(
            condition_frame_channels=condition_frame_channels,
            residual_from_last_condition_frame=residual_from_last_condition_frame,
            default_condition_detail_transfer=default_condition_detail_transfer,
            default_condition_detail_gate=default_condition_detail_gate,
            default_strength=default_strength,
            default_condition_keep_threshold=default_condition_keep_threshold,
            condition_reference=condition_reference,
        )

    def _conditioning_video(self, image, video, height, width, num_frames, batch):
        """Preprocess the conditioning input to [B, 3, T_cond, H, W] in [-1, 1] and check its frame count."""
        frames = preprocess_conditioning_frames(self.video_processor, image, video, height, width)
        num_cond = frames.shape[2]
        temporal = self.vae_scale_factor_temporal
        if num_cond >= num_frames:
            raise ValueError(
                f"got {num_cond} conditioning frames for num_frames={num_frames}; the conditioning frames must be "
                f"fewer than num_frames (they are its first frames)"
            )
        if (num_cond - 1) % temporal:
            valid = [1 + temporal * k for k in range((num_frames - 2) // temporal + 1) if 1 + temporal * k < num_frames]
            raise ValueError(
                f"got {num_cond} conditioning frames; with a x{temporal} temporal VAE they must fill whole latent "
                f"frames: one of {valid}"
            )
        if frames.shape[0] not in (1, batch):
            raise ValueError(f"conditioning video batch {frames.shape[0]} does not match {batch} prompts/videos")
        return frames.expand(batch, -1, -1, -1, -1) if frames.shape[0] == 1 else frames

    def encode_conditioning(self, frames, num_frames, generator=None):
        """Pad conditioning frames with zeros to `num_frames`, encode, normalise: (latents, n conditioning latents)."""
        num_cond = frames.shape[2]
        padding = frames.new_zeros(frames.shape[0], frames.shape[1], num_frames - num_cond, *frames.shape[3:])
        full = torch.cat([frames, padding], dim=2).to(self.vae.dtype)
        latents = torch.cat([self.vae.encode(clip[None]).latent_dist.sample(generator) for clip in full])
        num_cond_latent = (num_cond - 1) // self.vae_scale_factor_temporal + 1
        return self.normalize_latents(latents.float()), num_cond_latent

    def prepare_latents(
        self,
        video: torch.Tensor,
        batch_size: int,
        num_channels_latents: int | None = None,
        height: int = 704,
        width: int = 1280,
        num_frames: int = 121,
        do_classifier_free_guidance: bool = True,
        input_frames_guidance: bool = False,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        augment_sigma: float = 0.001,
    ):
        """Encode the conditioning frames and draw the starting latents (diffusers' order: encode, then draw).

        Arguments in the order of diffusers' `CosmosVideoToWorldPipeline.prepare_latents`, plus `augment_sigma`, the
        noise level of the conditioning latents. `video`: preprocessed conditioning frames `[B, 3, T_cond, H, W]` in
        [-1, 1] (`_conditioning_video`).
        Returns `(latents, condition, uncondition)`: the starting latents (`Text2World.prepare_latents`) and the
        `VideoCondition` of each guidance branch (None for the unconditional one without guidance) with
        `augment_noise=None`: `denoising_loop` draws a fresh augmentation noise at every step. The unconditional
        branch sees the conditioning frames too, unless `input_frames_guidance` (then zero values and zero mask).
        """
        device = device or self._execution_device
        conditioning_latents, num_cond_latent = self.encode_conditioning(video, num_frames, generator)
        latents = super().prepare_latents(batch_size, num_channels_latents, height, width, num_frames, dtype, device,
                                          generator, latents)
        latent_frames, latent_height, latent_width = latents.shape[2:]
        indicator = (torch.arange(latent_frames, device=device) < num_cond_latent).float()[None, None, :, None, None]
        indicator = indicator.expand(batch_size, -1, -1, -1, -1)
        mask = indicator.expand(batch_size, 1, latent_frames, latent_height, latent_width)
        augment = torch.full((batch_size,), float(augment_sigma), device=device)
        reference = None
        if self.config.get("condition_reference", "last_latent_frame") == "still_frame":
            reference = self.encode_still_reference(video).to(device)
        condition = VideoCondition(indicator, mask, conditioning_latents, augment, augment_noise=None,
                                   reference=reference)
        uncondition = None
        if do_classifier_free_guidance:
            uncondition = condition
            if input_frames_guidance:
                uncondition = VideoCondition(indicator, torch.zeros_like(mask), torch.zeros_like(conditioning_latents),
                                             augment, augment_noise=None,
                                             reference=None if reference is None else torch.zeros_like(reference))
        return latents, condition, uncondition

    def encode_still(self, frames, num_frames):
        """The still video of the last conditioning frame (`[B, 3, num_frames, H, W]`, in the VAE's dtype) and its
        VAE latents (the distribution's mode, not normalised): what `condition_detail` and `strength < 1` start from."""
        still = frames[:, :, -1:].expand(-1, -1, num_frames, -1, -1).to(self.vae.dtype)
        latents = []
        for clip in still:
            latent_dist = self.vae.encode(clip[None]).latent_dist
            latents.append(latent_dist.mode() if hasattr(latent_dist, "mode") else latent_dist.sample())
        return still, torch.cat(latents)

    def encode_still_reference(self, frames):
        """The `condition_reference="still_frame"` reference of conditioning frames `frames` ([B, 3, T_cond, H, W] in
        [-1, 1]): the second latent frame of a still video of the last frame, 1 + temporal-factor frames long (one
        latent frame of a video that does not move; the first latent frame of a causal tokenizer is an image latent),
        the distribution's mode, normalised like the diffusion latents: [B, C, h, w]. The trainer calls this too."""
        latents = self.encode_still(frames, 1 + self.vae_scale_factor_temporal)[1]
        # normalised as a whole clip: latent statistics may differ per latent frame
        return self.normalize_latents(latents.float())[:, :, min(1, latents.shape[2] - 1)]

    def truncate_sampling_timesteps(self, strength: float) -> int:
        """Keep the last ``round(N * strength)`` (at least one) steps of the schedule set by `set_sampling_timesteps`,
        as diffusers' image-to-image pipelines do with `strength`; returns the number of steps kept."""
        total = len(self.scheduler.timesteps)
        kept = min(max(int(round(total * strength)), 1), total)
        start = total - kept
        self.scheduler.timesteps = self.scheduler.timesteps[start:]
        self.scheduler.sigmas = self.scheduler.sigmas[start:]
        return kept

    def condition_detail(self, frames, num_frames, decoded=None, gate=None, still_latents=None, keep_threshold=None):
        """What the tokenizer loses of a still video of the last conditioning frame: that video minus its round trip.

        `frames`: conditioning frames [B, 3, T_cond, H, W] in [-1, 1]. Returns [B, 3, num_frames, H, W]. Where the
        world does not move, a latent model's decoded output is (at best) this round trip, so adding the difference
        back restores the conditioning frame's own pixels there; moving content keeps the model's pixels, plus a faint
        trace of the detail at the place it left.

        With `decoded` (the decoded video, [B, 3, num_frames, H, W] in [-1, 1]) and `gate` (in (0, 1], image units):
        the detail is weighted per pixel by ``max(0, 1 - d / gate)``, d the largest RGB difference between `decoded`
        and the still round trip (in [0, 1] units). It is then added only where the model kept the still frame, so
        no trace is left where an object moved away. `still_latents`: `encode_still`'s latents when already computed.

        With `decoded` and `keep_threshold` (in (0, 1], image units): where d is below it, the returned detail is
        ``still - decoded``, so that ``decoded + detail`` is exactly the last conditioning frame there: a change the
        model predicts that is smaller than the threshold is taken for noise, and the frame is copied.
        """
        if still_latents is None:
            still, still_latents = self.encode_still(frames, num_frames)
        else:
            still = frames[:, :, -1:].expand(-1, -1, num_frames, -1, -1)
        round_trip = torch.cat([self.vae.decode(latent[None], return_dict=False)[0] for latent in still_latents])
        round_trip = round_trip.float()
        detail = still.float() - round_trip
        if gate is None and keep_threshold is None:
            return detail
        if decoded is None:
            raise ValueError("condition_detail: a gate or keep_threshold needs the decoded video")
        departure = (decoded.float() - round_trip).abs().amax(dim=1, keepdim=True) / 2.0  # [-1, 1] -> [0, 1] units
        if gate is not None:
            detail = detail * (1.0 - departure / gate).clamp(min=0.0)
        if keep_threshold is not None:
            detail = torch.where(departure < keep_threshold, still.float() - decoded.float(), detail)
        return detail

    def _detail_gate(self, value):
        """A call's `condition_detail_gate`, resolved against this pipeline's config (None = the saved default; a
        call's 0 turns a saved gate off, so the detail is added everywhere, as without a gate)."""
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and value == 0:
            return None
        return rgb_distance_option(self.config, "condition_detail_gate", value)

    def _keep_threshold(self, value):
        """A call's `condition_keep_threshold`, resolved against this pipeline's config; a call's 0 turns a saved
        default off (no pixel is within distance 0)."""
        return rgb_distance_option(self.config, "condition_keep_threshold", value, zero_is_off=True)

    @torch.no_grad()
    def __call__(
        self,
        image=None,
        video=None,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 36,
        guidance_scale: float | None = None,
        input_frames_guidance: bool = False,
        augment_sigma: float = 0.001,
        fps: int | None = None,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
        max_sequence_length: int | None = None,
        upsample_prompt: bool = False,
        prompt_upsampler=None,
        condition_detail_transfer: bool | None = None,
        condition_detail_gate: float | None = None,
        strength: float | None = None,
        condition_keep_threshold: float | None = None,
        guidance_min_sigma: float = 0.0,
    ):
        r"""Continue `video` or `image`.

        `video`: a list of frames (PIL / numpy float in [0, 1] or uint8) as diffusers takes it, a uint8 array
        [T, H, W, 3], or a float tensor [B, 3, T, H, W] / [3, T, H, W] in [-1, 1] (`cosmos_hf.data.frames_to_tensor`).
        `image`: one PIL image / array. Anything else (NaN, integer tensors, 0-255 floats) is refused before sampling
        (`check_inputs`, `input_checks.preprocess_conditioning_frames`).

        The output has `num_frames` frames whose first ones reproduce the conditioning frames. `augment_sigma` is
        the noise level of the conditioning latents (diffusers' default 0.001); `input_frames_guidance=True` makes
        the unconditional branch drop the conditioning frames (zero values and zero mask, as the reference trains
        with `condition_dropout`). `guidance_scale` g as in :class:`CosmosText2WorldPipeline`: g > 1 guides with
        ``x0_cond + g * (x0_cond - x0_uncond)``, g = 1 does not; `None` uses the config's `default_guidance_scale`.
        `callback_on_step_end` / `pipe._interrupt`: as in diffusers (`denoising_loop`).

        `condition_detail_transfer=True` (not in the reference; `None` uses the config's
        `default_condition_detail_transfer`) adds `condition_detail(...)` to the decoded video: the pixels the
        tokenizer cannot reproduce of the last conditioning frame. A latent model cannot otherwise be sharper than its
        tokenizer's round trip, which on the nano physics world is below plain copy-last-frame (README, "Nano
        Video2World"); the cost is one more encode + decode. `condition_detail_gate` (a number in (0, 1]; `None` uses
        the config's `default_condition_detail_gate`, which is `None` = everywhere unless set; 0 turns a saved gate
        off) adds the detail only
        where the decoded video stays within that RGB distance of the still round trip (`condition_detail`): it
        restores the same still pixels without leaving a trace where an object moved away.
        `condition_keep_threshold` (in (0, 1]; `None` uses the config's `default_condition_keep_threshold`, `None` =
        off unless set; 0 turns a saved default off; needs the transfer, and `condition_detail_transfer=False` turns a
        saved default off too) copies the last conditioning frame's pixels wherever the decoded video stays within
        that RGB distance of the still round trip: what the model predicts as (nearly) unchanged is unchanged.

        `strength` (in (0, 1], not in the reference; `None` uses the config's `default_strength`, 1.0 unless set) works
        as in diffusers' image-to-image pipelines, with the still video of the last conditioning frame as the image:
        below 1 the sampler starts from that video's latents noised to the schedule's sigma at step
        ``N - round(N * strength)`` and runs only the remaining steps (at least one). 1.0 starts from pure noise, as
        the reference does. Lower values keep more of what does not move; the model must then move objects from a
        partly denoised start.

        `guidance_min_sigma` (>= 0, not in the reference) limits classifier-free guidance to the steps whose noise
        level is at least this (`denoising_loop`); 0 (the default) guides every step, as the reference does.
        """
        height, width, num_frames, fps, max_sequence_length = self._resolve_defaults(
            height, width, num_frames, fps, max_sequence_length
        )
        guidance_scale = self._resolve_guidance_scale(guidance_scale)
        guidance_min_sigma = check_number("guidance_min_sigma", guidance_min_sigma, minimum=0,
                                          note="guidance only at steps whose noise level is at least this; 0 = all")
        if condition_detail_transfer is None:
            condition_detail_transfer = self.config.get("default_condition_detail_transfer", False)
        condition_detail_gate = self._detail_gate(condition_detail_gate)
        if strength is None:
            strength = self.config.get("default_strength", 1.0)
        strength = check_number("strength", strength, minimum=0, exclusive_minimum=True, maximum=1,
                                note="the fraction of the sampling schedule run from the noised still video")
        if condition_keep_threshold is not None and not condition_detail_transfer:
            if condition_keep_threshold != 0:
                raise ValueError("condition_keep_threshold needs condition_detail_transfer=True")
        # a saved default keep threshold belongs to the saved detail transfer: turning the transfer off turns it off
        condition_keep_threshold = (self._keep_threshold(condition_keep_threshold)
                                    if condition_detail_transfer else None)
        if condition_detail_transfer and output_type == "latent":
            raise ValueError("condition_detail_transfer works on decoded frames; it cannot be used with "
                             "output_type='latent'")
        self.check_inputs(prompt, prompt_embeds, height, width, num_frames, num_inference_steps, guidance_scale,
                          num_videos_per_prompt, output_type, fps=fps, negative_prompt_embeds=negative_prompt_embeds,
                          latents=latents, generator=generator, max_sequence_length=max_sequence_length,
                          callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs)
        augment_sigma = check_number("augment_sigma", augment_sigma, minimum=0,
                                     note="noise level of the conditioning latents")
        self._guidance_scale = guidance_scale
        self._current_timestep = None
        self._interrupt = False
        device = self._execution_device
        prompt = self._upsample_prompt(prompt, upsample_prompt, prompt_upsampler, device)
        self._check_prompt_safety(prompt, device)

        prompt_embeds, negative_prompt_embeds = self._encode_text(
            prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, num_videos_per_prompt,
            max_sequence_length, device,
        )
        batch = prompt_embeds.shape[0]
        check_generator(generator, batch)
        self.set_sampling_timesteps(num_inference_steps, device=device)

        frames = self._conditioning_video(image, video, height, width, num_frames, batch).to(device)
        latents, condition, uncondition = self.prepare_latents(
            frames, batch, None, height, width, num_frames, self.do_classifier_free_guidance, input_frames_guidance,
            torch.float32, device, generator, latents, augment_sigma,
        )
        still_latents = None
        if strength < 1.0 or condition_detail_transfer:
            still_latents = self.encode_still(frames, num_frames)[1]
        if strength < 1.0:
            # image-to-image start: the still video's latents plus the drawn noise at the first kept sigma
            self.truncate_sampling_timesteps(strength)
            sigma_start = self.scheduler.sigmas[0].to(latents)
            noise = latents / self.scheduler.config.sigma_max
            latents = self.normalize_latents(still_latents.float()) + sigma_start * noise
        options = dict(
            sigma_data=self.scheduler.config.sigma_data, fps=fps,
            condition_frame_channels=self.config.condition_frame_channels,
            residual_from_last_condition_frame=self.config.residual_from_last_condition_frame,
        )

        def denoise_branch(latents, sigma, text_embeds, conditional):
            # a fresh augmentation noise for each branch at each step, as diffusers' Video2World loop draws it
            noise = randn_tensor(latents.shape, generator=generator, device=device, dtype=torch.float32)
            branch = dataclasses.replace(condition if conditional else uncondition, augment_noise=noise)
            # below the augmentation noise the conditioning values are not injected (diffusers' rule)
            return denoise(self.transformer, latents, sigma, text_embeds, condition=branch,
                           use_condition_values=bool(augment_sigma < sigma), **options)

        latents = self.denoising_loop(latents, denoise_branch, prompt_embeds, negative_prompt_embeds,
                                      callback_on_step_end, callback_on_step_end_tensor_inputs,
                                      guidance_min_sigma=guidance_min_sigma)
        if condition_detail_transfer:
            decoded = self._decode_latents(latents).float()
            detail = self.condition_detail(frames, num_frames, decoded=decoded, gate=condition_detail_gate,
                                           still_latents=still_latents, keep_threshold=condition_keep_threshold)
            video = (decoded + detail).clamp(-1.0, 1.0)
            video_out = self._finish_video(video, output_type, device)
        else:
            video_out = self._decode(latents, output_type, device)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video_out,)
        return CosmosPipelineOutput(frames=video_out)
