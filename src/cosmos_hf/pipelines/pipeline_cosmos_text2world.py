"""Cosmos-Predict1 Text2World pipeline that runs without external guardrail packages and saves in Hub layout.

It subclasses diffusers' `CosmosTextToWorldPipeline` (prompt handling, properties) and
`CosmosLoraLoaderMixin` (`load_lora_weights` / `save_lora_weights`), and replaces the denoising loop with one that
calls `cosmos_hf.diffusion.edm.denoise` — the function training uses — so a model trained by
`training/train_diffusion.py` samples with exactly its training parameterisation. With default options the loop is
numerically diffusers' loop (tests/test_pipelines_cosmos.py compares them on the same components).

Differences from diffusers' pipeline, all deliberate:
* guardrails are built in and on by default: `safety_checker=None` means our `CosmosSafetyChecker()` (blocklist +
  face pixelation, fail closed); `disable_safety_checker=True` is the explicit opt-out; any object with
  `check_text_safety(str) -> bool` and `check_video_safety(uint8 [T,H,W,3]) -> uint8 [T,H,W,3]` plugs in. With a
  guard, `prompt_embeds=` without a prompt and `output_type="latent"` are refused (they would skip it).
* every argument is validated in `check_inputs` (NaN/inf in tensors, `fps <= 0`, non-finite guidance, a seed where a
  `torch.Generator` belongs): a clear error instead of diffusers' silent black or saturated video.
* `upsample_prompt=True` rewrites the prompt with a `prompt_upsampler` (e.g. `CosmosPromptUpsampler`) first; the
  guardrail checks the user's prompt before the upsampler sees it and the upsampled prompt after (as the
  reference's Text2World: a rewrite must not launder an unsafe prompt), and the model sees the upsampled one.
* the text encoder may be any transformers encoder (T5 for official checkpoints, all-MiniLM-L6-v2 for nano models);
* `vae` may be `CosmosPixelSpaceAutoencoder` (pixel-space models);
* default size, frame count, fps and text length come from the pipeline config (set by the trainer);
* with no `negative_prompt`, the unconditional branch uses zero text features — what text dropout trains.

The pipeline reads like diffusers' (`check_inputs`, `encode_prompt`, `prepare_latents`, `callback_on_step_end`,
`interrupt`), and its `denoising_loop` is the one EDM sampling loop of every cosmos-hf diffusion pipeline
(Text2World, Video2World and its camera / action / multi-view variants, the autoregressive model's diffusion decoder):
each pipeline only says how one denoiser branch is evaluated.

`guidance_scale` g means the same in all of them: classifier-free guidance with the Cosmos rule
``x0 = x0_cond + g * (x0_cond - x0_uncond)``. What differs is only which g skips the unconditional branch: the world
pipelines follow diffusers' Cosmos pipelines (branch evaluated when g > 1, values below 1 refused, so g = 1 is "no
guidance"); the diffusion decoder follows the reference decoder (branch evaluated when g > 0, default 1.8).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch
from diffusers import (
    AutoencoderKLCosmos,
    CosmosTextToWorldPipeline,
    CosmosTransformer3DModel,
    DiffusionPipeline,
    EDMEulerScheduler,
)
from diffusers.loaders import CosmosLoraLoaderMixin
from diffusers.pipelines.cosmos.pipeline_output import CosmosPipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..diffusion.edm import denoise

# imported so that pipeline folders whose vae is the pixel-space identity load (diffusers resolves custom components
# through already-imported modules)
from ..diffusion.pixel_space import CosmosPixelSpaceAutoencoder
from ..diffusion.text_encoding import encode_prompts
from ..guardrails.checker import CosmosSafetyChecker, resolve_safety_checker
from .guardrail import check_prompt_safety, guard_videos
from .hub_layout import HubLayoutMixin
from .input_checks import (
    check_finite_tensor,
    check_generator,
    check_guardrail_coverage,
    check_number,
    check_output_type,
)
from ..utils import warn_if_emulated_bf16
from .shared_weights import ReferencedAutoencoderKLCosmos

OUTPUT_TYPES = ("pil", "np", "pt", "latent")

# Component type hints of the pipelines' `__init__`: diffusers' `from_pipe` hands a model component over to the new
# pipeline only when its exact class is listed in the new pipeline's hint (a missing hint drops it).
CosmosVAE = AutoencoderKLCosmos | ReferencedAutoencoderKLCosmos | CosmosPixelSpaceAutoencoder


class CosmosText2WorldPipeline(HubLayoutMixin, CosmosTextToWorldPipeline, CosmosLoraLoaderMixin):
    r"""Text-to-world video generation with a Cosmos-Predict1 DiT (`CosmosTransformer3DModel`) and EDM sampling.

    Args:
        text_encoder: a transformers encoder whose `last_hidden_state` feeds cross-attention (T5 or MiniLM).
        tokenizer: its tokenizer.
        transformer: `CosmosTransformer3DModel`.
        vae: `AutoencoderKLCosmos` or `CosmosPixelSpaceAutoencoder`.
        scheduler: `EDMEulerScheduler` (its `sigma_data` must be the one the model was trained with).
        safety_checker: guardrail (see module docstring); `None` gives the default `CosmosSafetyChecker()`.
        disable_safety_checker: explicit opt-out of guardrails (not saved with the pipeline).
        default_height, default_width, default_num_frames, default_fps: call defaults.
        max_sequence_length: text length (tokens) the transformer was trained with.
        default_guidance_scale: guidance used when a call passes none (diffusers' 7.0; the nano checkpoints save
            their own: 1.0, no guidance, or 1.25 for nano Video2World since v0.7).
    """

    _optional_components = ["safety_checker"]
    # what `callback_on_step_end_tensor_inputs` may name (diffusers' Cosmos pipelines offer the same three)
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

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
        disable_safety_checker: bool = False,
        default_guidance_scale: float = 7.0,
    ):
        DiffusionPipeline.__init__(self)  # diffusers' __init__ would demand the external cosmos_guardrail package
        safety_checker = resolve_safety_checker(safety_checker, disable_safety_checker)
        self.register_modules(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            transformer=transformer,
            scheduler=scheduler,
            safety_checker=safety_checker,
        )
        self.register_to_config(
            default_height=default_height,
            default_width=default_width,
            default_num_frames=default_num_frames,
            default_fps=default_fps,
            max_sequence_length=max_sequence_length,
            default_guidance_scale=default_guidance_scale,
        )
        self.vae_scale_factor_temporal = self.vae.config.temporal_compression_ratio if vae is not None else 8
        self.vae_scale_factor_spatial = self.vae.config.spatial_compression_ratio if vae is not None else 8
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae_scale_factor_spatial)

    # ------------------------------------------------------------------ text
    def _get_t5_prompt_embeds(self, prompt=None, max_sequence_length=512, device=None, dtype=None):
        # same features as training (cosmos_hf.diffusion.text_encoding), for T5 and non-T5 encoders alike
        return encode_prompts(
            self.tokenizer, self.text_encoder, prompt, max_sequence_length, device=device or self._execution_device,
            dtype=dtype or self.text_encoder.dtype,
        )

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None = None,
        do_classifier_free_guidance: bool = True,
        num_videos_per_prompt: int = 1,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        max_sequence_length: int = 512,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ):
        r"""Text features `[B * num_videos_per_prompt, L, D]` for both guidance branches (diffusers' signature).

        Differs from diffusers' in one deliberate way: with guidance and no `negative_prompt`, the unconditional branch
        gets zero features ("no text", what text dropout trains) instead of diffusers' long negative prompt.
        Returns `(prompt_embeds, negative_prompt_embeds)`; the second is None without guidance.
        """
        device = device or self._execution_device
        if prompt_embeds is None:
            prompt_embeds = self._get_t5_prompt_embeds(prompt, max_sequence_length, device, dtype)
        prompt_embeds = prompt_embeds.to(device).repeat_interleave(num_videos_per_prompt, dim=0)
        if not do_classifier_free_guidance:
            return prompt_embeds, None
        if negative_prompt_embeds is None:
            if negative_prompt is None:
                negative_prompt_embeds = torch.zeros_like(prompt_embeds)  # "no text", as text dropout trains it
            else:
                batch = len(prompt_embeds) // num_videos_per_prompt
                negative = [negative_prompt] * batch if isinstance(negative_prompt, str) else list(negative_prompt)
                if len(negative) != batch:
                    raise ValueError(f"negative_prompt has {len(negative)} entries but there are {batch} prompts")
                negative_prompt_embeds = self._get_t5_prompt_embeds(negative, max_sequence_length, device, dtype)
                negative_prompt_embeds = negative_prompt_embeds.repeat_interleave(num_videos_per_prompt, dim=0)
        else:
            negative_prompt_embeds = negative_prompt_embeds.to(device).repeat_interleave(num_videos_per_prompt, dim=0)
        if negative_prompt_embeds.shape != prompt_embeds.shape:
            raise ValueError(
                f"negative_prompt_embeds shape {tuple(negative_prompt_embeds.shape)} does not match prompt_embeds "
                f"shape {tuple(prompt_embeds.shape)}"
            )
        return prompt_embeds, negative_prompt_embeds

    def _encode_text(self, prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, num_videos_per_prompt,
                     max_sequence_length, device):
        # the call's text step (kept under this name: callers wrap it), guidance as the call set it
        return self.encode_prompt(prompt, negative_prompt, self.do_classifier_free_guidance, num_videos_per_prompt,
                                  prompt_embeds, negative_prompt_embeds, max_sequence_length, device)

    # ------------------------------------------------------------------ checks
    def _resolve_guidance_scale(self, guidance_scale):
        # None: the value the checkpoint was released with (7.0, the reference's, unless its config says otherwise)
        if guidance_scale is not None:
            return guidance_scale
        return self.config["default_guidance_scale"] if "default_guidance_scale" in self.config else 7.0

    def _resolve_defaults(self, height, width, num_frames, fps, max_sequence_length):
        cfg = self.config
        return (
            cfg.default_height if height is None else height,
            cfg.default_width if width is None else width,
            cfg.default_num_frames if num_frames is None else num_frames,
            cfg.default_fps if fps is None else fps,
            cfg.max_sequence_length if max_sequence_length is None else max_sequence_length,
        )

    def check_inputs(self, prompt, prompt_embeds, height, width, num_frames, num_inference_steps, guidance_scale,
                     num_videos_per_prompt, output_type, *, fps=None, negative_prompt_embeds=None, latents=None,
                     generator=None, max_sequence_length=None, callback_on_step_end_tensor_inputs=None):
        """Validate call arguments before any work; every error names the argument and its valid range.

        Keyword arguments left at None are not checked (callers such as the trainer check only the video size).
        Also refuses calls that would get past the guardrail (see `input_checks.check_guardrail_coverage`).
        """
        self.check_callback_tensor_inputs(callback_on_step_end_tensor_inputs)
        if prompt is not None and prompt_embeds is not None:
            raise ValueError("pass either `prompt` or `prompt_embeds`, not both")
        if prompt is None and prompt_embeds is None:
            raise ValueError("provide `prompt` (str or list of str) or `prompt_embeds`")
        if prompt is not None and not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt
                                                                    and all(isinstance(p, str) for p in prompt))):
            raise ValueError(f"`prompt` must be a string or a non-empty list of strings, got {type(prompt).__name__}")
        text_dim = self.transformer.config.text_embed_dim
        for name, embeds in (("prompt_embeds", prompt_embeds), ("negative_prompt_embeds", negative_prompt_embeds)):
            if embeds is not None:
                check_finite_tensor(name, embeds, ndim=3, shape_hint="[batch, text tokens, features]")
                if embeds.shape[-1] != text_dim:
                    raise ValueError(f"{name} has {embeds.shape[-1]} features per token; the transformer's "
                                     f"cross-attention takes text_embed_dim={text_dim}")
        if latents is not None:
            check_finite_tensor("latents", latents, ndim=5, shape_hint="[batch, channels, frames, height, width]")
        check_number("guidance_scale", guidance_scale, minimum=1, note="1 disables classifier-free guidance")
        check_number("num_inference_steps", num_inference_steps, minimum=1, integer=True)
        check_number("num_videos_per_prompt", num_videos_per_prompt, minimum=1, integer=True)
        if fps is not None:
            check_number("fps", fps, minimum=0, exclusive_minimum=True, note="frames per second of the output video")
        if max_sequence_length is not None:
            check_number("max_sequence_length", max_sequence_length, minimum=1, integer=True)
        check_generator(generator)
        check_output_type(output_type, OUTPUT_TYPES)
        check_guardrail_coverage(self.safety_checker, prompt, prompt_embeds, output_type)
        for name, value in (("height", height), ("width", width), ("num_frames", num_frames)):
            check_number(name, value, integer=True)
        p_t, p_h, p_w = self.transformer.config.patch_size
        spatial = self.vae_scale_factor_spatial
        for name, value, patch in (("height", height, p_h), ("width", width, p_w)):
            if value <= 0 or value % (spatial * patch):
                raise ValueError(f"{name} must be a positive multiple of {spatial * patch} "
                                 f"(VAE x{spatial} times patch {patch}), got {value}")
        temporal = self.vae_scale_factor_temporal
        if num_frames < 1 or (num_frames - 1) % temporal:
            valid = ", ".join(str(1 + temporal * k) for k in range(4))
            raise ValueError(
                f"num_frames must be 1 + {temporal}*k for this VAE (e.g. {valid}, ...), got {num_frames}"
            )
        latent_frames = (num_frames - 1) // temporal + 1
        max_t, max_h, max_w = self.transformer.config.max_size
        if latent_frames % p_t or latent_frames > max_t:
            raise ValueError(
                f"num_frames={num_frames} gives {latent_frames} latent frames; the transformer takes multiples of "
                f"{p_t} up to {max_t} (max_size)"
            )
        if height // spatial > max_h or width // spatial > max_w:
            raise ValueError(f"{height}x{width} exceeds the transformer's max_size {max_h * spatial}x{max_w * spatial}")

    # the name earlier versions (and training/train_diffusion.py) call
    check_call_inputs = check_inputs

    def check_callback_tensor_inputs(self, names) -> None:
        """`callback_on_step_end_tensor_inputs` may only name tensors the loop hands out (`_callback_tensor_inputs`)."""
        if names is None:
            return
        unknown = [name for name in names if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs may name {self._callback_tensor_inputs}, got "
                             f"{unknown}")

    # ------------------------------------------------------------------ latents
    def _latent_shape(self, batch, height, width, num_frames, num_channels_latents=None):
        channels = self.vae.config.latent_channels if num_channels_latents is None else num_channels_latents
        return (batch, channels, (num_frames - 1) // self.vae_scale_factor_temporal + 1,
                height // self.vae_scale_factor_spatial, width // self.vae_scale_factor_spatial)

    def prepare_latents(
        self,
        batch_size: int,
        num_channels_latents: int | None = None,
        height: int = 704,
        width: int = 1280,
        num_frames: int = 121,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The starting point of sampling: `latents` (standard normal, drawn from `generator` unless given) times the
        scheduler's `sigma_max`, `[B, C, T', H', W']` in float32 (the loop's precision whatever the model dtype).

        `num_channels_latents=None` is the VAE's latent channels; `latents` must have exactly the latent shape.
        """
        shape = self._latent_shape(batch_size, height, width, num_frames, num_channels_latents)
        dtype = torch.float32 if dtype is None else dtype
        device = device or self._execution_device
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
        return latents.to(device, dtype) * self.scheduler.config.sigma_max

    def _latent_statistics(self, latents):
        mean, std = self.vae.config.latents_mean, self.vae.config.latents_std
        if mean is None:
            return None, None
        channels = self.vae.config.latent_channels
        mean = torch.tensor(mean).view(1, channels, -1, 1, 1)[:, :, : latents.size(2)].to(latents)
        std = torch.tensor(std).view(1, channels, -1, 1, 1)[:, :, : latents.size(2)].to(latents)
        return mean, std

    def normalize_latents(self, latents):
        """VAE latents -> diffusion space (std sigma_data), as diffusers' Cosmos pipelines and the trainer do."""
        sigma_data = self.scheduler.config.sigma_data
        mean, std = self._latent_statistics(latents)
        return latents * sigma_data if mean is None else (latents - mean) * sigma_data / std

    def denormalize_latents(self, latents):
        sigma_data = self.scheduler.config.sigma_data
        mean, std = self._latent_statistics(latents)
        return latents / sigma_data if mean is None else latents * std / sigma_data + mean

    def _decode_latents(self, latents):
        """Normalised diffusion latents -> video [B, 3, T, H, W] in about [-1, 1] (not clamped)."""
        return self.vae.decode(self.denormalize_latents(latents).to(self.vae.dtype), return_dict=False)[0]

    def _decode(self, latents, output_type, device):
        if output_type == "latent":
            return latents
        return self._finish_video(self._decode_latents(latents), output_type, device)

    def _finish_video(self, video, output_type, device):
        """Guardrail (if any) and conversion of a [-1, 1] video `[B, 3, T, H, W]` to `output_type`."""
        video = guard_videos(self.safety_checker, self.video_processor, video, device)
        return self.video_processor.postprocess_video(video, output_type=output_type)

    def _upsample_prompt(self, prompt, upsample_prompt: bool, prompt_upsampler, device=None):
        """Rewrite `prompt` with the prompt upsampler when asked (the reference's long-caption distribution). The
        user's prompt passes the guardrail first: the upsampler could rewrite an unsafe prompt into one the check
        after it lets through (the caller checks the upsampled prompt)."""
        if not upsample_prompt:
            return prompt
        if prompt is None:
            raise ValueError("upsample_prompt=True needs a text `prompt` (not prompt_embeds)")
        if prompt_upsampler is None:
            raise ValueError("upsample_prompt=True needs `prompt_upsampler=` "
                             "(e.g. CosmosPromptUpsampler.from_pretrained(chat_model_folder))")
        self._check_prompt_safety(prompt, device)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        upsampled = [prompt_upsampler.upsample(text) for text in prompts]
        return upsampled[0] if isinstance(prompt, str) else upsampled

    def _check_prompt_safety(self, prompt, device):
        check_prompt_safety(self.safety_checker, prompt, device)

    # ------------------------------------------------------------------ sampling
    def set_sampling_timesteps(self, num_inference_steps: int, device=None) -> None:
        """`scheduler.set_timesteps`, made right for one step.

        diffusers' `EDMEulerScheduler` ends a one-step Karras schedule where it starts (sigmas ``[80, 80]``: the
        "final" sigma is the schedule's last, which for one step is sigma_max), so a 1-step sample would be decoded
        noise (9 dB on the physics benchmark). A schedule that does not come down gets its final sigma set to the
        scheduler's `sigma_min`, as every longer schedule ends: one Euler step then lands on the x0 prediction.
        """
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        sigmas = getattr(self.scheduler, "sigmas", None)
        sigma_min = getattr(self.scheduler.config, "sigma_min", None)
        if sigmas is not None and sigma_min is not None and len(sigmas) > 1 and not sigmas[-1] < sigmas[0]:
            sigmas[-1] = sigma_min

    def denoising_loop(
        self,
        latents: torch.Tensor,
        denoise_branch: Callable[..., torch.Tensor],
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None = None,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        progress_bar=None,
        guidance_min_sigma: float = 0.0,
    ) -> torch.Tensor:
        r"""The EDM sampling loop every cosmos-hf diffusion pipeline runs, over `self.scheduler.timesteps` (set them
        first); returns the final latents.

        At each step `denoise_branch(latents, sigma, text_embeds, conditional=True)` gives the conditional x0
        prediction (`cosmos_hf.diffusion.edm.denoise` or the decoder's, with whatever conditioning the pipeline adds)
        and, when `self.do_classifier_free_guidance`, `denoise_branch(latents, sigma, negative_prompt_embeds,
        conditional=False)` the unconditional one, combined as ``x0 + guidance_scale * (x0 - x0_uncond)``; the
        scheduler then steps to the next noise level with that x0. `guidance_min_sigma` > 0 guides only the steps
        whose noise level is at least that (guidance in a limited interval, Kynkaeaenniemi et al. 2024: guidance at
        low noise mostly sharpens details; the steps below it run the conditional branch alone).

        As in diffusers: `self.interrupt` (set `pipe._interrupt = True`, e.g. from a callback) skips the remaining
        steps, and `callback_on_step_end(pipe, step, timestep, callback_kwargs)` runs after each step with the tensors
        named in `callback_on_step_end_tensor_inputs` (`_callback_tensor_inputs`); tensors it returns replace them.
        `progress_bar`: an open progress bar to advance (one per call when None).
        """
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        warn_if_emulated_bf16(self.transformer.dtype, latents.device,
                              f"{type(self).__name__}'s {type(self.transformer).__name__}")
        bar = nullcontext(progress_bar) if progress_bar is not None else self.progress_bar(total=len(timesteps))
        with bar as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                self.scheduler.scale_model_input(latents, t)  # sets the step index (the scaling happens in denoise)
                sigma = self.scheduler.sigmas[i]
                x0 = denoise_branch(latents, sigma, prompt_embeds, conditional=True)
                if self.do_classifier_free_guidance and sigma >= guidance_min_sigma:
                    x0_uncond = denoise_branch(latents, sigma, negative_prompt_embeds, conditional=False)
                    x0 = x0 + self.guidance_scale * (x0 - x0_uncond)
                latents = self.scheduler.step(x0, t, latents, return_dict=False, pred_original_sample=x0)[0]
                if callback_on_step_end is not None:
                    tensors = {"latents": latents, "prompt_embeds": prompt_embeds,
                               "negative_prompt_embeds": negative_prompt_embeds}
                    callback_kwargs = {name: tensors[name] for name in callback_on_step_end_tensor_inputs}
                    outputs = callback_on_step_end(self, i, t, callback_kwargs)
                    latents = outputs.pop("latents", latents)
                    prompt_embeds = outputs.pop("prompt_embeds", prompt_embeds)
                    negative_prompt_embeds = outputs.pop("negative_prompt_embeds", negative_prompt_embeds)
                progress_bar.update()
        self._current_timestep = None
        return latents

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 36,
        guidance_scale: float | None = None,
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
    ):
        r"""Generate videos from text.

        Returns `CosmosPipelineOutput` whose `.frames` is a list of PIL lists (`"pil"`), an array [B,T,H,W,3] in
        [0, 1] (`"np"`), a tensor [B,T,3,H,W] (`"pt"`) or the final latents (`"latent"`). `guidance_scale` g > 1 turns
        on classifier-free guidance with the Cosmos rule ``x0 = x0_cond + g * (x0_cond - x0_uncond)`` (g = 1: none);
        `None` uses the pipeline config's `default_guidance_scale` (7.0 as in diffusers, 1.0 for the nano checkpoints).
        `callback_on_step_end(pipe, step, timestep, callback_kwargs)` and `pipe._interrupt` work as in diffusers
        (see `denoising_loop`).
        """
        height, width, num_frames, fps, max_sequence_length = self._resolve_defaults(
            height, width, num_frames, fps, max_sequence_length
        )
        guidance_scale = self._resolve_guidance_scale(guidance_scale)
        self.check_inputs(prompt, prompt_embeds, height, width, num_frames, num_inference_steps, guidance_scale,
                          num_videos_per_prompt, output_type, fps=fps, negative_prompt_embeds=negative_prompt_embeds,
                          latents=latents, generator=generator, max_sequence_length=max_sequence_length,
                          callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs)
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
        self.set_sampling_timesteps(num_inference_steps, device=device)
        check_generator(generator, batch)
        latents = self.prepare_latents(batch, None, height, width, num_frames, torch.float32, device, generator,
                                       latents)
        sigma_data = self.scheduler.config.sigma_data

        def denoise_branch(latents, sigma, text_embeds, conditional):
            return denoise(self.transformer, latents, sigma, text_embeds, sigma_data=sigma_data, fps=fps)

        latents = self.denoising_loop(latents, denoise_branch, prompt_embeds, negative_prompt_embeds,
                                      callback_on_step_end, callback_on_step_end_tensor_inputs)
        video = self._decode(latents, output_type, device)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video,)
        return CosmosPipelineOutput(frames=video)
