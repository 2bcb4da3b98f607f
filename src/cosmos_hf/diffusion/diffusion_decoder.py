"""Diffusion decoder of the autoregressive WFM: discrete video (DV) tokens -> continuous video (CV) latents.

The DV tokenizer's own decoder gives blurry video; Cosmos-Predict1 therefore refines autoregressive output with a DiT
that generates CV-tokenizer latents conditioned on the DV tokens. Layout, checked against the reference
(cosmos-predict1 `autoregressive/diffusion_decoder/{network,model,inference,utils}.py` and the 7B decoder config):

* `CosmosDVTokenEmbedder`: a learned embedding of the token ids (64,000 codes -> 32 channels, initialised to zero as
  the reference does), resized per latent frame with bilinear interpolation (torchvision's tensor `resize`, i.e.
  `F.interpolate(..., "bilinear", align_corners=False, antialias=True)` in float32) onto the CV latent grid. Time is
  never resized: the token grid must have as many frames as the latent grid (DV8x16x16 and CV8x8x8 both do);
* the DiT (diffusers' `CosmosTransformer3DModel`) sees ``[c_in * x_sigma (16) | token embedding (32)]`` =
  `in_channels` 48, and appends the padding-mask channel itself (all zeros), so its patch embedding reads 49
  channels, as the reference's. There is no condition-mask channel. (A DiT with one more input channel is the layout
  earlier cosmos-hf revisions trained: that extra channel, after the token channels, is fed zeros.);
* EDM preconditioning exactly as `cosmos_hf.diffusion.edm.denoise` (sigma_data 0.5); the reference samples with
  `EDMEulerScheduler(sigma_min=0.02, sigma_max=80, sigma_data=0.5)` (Karras rho 7, final sigma 0), see
  `decoder_scheduler`, starting from ``randn * init_noise_sigma``;
* classifier-free guidance ``x0 = x0_cond + g * (x0_cond - x0_uncond)`` (0 disables it); the unconditional branch
  gets zero text embeddings and *token id 0 everywhere* (the reference zeroes the ids, not the channels, so it sees
  the resized embedding of code 0); training drops tokens that way and text (zero embeddings) independently, each
  with probability 0.2;
* long token grids are decoded in chunks of `chunk_latent_frames` (the decoder's training length: 8 latent frames
  for 57-frame clips in the reference) that start every ``chunk - 2`` frames, see `CosmosDiffusionDecoderPipeline`
  for the two blending modes (the reference's, and a fix of its seam misalignment);
* inference defaults of the reference's decoder: guidance 1.8, 15 steps.

`CosmosDiffusionDecoderPipeline` bundles it (DV tokenizer, CV tokenizer, text encoder, DiT, token embedder, EDM
scheduler) and is what `training/train_diffusion.py` saves with `model.condition: dv_tokens`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import EDMEulerScheduler
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.pipelines.cosmos.pipeline_output import CosmosPipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from torch import nn

from ..pipelines.input_checks import (
    check_generator,
    check_guardrail_coverage,
    check_number,
    check_output_type,
    check_pixel_range,
)
from ..pipelines.pipeline_cosmos_text2world import (
    OUTPUT_TYPES,
    CosmosText2WorldPipeline,
)

# imported so that saved decoder folders load: diffusers resolves custom components through already-imported modules
from ..tokenizers.modeling_discrete_video import CosmosDiscreteVideoTokenizer  # noqa: F401
from .edm import EDMObjective, _expand, _module_dtype, edm_scalings

DEFAULT_GUIDANCE_SCALE = 1.8
DEFAULT_NUM_INFERENCE_STEPS = 15
DEFAULT_CHUNK_OVERLAP = 2  # latent frames shared by consecutive chunks
DEFAULT_TOKEN_DROPOUT = 0.2  # training: share of samples whose token ids are replaced by the unconditional id
UNCONDITIONAL_TOKEN_ID = 0  # what the reference's condition dropout turns every token id into
DECODER_SIGMA_MIN = 0.02
DECODER_SIGMA_MAX = 80.0
# the text the reference's base (no-prompt) AR pipeline hands its decoder, as precomputed T5 features
REFERENCE_GENERIC_PROMPT = "high quality, 4k, high definition, smooth video"
CHUNK_BLEND_MODES = ("pixel", "latent")


def decoder_scheduler(sigma_data: float = 0.5, sigma_min: float = DECODER_SIGMA_MIN,
                      sigma_max: float = DECODER_SIGMA_MAX) -> EDMEulerScheduler:
    """The sampler the reference's decoder builds: EDM Euler, Karras sigmas (rho 7) from 80 to 0.02, final sigma 0."""
    return EDMEulerScheduler(sigma_min=sigma_min, sigma_max=sigma_max, sigma_data=sigma_data, sigma_schedule="karras",
                             num_train_timesteps=1000, prediction_type="epsilon", rho=7.0, final_sigmas_type="zero")


class CosmosDVTokenEmbedder(ModelMixin, ConfigMixin):
    r"""Embeds DV token ids `[B, T, H', W']` into `[B, embedding_dim, T, H, W]` on a target latent grid.

    The reference keeps this table inside its DiT (`net.token_embedder.weight`, zero-initialised); here it is a
    component of its own so the DiT stays a plain diffusers `CosmosTransformer3DModel`.

    Args:
        vocab_size (`int`, defaults to 64000): number of DV codes (FSQ levels (8,8,8,5,5,5)).
        embedding_dim (`int`, defaults to 32): channels handed to the DiT.
    """

    @register_to_config
    def __init__(self, vocab_size: int = 64000, embedding_dim: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        nn.init.zeros_(self.embedding.weight)  # as the reference: the token path starts silent and is learned

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """Raise a ValueError unless `tokens` is an integer `[B, T, H, W]` grid of ids in 0..vocab_size-1."""
        if tokens.dim() != 4:
            raise ValueError(f"DV tokens must be [batch, T, H, W], got shape {tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"DV tokens must be integer ids, got dtype {tokens.dtype}")
        vocab = self.config.vocab_size
        if bool(((tokens < 0) | (tokens >= vocab)).any()):
            bad = int(tokens[(tokens < 0) | (tokens >= vocab)][0])
            raise ValueError(f"DV token id {bad} out of range: valid ids are 0..{vocab - 1}")

    def forward(self, tokens: torch.LongTensor, latent_size: tuple[int, int, int] | None = None) -> torch.Tensor:
        self.check_tokens(tokens)
        batch, frames, height, width = tokens.shape
        embedded = self.embedding(tokens.long())  # [B, T, H', W', D]
        if latent_size is not None:
            target_frames, target_h, target_w = (int(s) for s in latent_size)
            _check_frame_counts(frames, target_frames)
            if (target_h, target_w) != (height, width):
                per_frame = embedded.flatten(0, 1).permute(0, 3, 1, 2)  # [B*T, D, H', W']
                # torchvision's tensor resize (what the reference calls): bilinear, antialias, computed in float32
                resized = F.interpolate(per_frame.float(), size=(target_h, target_w), mode="bilinear",
                                        align_corners=False, antialias=True).to(per_frame.dtype)
                return resized.unflatten(0, (batch, frames)).permute(0, 2, 1, 3, 4)
        return embedded.permute(0, 4, 1, 2, 3)


def split_reference_token_embedder(state_dict: dict) -> tuple[CosmosDVTokenEmbedder, dict]:
    """Take the token table out of a reference decoder state dict (`net.token_embedder.weight`, or without `net.`).

    Returns a `CosmosDVTokenEmbedder` holding it and the remaining entries (the DiT, for a Predict1 -> diffusers DiT
    conversion whose `x_embedder` reads latent + 32 token + 1 padding-mask channels).
    """
    keys = [k for k in ("net.token_embedder.weight", "token_embedder.weight") if k in state_dict]
    if len(keys) != 1:
        raise ValueError("expected exactly one of 'net.token_embedder.weight' / 'token_embedder.weight' in the "
                         f"decoder state dict, found {keys or 'neither'}")
    weight = state_dict[keys[0]]
    if weight.dim() != 2:
        raise ValueError(f"{keys[0]} must be [vocab_size, embedding_dim], got shape {tuple(weight.shape)}")
    embedder = CosmosDVTokenEmbedder(vocab_size=weight.shape[0], embedding_dim=weight.shape[1])
    embedder.embedding.weight.data.copy_(weight.float())
    return embedder, {k: v for k, v in state_dict.items() if k != keys[0]}


def _check_frame_counts(token_frames: int, latent_frames: int) -> None:
    if token_frames != latent_frames:
        raise ValueError(f"DV token grid has {token_frames} frames but the latent grid has {latent_frames}: the "
                         "diffusion decoder resizes only H and W (as the reference), so the DV and CV tokenizers must "
                         "have the same temporal compression")


def _extra_input_channels(transformer, latent_channels: int, token_channels: int) -> int:
    """Input channels of the DiT beyond [latents | tokens]: 0 (reference layout) or 1 (earlier cosmos-hf layout)."""
    in_channels = getattr(getattr(transformer, "config", None), "in_channels", None)
    if in_channels is None:
        return 0
    extra = int(in_channels) - latent_channels - token_channels
    if extra not in (0, 1):
        raise ValueError(f"the decoder DiT has in_channels={in_channels}; expected latent {latent_channels} + token "
                         f"{token_channels} = {latent_channels + token_channels} (or one more, the layout of earlier "
                         "cosmos-hf decoders)")
    return extra


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

    The DiT input is ``[c_in * noisy_latents | token_channels]`` (`token_channels` `[B, 32, T, H, W]` from
    `CosmosDVTokenEmbedder`); diffusers appends the padding mask (zeros unless given).
    """
    batch = noisy_latents.shape[0]
    if token_channels.shape[0] != batch or token_channels.shape[2:] != noisy_latents.shape[2:]:
        raise ValueError(f"token channels {tuple(token_channels.shape)} do not match latents "
                         f"{tuple(noisy_latents.shape)} (batch and [T, H, W] must agree)")
    extra = _extra_input_channels(transformer, noisy_latents.shape[1], token_channels.shape[1])
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=noisy_latents.device).reshape(-1).expand(batch)
    c_skip, c_out, c_in, c_noise = (_expand(c, noisy_latents.ndim) for c in edm_scalings(sigma, sigma_data))
    dtype = _module_dtype(transformer)
    hidden_states = torch.cat([(noisy_latents * c_in).to(dtype), token_channels.to(dtype)], dim=1)
    # earlier cosmos-hf layout only: one more (zero) channel after the tokens, passed where diffusers concatenates it
    legacy_zero_channel = hidden_states.new_zeros(batch, 1, *noisy_latents.shape[2:]) if extra else None
    if padding_mask is None:
        padding_mask = hidden_states.new_zeros(1, 1, noisy_latents.shape[-2], noisy_latents.shape[-1])
    network_output = transformer(
        hidden_states=hidden_states,
        timestep=c_noise.flatten().to(dtype),
        encoder_hidden_states=encoder_hidden_states.to(dtype),
        fps=fps,
        condition_mask=legacy_zero_channel,
        padding_mask=padding_mask.to(dtype),
        return_dict=False,
    )[0].float()
    return c_skip * noisy_latents.float() + c_out * network_output


def drop_tokens(tokens: torch.LongTensor, probability: float, generator=None) -> torch.LongTensor:
    """Condition dropout as the reference trains it: with `probability`, all of a sample's ids become id 0."""
    if probability <= 0:
        return tokens
    keep = torch.rand(tokens.shape[0], generator=generator) >= probability
    return tokens * _expand(keep.to(tokens.device, tokens.dtype), tokens.ndim)


class DVTokenConditionedEDMObjective(EDMObjective):
    """`EDMObjective` (same sigma sampling, loss weighting, uncertainty log-variance, text dropout) for the decoder.

    `forward(transformer, latents, text, tokens=..., token_embedder=...)`: with probability `token_dropout` a sample's
    token ids are all replaced by `UNCONDITIONAL_TOKEN_ID` (what the unconditional guidance branch sees), then embedded
    onto the latent grid; the token channels enter every denoiser call.
    """

    def __init__(self, config=None, token_dropout: float = DEFAULT_TOKEN_DROPOUT):
        super().__init__(config)
        if self.config.video2world:
            raise ValueError("the diffusion decoder objective is not a Video2World objective (objective.video2world)")
        if not 0.0 <= token_dropout < 1.0:
            raise ValueError(f"token_dropout must be in [0, 1), got {token_dropout}")
        self.token_dropout = float(token_dropout)
        self._token_channels = None

    def forward(self, transformer, latents, encoder_hidden_states, tokens=None, token_embedder=None, generator=None,
                **kwargs):
        if tokens is None or token_embedder is None:
            raise ValueError("the diffusion decoder objective needs `tokens` (DV ids) and the `token_embedder`")
        if self.training:
            tokens = drop_tokens(tokens, self.token_dropout, generator)
        self._token_channels = token_embedder(tokens, tuple(latents.shape[2:]))
        try:
            return super().forward(transformer, latents, encoder_hidden_states, generator=generator, **kwargs)
        finally:
            self._token_channels = None

    def denoise(self, transformer, noisy_latents, sigma, encoder_hidden_states, fps=None, condition=None,
                padding_mask=None):
        return decoder_denoise(transformer, noisy_latents, sigma, encoder_hidden_states, self._token_channels,
                               sigma_data=self.config.sigma_data, fps=fps, padding_mask=padding_mask)


# ------------------------------------------------------------------------------------------------------ chunking
def reference_chunk_starts(num_frames: int, chunk_frames: int, overlap: int = DEFAULT_CHUNK_OVERLAP) -> list[int]:
    """First frame of each chunk as the reference splits a token grid: every `chunk_frames - overlap` frames while
    more than `overlap` frames remain; a last chunk that runs past the end is padded (see `reflect_pad_frames`)."""
    if overlap >= chunk_frames:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than the chunk ({chunk_frames} latent frames)")
    return list(range(0, num_frames - overlap, chunk_frames - overlap)) or [0]


def reflect_pad_frames(x: torch.Tensor, num_frames: int, dim: int = 1) -> torch.Tensor:
    """Extend `x` along `dim` to `num_frames` by mirroring about its last frame (`F.pad(..., mode="reflect")`, which
    the reference uses; that one fails when more frames are missing than exist — here the mirror keeps bouncing)."""
    length = x.shape[dim]
    if num_frames <= length:
        return x
    if length == 1:
        index = torch.zeros(num_frames, dtype=torch.long)
    else:
        period = 2 * (length - 1)
        index = torch.arange(num_frames) % period
        index = torch.where(index >= length, period - index, index)
    return x.index_select(dim, index.to(x.device))


def blend_pixel_chunks(videos: list[torch.Tensor], overlap: int) -> torch.Tensor:
    """The reference's seam blend of decoded chunks `[B, 3, t, H, W]`: the last `overlap` frames of the running video
    and the first `overlap` of the next chunk are mixed with weights ``linspace(0, 1, overlap)`` for the next chunk
    (for overlap 2: a hard switch), so the result has ``N * t - overlap * (N - 1)`` frames."""
    out = videos[0]
    if overlap <= 0:
        return torch.cat(videos, dim=2)
    for video in videos[1:]:
        weight = torch.linspace(0, 1, overlap, device=video.device, dtype=video.dtype).view(1, 1, -1, 1, 1)
        seam = (1 - weight) * out[:, :, -overlap:] + weight * video[:, :, :overlap]
        out = torch.cat([out[:, :, :-overlap], seam, video[:, :, overlap:]], dim=2)
    return out


def chunk_starts(num_frames: int, chunk_frames: int, overlap: int = DEFAULT_CHUNK_OVERLAP) -> list[int]:
    """First latent frame of each chunk (`chunk_blend="latent"`): windows of `chunk_frames` covering `num_frames`,
    consecutive ones sharing `overlap` frames (the last window is moved back to end exactly at `num_frames`)."""
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

    Components: `text_encoder`, `tokenizer`, `transformer` (`CosmosTransformer3DModel`, in_channels = C + 32),
    `vae` (CV tokenizer, `AutoencoderKLCosmos`), `scheduler` (`EDMEulerScheduler`, see `decoder_scheduler`),
    `dv_tokenizer` (`CosmosDiscreteVideoTokenizer`, only needed to tokenize video input), `token_embedder`
    (`CosmosDVTokenEmbedder`), optional `safety_checker`.

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

    def __init__(self, text_encoder, tokenizer, transformer, vae, scheduler, token_embedder, dv_tokenizer=None,
                 safety_checker=None, default_height: int = 704, default_width: int = 1280,
                 default_num_frames: int = 121, default_fps: int = 30, max_sequence_length: int = 512,
                 chunk_latent_frames: int | None = None, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
                 chunk_blend: str = "pixel", disable_safety_checker: bool = False,
                 default_guidance_scale: float = DEFAULT_GUIDANCE_SCALE):
        super().__init__(text_encoder, tokenizer, transformer, vae, scheduler, safety_checker, default_height,
                         default_width, default_num_frames, default_fps, max_sequence_length,
                         disable_safety_checker=disable_safety_checker, default_guidance_scale=default_guidance_scale)
        self.register_modules(token_embedder=token_embedder, dv_tokenizer=dv_tokenizer)
        _check_chunk_blend(chunk_blend)
        if int(chunk_overlap) < 0:
            raise ValueError(f"chunk_overlap must be >= 0 latent frames, got {chunk_overlap}")
        self.register_to_config(chunk_latent_frames=chunk_latent_frames, chunk_overlap=int(chunk_overlap),
                                chunk_blend=chunk_blend)
        _extra_input_channels(transformer, vae.config.latent_channels, token_embedder.config.embedding_dim)

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

    def _sample_chunk(self, token_channels, uncond_channels, text, uncond_text, guidance_scale, num_inference_steps,
                      fps, generator, progress_bar):
        """EDM Euler sampling of one chunk of CV latents (diffusion space) with classifier-free guidance."""
        batch, _, frames, height, width = token_channels.shape
        device = token_channels.device
        sigma_data = self.scheduler.config.sigma_data
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        shape = (batch, self.vae.config.latent_channels, frames, height, width)
        latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        latents = latents * self.scheduler.init_noise_sigma
        for i, t in enumerate(self.scheduler.timesteps):
            self.scheduler.scale_model_input(latents, t)  # sets the step index
            sigma = self.scheduler.sigmas[i]
            x0 = decoder_denoise(self.transformer, latents, sigma, text, token_channels, sigma_data, fps)
            if guidance_scale > 0:
                x0_uncond = decoder_denoise(self.transformer, latents, sigma, uncond_text, uncond_channels,
                                            sigma_data, fps)
                x0 = x0 + guidance_scale * (x0 - x0_uncond)
            latents = self.scheduler.step(x0, t, latents, return_dict=False, pred_original_sample=x0)[0]
            progress_bar.update()
        return latents

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
    ):
        r"""Decode DV `tokens` `[B, T', H', W']` (or `video` `[B, 3, T, H, W]` in [-1, 1], DV-tokenized first).

        `guidance_scale` g: ``x0 = x0_cond + g * (x0_cond - x0_uncond)`` (0 disables guidance; the unconditional branch
        has zero text features and token id 0 everywhere); `None` uses the config's `default_guidance_scale` (1.8, the
        reference's). `chunk_latent_frames` / `chunk_blend` default to the
        pipeline config (see the class docstring). The reference's base AR pipeline passes the prompt
        `REFERENCE_GENERIC_PROMPT`. Returns `.frames` like the other pipelines.
        """
        if (tokens is None) == (video is None):
            raise ValueError("pass exactly one of `tokens` (DV token ids [B, T, H, W]) or `video`")
        guidance_scale = self._resolve_guidance_scale(guidance_scale)
        check_number("guidance_scale", guidance_scale, minimum=0, note="0 disables guidance")
        check_number("num_inference_steps", num_inference_steps, minimum=1, integer=True)
        if fps is not None:
            check_number("fps", fps, minimum=0, exclusive_minimum=True, note="frames per second of the output video")
        check_generator(generator)
        check_output_type(output_type, OUTPUT_TYPES)
        # latent output skips the video guard: refused while a guard is configured
        check_guardrail_coverage(self.safety_checker, prompt, None, output_type)
        if video is not None:
            if self.dv_tokenizer is None:
                raise ValueError("decoding a `video` needs the pipeline's dv_tokenizer to tokenize it first")
            check_pixel_range("video", video)
            tokens = self.dv_tokenizer.tokenize(video.to(self._execution_device, self.dv_tokenizer.dtype))
        chunk_blend = chunk_blend or self.config.get("chunk_blend", "pixel")
        _check_chunk_blend(chunk_blend)
        device = self._execution_device
        tokens = tokens.to(device)
        self.token_embedder.check_tokens(tokens)
        grid = self.latent_grid_for_tokens(tokens.shape)
        _check_frame_counts(tokens.shape[1], grid[0])
        batch = tokens.shape[0]
        _, _, fps, max_sequence_length = self._resolve_defaults(None, None, None, fps, max_sequence_length)[1:]
        prompts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
        if len(prompts) != batch:
            raise ValueError(f"got {len(prompts)} prompts for {batch} token grids")
        # the reference decodes with an empty or generic prompt; any text a caller writes goes through the text guard
        self._check_prompt_safety([text for text in prompts if text.strip()], device)
        text = self._get_t5_prompt_embeds(prompts, max_sequence_length, device).float()
        uncond_text = torch.zeros_like(text)  # the reference drops text to zero features in the unconditional branch
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
        results = []
        with self.progress_bar(total=len(starts) * num_inference_steps) as progress_bar:
            for start in starts:
                chunk_tokens = reflect_pad_frames(tokens[:, start : start + length], length, dim=1)
                cond = self.token_embedder(chunk_tokens, (length, *grid[1:])).float()
                uncond = self.token_embedder(torch.full_like(chunk_tokens, UNCONDITIONAL_TOKEN_ID),
                                             (length, *grid[1:])).float()
                results.append(self._sample_chunk(cond, uncond, text, uncond_text, guidance_scale,
                                                  num_inference_steps, fps, generator, progress_bar))
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


def _check_chunk_blend(mode):
    if mode not in CHUNK_BLEND_MODES:
        raise ValueError(f"chunk_blend must be one of {CHUNK_BLEND_MODES}, got {mode!r}")


__all__ = [
    "CosmosDVTokenEmbedder",
    "CosmosDiffusionDecoderPipeline",
    "DVTokenConditionedEDMObjective",
    "decoder_denoise",
    "decoder_scheduler",
    "drop_tokens",
    "split_reference_token_embedder",
    "reference_chunk_starts",
    "reflect_pad_frames",
    "blend_pixel_chunks",
    "chunk_starts",
    "blend_chunks",
    "DEFAULT_GUIDANCE_SCALE",
    "DEFAULT_NUM_INFERENCE_STEPS",
    "REFERENCE_GENERIC_PROMPT",
]
