"""Diffusion decoder pipeline of the autoregressive WFM: DV tokens (or a video, DV-tokenized first) -> refined video.

The model side (token embedder, `decoder_denoise`, the chunking rules, the training objective) lives in
`cosmos_hf.diffusion.diffusion_decoder`, checked there against cosmos-predict1's `autoregressive/diffusion_decoder`.
This pipeline samples each chunk with the EDM loop all cosmos-hf diffusion pipelines share
(`CosmosText2WorldPipeline.denoising_loop`), so it takes diffusers' `callback_on_step_end` and `pipe._interrupt` too.

It is what `training/train_diffusion.py` saves with `model.condition: dv_tokens`; the autoregressive pipeline
(`CosmosARVideo2WorldPipeline`) holds the same components under `decoder_*` names. Its old import path,
`cosmos_hf.diffusion.diffusion_decoder.CosmosDiffusionDecoderPipeline`, still works (folders saved before the move
name it in their `pipeline.py`).
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLCosmos, CosmosTransformer3DModel, EDMEulerScheduler
from diffusers.pipelines.cosmos.pipeline_output import CosmosPipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

# the module, not its functions: `decoder_denoise` is looked up at each call, so wrapping it there takes effect here
from ..diffusion import diffusion_decoder
from ..diffusion.diffusion_decoder import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_GUIDANCE_SCALE,
    DEFAULT_NUM_INFERENCE_STEPS,
    UNCONDITIONAL_TOKEN_ID,
    CosmosDVTokenEmbedder,
    blend_chunks,
    blend_pixel_chunks,
    check_chunk_blend,
    check_token_frames,
    chunk_starts,
    decoder_input_extra_channels,
    reference_chunk_starts,
    reflect_pad_frames,
)
from ..guardrails.checker import CosmosSafetyChecker

# imported so that saved decoder folders load: diffusers resolves custom components through already-imported modules
from ..tokenizers.modeling_discrete_video import CosmosDiscreteVideoTokenizer
from .input_checks import check_generator, check_guardrail_coverage, check_number, check_output_type, check_pixel_range
from .pipeline_cosmos_text2world import OUTPUT_TYPES, CosmosText2WorldPipeline
from .shared_weights import ReferencedAutoencoderKLCosmos


class CosmosDiffusionDecoderPipeline(CosmosText2WorldPipeline):
    r"""DV tokens (or a video, tokenized first) -> refined video through the diffusion decoder.

    Components: `text_encoder`, `tokenizer`, `transformer` (`CosmosTransformer3DModel`, in_channels = C + 32),
    `vae` (CV tokenizer, `AutoencoderKLCosmos`), `scheduler` (`EDMEulerScheduler`, see
    `cosmos_hf.diffusion.diffusion_decoder.decoder_scheduler`), `dv_tokenizer` (`CosmosDiscreteVideoTokenizer`, only
    needed to tokenize video input), `token_embedder` (`CosmosDVTokenEmbedder`), optional `safety_checker`.

    Chunking (`chunk_latent_frames`, the decoder's training length; None = the whole grid at once): chunks start every
    ``chunk_latent_frames - chunk_overlap`` latent frames. `chunk_blend` chooses how they are joined:

    * ``"pixel"`` (default, the reference's `split_with_overlap` + `linear_blend_video_list`): every chunk has exactly
      `chunk_latent_frames` frames (a last chunk running past the end, or a grid shorter than one chunk, is padded by
      mirroring the token frames), is decoded to pixels on its own (clamped to [-1, 1]), and consecutive chunks are
      joined over `chunk_overlap` *pixel* frames; the video is cut to the grid's frame count. With more than one chunk
      this is misaligned in time: chunks share `chunk_overlap` *latent* frames (about ``(overlap - 1) * temporal
      compression + 1`` pixel frames), so at every seam about that many frames minus `chunk_overlap` are repeated
      and the end of the video is cut off. The reference's 33-frame AR output is a single chunk and never shows it.
    * ``"latent"`` (the fix): windows lie inside the grid (the last one moved back instead of padded), overlapping
      latent frames are blended with linear ramps, and the whole grid is decoded once, so time stays aligned.
    """

    _optional_components = ["safety_checker", "dv_tokenizer"]

    def __init__(
        self,
        text_encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        transformer: CosmosTransformer3DModel,
        vae: AutoencoderKLCosmos | ReferencedAutoencoderKLCosmos,
        scheduler: EDMEulerScheduler,
        token_embedder: CosmosDVTokenEmbedder,
        dv_tokenizer: CosmosDiscreteVideoTokenizer | None = None,
        safety_checker: CosmosSafetyChecker | None = None,
        default_height: int = 704,
        default_width: int = 1280,
        default_num_frames: int = 121,
        default_fps: int = 30,
        max_sequence_length: int = 512,
        chunk_latent_frames: int | None = None,
        chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
        chunk_blend: str = "pixel",
        disable_safety_checker: bool = False,
        default_guidance_scale: float = DEFAULT_GUIDANCE_SCALE,
    ):
        super().__init__(text_encoder, tokenizer, transformer, vae, scheduler, safety_checker, default_height,
                         default_width, default_num_frames, default_fps, max_sequence_length,
                         disable_safety_checker=disable_safety_checker, default_guidance_scale=default_guidance_scale)
        self.register_modules(token_embedder=token_embedder, dv_tokenizer=dv_tokenizer)
        check_chunk_blend(chunk_blend)
        if int(chunk_overlap) < 0:
            raise ValueError(f"chunk_overlap must be >= 0 latent frames, got {chunk_overlap}")
        self.register_to_config(chunk_latent_frames=chunk_latent_frames, chunk_overlap=int(chunk_overlap),
                                chunk_blend=chunk_blend)
        decoder_input_extra_channels(transformer, vae.config.latent_channels, token_embedder.config.embedding_dim)

    def check_inputs(self, tokens, video, prompt, num_inference_steps, guidance_scale, fps, generator, output_type,
                     chunk_blend, callback_on_step_end_tensor_inputs=None):
        """Validate call arguments before any work; every error names the argument and its valid range (token ids
        are checked by the token embedder once the grid is known)."""
        if (tokens is None) == (video is None):
            raise ValueError("pass exactly one of `tokens` (DV token ids [B, T, H, W]) or `video`")
        check_number("guidance_scale", guidance_scale, minimum=0, note="0 disables guidance")
        check_number("num_inference_steps", num_inference_steps, minimum=1, integer=True)
        if fps is not None:
            check_number("fps", fps, minimum=0, exclusive_minimum=True, note="frames per second of the output video")
        check_generator(generator)
        check_output_type(output_type, OUTPUT_TYPES)
        self.check_callback_tensor_inputs(callback_on_step_end_tensor_inputs)
        # latent output skips the video guard: refused while a guard is configured
        check_guardrail_coverage(self.safety_checker, prompt, None, output_type)
        if video is not None:
            if self.dv_tokenizer is None:
                raise ValueError("decoding a `video` needs the pipeline's dv_tokenizer to tokenize it first")
            check_pixel_range("video", video)
        check_chunk_blend(chunk_blend)

    @property
    def do_classifier_free_guidance(self) -> bool:
        # the reference decoder's rule: the unconditional branch runs for any guidance_scale > 0 (0 disables it)
        return self._guidance_scale > 0

    def latent_grid_for_tokens(self, token_shape) -> tuple[int, int, int]:
        """CV latent grid [T, H, W] matching a DV token grid: same video frames and pixels."""
        t, h, w = token_shape[-3:]
        if self.dv_tokenizer is None:  # without the DV tokenizer the grids must already agree
            return t, h, w
        dv = self.dv_tokenizer.config
        num_frames = 1 + (t - 1) * dv.temporal_compression
        return ((num_frames - 1) // self.vae_scale_factor_temporal + 1,
                h * dv.spatial_compression // self.vae_scale_factor_spatial,
                w * dv.spatial_compression // self.vae_scale_factor_spatial)

    def encode_prompt(self, prompt: str | list[str], batch_size: int, max_sequence_length: int = 512, device=None):
        """`(prompt_embeds, negative_prompt_embeds)` in float32 for `batch_size` token grids: the unconditional branch
        gets zero text features, as the reference drops text. A string is used for every grid."""
        prompts = [prompt] * batch_size if isinstance(prompt, str) else list(prompt)
        if len(prompts) != batch_size:
            raise ValueError(f"got {len(prompts)} prompts for {batch_size} token grids")
        prompt_embeds = self._get_t5_prompt_embeds(prompts, max_sequence_length, device).float()
        return prompt_embeds, torch.zeros_like(prompt_embeds)

    def prepare_latents(
        self,
        batch_size: int,
        num_channels_latents: int | None = None,
        num_latent_frames: int = 1,
        latent_height: int = 88,
        latent_width: int = 160,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """Starting latents of one chunk: standard normal times the scheduler's `init_noise_sigma` (the reference's
        ``sqrt(sigma_max^2 + 1)``), `[B, C, T, H, W]` on the latent grid, float32 by default."""
        channels = self.vae.config.latent_channels if num_channels_latents is None else num_channels_latents
        shape = (batch_size, channels, num_latent_frames, latent_height, latent_width)
        latents = randn_tensor(shape, generator=generator, device=device or self._execution_device,
                               dtype=torch.float32 if dtype is None else dtype)
        return latents * self.scheduler.init_noise_sigma

    def _sample_chunk(self, token_channels, uncond_channels, text, uncond_text, num_inference_steps, fps, generator,
                      progress_bar, callback_on_step_end=None, callback_on_step_end_tensor_inputs=("latents",)):
        """EDM Euler sampling of one chunk of CV latents (diffusion space) with classifier-free guidance."""
        batch, _, frames, height, width = token_channels.shape
        device = token_channels.device
        sigma_data = self.scheduler.config.sigma_data
        self.set_sampling_timesteps(num_inference_steps, device=device)
        latents = self.prepare_latents(batch, None, frames, height, width, torch.float32, device, generator)

        def denoise_branch(latents, sigma, text_embeds, conditional):
            channels = token_channels if conditional else uncond_channels
            return diffusion_decoder.decoder_denoise(self.transformer, latents, sigma, text_embeds, channels,
                                                     sigma_data, fps)

        return self.denoising_loop(latents, denoise_branch, text, uncond_text, callback_on_step_end,
                                   callback_on_step_end_tensor_inputs, progress_bar=progress_bar)

    def _decode_to_pixels(self, latents) -> torch.Tensor:
        video = self.vae.decode(self.denormalize_latents(latents).to(self.vae.dtype), return_dict=False)[0]
        return video.float().clamp(-1, 1)

    @torch.no_grad()
    def __call__(
        self,
        tokens: torch.LongTensor | None = None,
        video: torch.Tensor | None = None,
        prompt: str | list[str] = "",
        num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
        guidance_scale: float | None = None,
        chunk_latent_frames: int | None = None,
        chunk_blend: str | None = None,
        fps: int | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        max_sequence_length: int | None = None,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ):
        r"""Decode DV `tokens` `[B, T', H', W']` (or `video` `[B, 3, T, H, W]` in [-1, 1], DV-tokenized first).

        `guidance_scale` g: the Cosmos rule ``x0 = x0_cond + g * (x0_cond - x0_uncond)`` as in every cosmos-hf
        pipeline, here with the reference decoder's switch: g = 0 disables guidance, any g > 0 guides (the
        unconditional branch has zero text features and token id 0 everywhere); `None` uses the config's
        `default_guidance_scale` (1.8, the reference's). `chunk_latent_frames` / `chunk_blend` default to the
        pipeline config (see the class docstring). The reference's base AR pipeline passes the prompt
        `REFERENCE_GENERIC_PROMPT`. `callback_on_step_end` runs after every step of every chunk (the step index
        restarts with each chunk); `pipe._interrupt = True` skips the remaining steps of all chunks. Returns
        `.frames` like the other pipelines.
        """
        guidance_scale = self._resolve_guidance_scale(guidance_scale)
        chunk_blend = chunk_blend or self.config.get("chunk_blend", "pixel")
        self.check_inputs(tokens, video, prompt, num_inference_steps, guidance_scale, fps, generator, output_type,
                          chunk_blend, callback_on_step_end_tensor_inputs)
        if video is not None:
            tokens = self.dv_tokenizer.tokenize(video.to(self._execution_device, self.dv_tokenizer.dtype))
        device = self._execution_device
        tokens = tokens.to(device)
        self.token_embedder.check_tokens(tokens)
        grid = self.latent_grid_for_tokens(tokens.shape)
        check_token_frames(tokens.shape[1], grid[0])
        batch = tokens.shape[0]
        check_generator(generator, batch)  # a list: one generator per token grid, as the world pipelines take it
        _, _, fps, max_sequence_length = self._resolve_defaults(None, None, None, fps, max_sequence_length)[1:]
        prompts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
        if len(prompts) != batch:
            raise ValueError(f"got {len(prompts)} prompts for {batch} token grids")
        # the reference decodes with an empty or generic prompt; any text a caller writes goes through the text guard
        self._check_prompt_safety([text for text in prompts if text.strip()], device)
        text, uncond_text = self.encode_prompt(prompts, batch, max_sequence_length, device)
        chunk = int(chunk_latent_frames or self.config.chunk_latent_frames or grid[0])
        if chunk < 1:
            raise ValueError(f"chunk_latent_frames must be >= 1, got {chunk}")
        overlap = int(self.config.get("chunk_overlap", DEFAULT_CHUNK_OVERLAP))
        _, p_h, p_w = self.transformer.config.patch_size
        if grid[1] % p_h or grid[2] % p_w:
            raise ValueError(f"latent grid {grid[1]}x{grid[2]} is not a multiple of the DiT patch {p_h}x{p_w}")
        if chunk_blend == "pixel":
            starts = reference_chunk_starts(grid[0], chunk, overlap) if chunk < grid[0] else [0]
            length = chunk  # every chunk has the chunk length (padded), as in the reference
        else:
            starts = chunk_starts(grid[0], chunk, overlap)
            length = min(chunk, grid[0])
        max_t = self.transformer.config.max_size[0]
        if length > max_t:
            raise ValueError(f"{length} latent frames per chunk exceed the DiT's max_size ({max_t}); "
                             f"pass chunk_latent_frames <= {max_t}")
        if chunk_blend == "pixel" and output_type == "latent" and len(starts) > 1:
            raise ValueError("chunk_blend='pixel' joins chunks after decoding, so there is no latent output for "
                             f"{len(starts)} chunks; use chunk_blend='latent' or output_type != 'latent'")
        self._guidance_scale = guidance_scale
        self._current_timestep = None
        self._interrupt = False
        results = []
        with self.progress_bar(total=len(starts) * num_inference_steps) as progress_bar:
            for start in starts:
                chunk_tokens = reflect_pad_frames(tokens[:, start : start + length], length, dim=1)
                cond = self.token_embedder(chunk_tokens, (length, *grid[1:])).float()
                uncond = self.token_embedder(torch.full_like(chunk_tokens, UNCONDITIONAL_TOKEN_ID),
                                             (length, *grid[1:])).float()
                results.append(self._sample_chunk(cond, uncond, text, uncond_text, num_inference_steps, fps,
                                                  generator, progress_bar, callback_on_step_end,
                                                  callback_on_step_end_tensor_inputs))
        if chunk_blend == "latent":
            video_out = self._decode(blend_chunks(results, starts, grid[0]), output_type, device)
        elif output_type == "latent":
            video_out = results[0][:, :, : grid[0]]
        else:
            num_pixel_frames = 1 + (grid[0] - 1) * self.vae_scale_factor_temporal
            pixels = blend_pixel_chunks([self._decode_to_pixels(latents) for latents in results], overlap)
            video_out = self._finish_video(pixels[:, :, :num_pixel_frames], output_type, device)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video_out,)
        return CosmosPipelineOutput(frames=video_out)


__all__ = ["CosmosDiffusionDecoderPipeline"]
