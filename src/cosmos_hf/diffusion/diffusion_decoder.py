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

`cosmos_hf.pipelines.CosmosDiffusionDecoderPipeline` bundles it (DV tokenizer, CV tokenizer, text encoder, DiT, token
embedder, EDM scheduler) and is what `training/train_diffusion.py` saves with `model.condition: dv_tokens`. It used to
live here; `from cosmos_hf.diffusion.diffusion_decoder import CosmosDiffusionDecoderPipeline` still works (a lazy alias,
see `__getattr__` below: this package must not import `cosmos_hf.pipelines`, which imports it).
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from diffusers import EDMEulerScheduler
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

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
            check_token_frames(frames, target_frames)
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


def check_token_frames(token_frames: int, latent_frames: int) -> None:
    if token_frames != latent_frames:
        raise ValueError(f"DV token grid has {token_frames} frames but the latent grid has {latent_frames}: the "
                         "diffusion decoder resizes only H and W (as the reference), so the DV and CV tokenizers must "
                         "have the same temporal compression")


def decoder_input_extra_channels(transformer, latent_channels: int, token_channels: int) -> int:
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
    extra = decoder_input_extra_channels(transformer, noisy_latents.shape[1], token_channels.shape[1])
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


def check_chunk_blend(mode):
    if mode not in CHUNK_BLEND_MODES:
        raise ValueError(f"chunk_blend must be one of {CHUNK_BLEND_MODES}, got {mode!r}")


# names that moved to cosmos_hf.pipelines, resolved on first use (PEP 562) so that old imports and the `pipeline.py` of
# decoder folders saved before the move keep working without this module importing cosmos_hf.pipelines
_MOVED_TO_PIPELINES = {"CosmosDiffusionDecoderPipeline": "cosmos_hf.pipelines.pipeline_cosmos_diffusion_decoder"}


def __getattr__(name):
    if name in _MOVED_TO_PIPELINES:
        return getattr(importlib.import_module(_MOVED_TO_PIPELINES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CosmosDVTokenEmbedder",
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
    "check_chunk_blend",
    "check_token_frames",
    "decoder_input_extra_channels",
    "DEFAULT_GUIDANCE_SCALE",
    "DEFAULT_NUM_INFERENCE_STEPS",
    "REFERENCE_GENERIC_PROMPT",
]
