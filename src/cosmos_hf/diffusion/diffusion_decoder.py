"""Diffusion decoder of the autoregressive WFM: discrete video (DV) tokens -> continuous video (CV) latents.

The DV tokenizer's own decoder gives blurry video; Cosmos-Predict1 therefore refines autoregressive output with a DiT
that generates CV-tokenizer latents conditioned on the DV tokens:

* `CosmosDVTokenEmbedder`: a learned embedding of the token ids (64,000 codes -> 32 channels), resized bilinearly
  (trilinear over [T, H, W]; exact identity along an axis whose size already matches) onto the CV latent grid;
* the DiT (diffusers' `CosmosTransformer3DModel`) sees ``[c_in * x_sigma (16) | token embedding (32) | condition mask
  (1)]`` = 49 input channels (diffusers appends the padding-mask channel itself). The condition-mask channel is kept
  at zero: it is the Video2World slot of the network layout the decoder shares;
* EDM preconditioning exactly as `cosmos_hf.diffusion.edm.denoise`; classifier-free guidance drops the token
  condition (zero channels) in the unconditional branch, which training teaches with `token_dropout`;
* long token grids are decoded in chunks of latent frames that overlap by 2 latent frames, blended linearly;
* inference defaults of the reference's decoder: guidance 1.8, 15 steps.

`CosmosDiffusionDecoderPipeline` bundles it (DV tokenizer, CV tokenizer, text encoder, DiT, token embedder, EDM
scheduler) and is what `training/train_diffusion.py` saves with `model.condition: dv_tokens`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.pipelines.cosmos.pipeline_output import CosmosPipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from torch import nn

from ..pipelines.pipeline_cosmos_text2world import OUTPUT_TYPES, CosmosText2WorldPipeline

# imported so that saved decoder folders load: diffusers resolves custom components through already-imported modules
from ..tokenizers.modeling_discrete_video import CosmosDiscreteVideoTokenizer  # noqa: F401
from .edm import EDMObjective, _expand, _module_dtype, edm_scalings

DEFAULT_GUIDANCE_SCALE = 1.8
DEFAULT_NUM_INFERENCE_STEPS = 15
DEFAULT_CHUNK_OVERLAP = 2  # latent frames shared by consecutive chunks


class CosmosDVTokenEmbedder(ModelMixin, ConfigMixin):
    r"""Embeds DV token ids `[B, T', H', W']` into `[B, embedding_dim, T, H, W]` on a target latent grid.

    Args:
        vocab_size (`int`, defaults to 64000): number of DV codes (FSQ levels (8,8,8,5,5,5)).
        embedding_dim (`int`, defaults to 32): channels handed to the DiT.
    """

    @register_to_config
    def __init__(self, vocab_size: int = 64000, embedding_dim: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)

    def forward(self, tokens: torch.LongTensor, latent_size: tuple[int, int, int] | None = None) -> torch.Tensor:
        if tokens.dim() != 4:
            raise ValueError(f"DV tokens must be [batch, T, H, W], got shape {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"DV tokens must be integer ids, got dtype {tokens.dtype}")
        vocab = self.config.vocab_size
        if bool(((tokens < 0) | (tokens >= vocab)).any()):
            bad = int(tokens[(tokens < 0) | (tokens >= vocab)][0])
            raise ValueError(f"DV token id {bad} out of range: valid ids are 0..{vocab - 1}")
        embedded = self.embedding(tokens.long()).permute(0, 4, 1, 2, 3)  # [B, C, T', H', W']
        if latent_size is not None and tuple(embedded.shape[2:]) != tuple(latent_size):
            embedded = F.interpolate(embedded, size=tuple(latent_size), mode="trilinear", align_corners=False)
        return embedded


def decoder_denoise(
    transformer,
    noisy_latents: torch.Tensor,
    sigma,
    encoder_hidden_states: torch.Tensor,
    token_channels: torch.Tensor,
    sigma_data: float = 0.5,
    fps: int | None = None,
    padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """EDM x0 prediction of the diffusion decoder (the one function training and the pipeline call).

    `token_channels` `[B, 32, T, H, W]` (from `CosmosDVTokenEmbedder`, or zeros for the unconditional branch) are
    concatenated after the c_in-scaled noisy latents; the condition-mask channel is zeros.
    """
    batch = noisy_latents.shape[0]
    if token_channels.shape[0] != batch or token_channels.shape[2:] != noisy_latents.shape[2:]:
        raise ValueError(f"token channels {tuple(token_channels.shape)} do not match latents "
                         f"{tuple(noisy_latents.shape)} (batch and [T, H, W] must agree)")
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=noisy_latents.device).reshape(-1).expand(batch)
    c_skip, c_out, c_in, c_noise = (_expand(c, noisy_latents.ndim) for c in edm_scalings(sigma, sigma_data))
    dtype = _module_dtype(transformer)
    hidden_states = torch.cat([(noisy_latents * c_in).to(dtype), token_channels.to(dtype)], dim=1)
    condition_mask = hidden_states.new_zeros(batch, 1, *noisy_latents.shape[2:])
    if padding_mask is None:
        padding_mask = hidden_states.new_zeros(1, 1, noisy_latents.shape[-2], noisy_latents.shape[-1])
    network_output = transformer(
        hidden_states=hidden_states,
        timestep=c_noise.flatten().to(dtype),
        encoder_hidden_states=encoder_hidden_states.to(dtype),
        fps=fps,
        condition_mask=condition_mask,
        padding_mask=padding_mask.to(dtype),
        return_dict=False,
    )[0].float()
    return c_skip * noisy_latents.float() + c_out * network_output


class DVTokenConditionedEDMObjective(EDMObjective):
    """`EDMObjective` (same sigma sampling, loss weighting, uncertainty log-variance) for the diffusion decoder.

    `forward(transformer, latents, text, token_channels=...)`: the token channels enter every denoiser call; with
    probability `token_dropout` a sample's channels are zeroed (what the unconditional guidance branch sees).
    """

    def __init__(self, config=None, token_dropout: float = 0.1):
        super().__init__(config)
        if self.config.video2world:
            raise ValueError("the diffusion decoder objective is not a Video2World objective (objective.video2world)")
        if not 0.0 <= token_dropout < 1.0:
            raise ValueError(f"token_dropout must be in [0, 1), got {token_dropout}")
        self.token_dropout = float(token_dropout)
        self._token_channels = None

    def forward(self, transformer, latents, encoder_hidden_states, token_channels=None, generator=None, **kwargs):
        if token_channels is None:
            raise ValueError("the diffusion decoder objective needs token_channels")
        if self.training and self.token_dropout > 0:
            keep = (torch.rand(latents.shape[0], generator=generator) >= self.token_dropout).to(token_channels)
            token_channels = token_channels * _expand(keep, token_channels.ndim)
        self._token_channels = token_channels
        try:
            return super().forward(transformer, latents, encoder_hidden_states, generator=generator, **kwargs)
        finally:
            self._token_channels = None

    def denoise(self, transformer, noisy_latents, sigma, encoder_hidden_states, fps=None, condition=None,
                padding_mask=None):
        return decoder_denoise(transformer, noisy_latents, sigma, encoder_hidden_states, self._token_channels,
                               sigma_data=self.config.sigma_data, fps=fps, padding_mask=padding_mask)


def chunk_starts(num_frames: int, chunk_frames: int, overlap: int = DEFAULT_CHUNK_OVERLAP) -> list[int]:
    """First latent frame of each chunk: windows of `chunk_frames` covering `num_frames`, consecutive ones sharing
    `overlap` frames (the last window is moved back to end exactly at `num_frames`)."""
    if chunk_frames >= num_frames:
        return [0]
    if overlap >= chunk_frames:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than the chunk ({chunk_frames} latent frames)")
    starts = list(range(0, num_frames - chunk_frames, chunk_frames - overlap)) + [num_frames - chunk_frames]
    return sorted(set(starts))


def blend_chunks(chunks: list[torch.Tensor], starts: list[int], num_frames: int) -> torch.Tensor:
    """Merge chunk latents `[B, C, t, H, W]` placed at `starts` into `[B, C, num_frames, H, W]`: inside an overlap,
    the weight ramps linearly from the earlier chunk to the later one."""
    first = chunks[0]
    out = first.new_zeros(*first.shape[:2], num_frames, *first.shape[3:])
    weight_sum = first.new_zeros(1, 1, num_frames, 1, 1)
    for index, (chunk, start) in enumerate(zip(chunks, starts)):
        length = chunk.shape[2]
        weight = torch.ones(length, dtype=chunk.dtype, device=chunk.device)
        if index > 0:  # ramp up over the frames shared with the previous chunk
            shared = starts[index - 1] + chunks[index - 1].shape[2] - start
            if shared > 0:
                weight[:shared] = torch.arange(1, shared + 1, dtype=chunk.dtype) / (shared + 1)
        if index + 1 < len(chunks):  # ramp down over the frames shared with the next chunk
            shared = start + length - starts[index + 1]
            if shared > 0:
                weight[length - shared:] = torch.minimum(
                    weight[length - shared:], torch.arange(shared, 0, -1, dtype=chunk.dtype) / (shared + 1)
                )
        w = weight.view(1, 1, -1, 1, 1)
        out[:, :, start : start + length] += chunk * w
        weight_sum[:, :, start : start + length] += w
    return out / weight_sum


class CosmosDiffusionDecoderPipeline(CosmosText2WorldPipeline):
    r"""DV tokens (or a video, tokenized first) -> refined video through the diffusion decoder.

    Components: `text_encoder`, `tokenizer`, `transformer` (`CosmosTransformer3DModel`, in_channels = C + 32 + 1),
    `vae` (CV tokenizer, `AutoencoderKLCosmos`), `scheduler` (`EDMEulerScheduler`), `dv_tokenizer`
    (`CosmosDiscreteVideoTokenizer`, only needed to tokenize video input), `token_embedder`
    (`CosmosDVTokenEmbedder`), optional `safety_checker`.
    """

    _optional_components = ["safety_checker", "dv_tokenizer"]

    def __init__(self, text_encoder, tokenizer, transformer, vae, scheduler, token_embedder, dv_tokenizer=None,
                 safety_checker=None, default_height: int = 704, default_width: int = 1280,
                 default_num_frames: int = 121, default_fps: int = 30, max_sequence_length: int = 512,
                 chunk_latent_frames: int | None = None, disable_safety_checker: bool = False):
        super().__init__(text_encoder, tokenizer, transformer, vae, scheduler, safety_checker, default_height,
                         default_width, default_num_frames, default_fps, max_sequence_length,
                         disable_safety_checker=disable_safety_checker)
        self.register_modules(token_embedder=token_embedder, dv_tokenizer=dv_tokenizer)
        self.register_to_config(chunk_latent_frames=chunk_latent_frames)
        expected = vae.config.latent_channels + token_embedder.config.embedding_dim + 1
        if transformer.config.in_channels != expected:
            raise ValueError(f"the decoder DiT needs in_channels = latent {vae.config.latent_channels} + token "
                             f"{token_embedder.config.embedding_dim} + mask 1 = {expected}, "
                             f"got {transformer.config.in_channels}")

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

    @torch.no_grad()
    def __call__(
        self,
        tokens: torch.LongTensor | None = None,
        video: torch.Tensor | None = None,
        prompt: str | list[str] = "",
        num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
        guidance_scale: float = DEFAULT_GUIDANCE_SCALE,
        chunk_latent_frames: int | None = None,
        fps: int | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        max_sequence_length: int | None = None,
    ):
        r"""Decode DV `tokens` `[B, T', H', W']` (or `video` `[B, 3, T, H, W]` in [-1, 1], DV-tokenized first).

        `chunk_latent_frames` (default: the pipeline config, else everything at once) denoises windows of that many
        latent frames overlapping by 2, blended linearly. Returns `.frames` like the other pipelines.
        """
        if (tokens is None) == (video is None):
            raise ValueError("pass exactly one of `tokens` (DV token ids [B, T, H, W]) or `video`")
        if video is not None:
            if self.dv_tokenizer is None:
                raise ValueError("decoding a `video` needs the pipeline's dv_tokenizer to tokenize it first")
            tokens = self.dv_tokenizer.tokenize(video.to(self._execution_device, self.dv_tokenizer.dtype))
        if guidance_scale < 1:
            raise ValueError(f"guidance_scale must be >= 1 (1 disables guidance), got {guidance_scale}")
        if int(num_inference_steps) < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        device = self._execution_device
        tokens = tokens.to(device)
        batch = tokens.shape[0] if tokens.dim() == 4 else 0
        grid = self.latent_grid_for_tokens(tokens.shape)
        token_channels = self.token_embedder(tokens, grid).float()  # validates shape and id range
        _, _, fps, max_sequence_length = self._resolve_defaults(None, None, None, fps, max_sequence_length)[1:]
        prompts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
        if len(prompts) != batch:
            raise ValueError(f"got {len(prompts)} prompts for {batch} token grids")
        text = self._get_t5_prompt_embeds(prompts, max_sequence_length, device).float()
        chunk = chunk_latent_frames or self.config.chunk_latent_frames or grid[0]
        p_t, p_h, p_w = self.transformer.config.patch_size
        if grid[1] % p_h or grid[2] % p_w:
            raise ValueError(f"latent grid {grid[1]}x{grid[2]} is not a multiple of the DiT patch {p_h}x{p_w}")
        max_t = self.transformer.config.max_size[0]
        if min(chunk, grid[0]) > max_t:
            raise ValueError(f"{min(chunk, grid[0])} latent frames per chunk exceed the DiT's max_size ({max_t}); "
                             f"pass chunk_latent_frames <= {max_t}")
        starts = chunk_starts(grid[0], chunk)
        self._guidance_scale = guidance_scale
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        sigma_data = self.scheduler.config.sigma_data
        channels = self.vae.config.latent_channels
        results = []
        with self.progress_bar(total=len(starts) * len(self.scheduler.timesteps)) as progress_bar:
            for start in starts:
                length = min(chunk, grid[0])
                cond = token_channels[:, :, start : start + length]
                shape = (batch, channels, length, grid[1], grid[2])
                latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
                latents = latents * self.scheduler.config.sigma_max
                self.scheduler.set_timesteps(num_inference_steps, device=device)
                for i, t in enumerate(self.scheduler.timesteps):
                    self.scheduler.scale_model_input(latents, t)  # sets the step index
                    sigma = self.scheduler.sigmas[i]
                    x0 = decoder_denoise(self.transformer, latents, sigma, text, cond, sigma_data, fps)
                    if guidance_scale > 1:
                        x0_uncond = decoder_denoise(self.transformer, latents, sigma, text, torch.zeros_like(cond),
                                                    sigma_data, fps)
                        x0 = x0 + guidance_scale * (x0 - x0_uncond)
                    latents = self.scheduler.step(x0, t, latents, return_dict=False, pred_original_sample=x0)[0]
                    progress_bar.update()
                results.append(latents)
        latents = blend_chunks(results, starts, grid[0])
        video_out = self._decode(latents, output_type, device)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video_out,)
        return CosmosPipelineOutput(frames=video_out)


__all__ = [
    "CosmosDVTokenEmbedder",
    "CosmosDiffusionDecoderPipeline",
    "DVTokenConditionedEDMObjective",
    "decoder_denoise",
    "chunk_starts",
    "blend_chunks",
    "DEFAULT_GUIDANCE_SCALE",
    "DEFAULT_NUM_INFERENCE_STEPS",
]
