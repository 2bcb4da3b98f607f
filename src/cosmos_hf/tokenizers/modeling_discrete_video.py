"""Cosmos-Tokenize1 causal discrete video tokenizer (DV4x8x8, DV8x8x8, DV8x16x16) as a diffusers model.

Encoder and decoder are diffusers' Cosmos 3D blocks (`CosmosEncoder3d` / `CosmosDecoder3d`, the same modules as
`AutoencoderKLCosmos`), so a DV checkpoint and a CV checkpoint share key names. Between them sit a 1x1x1 conv down
to the FSQ dimension (6), the FSQ quantizer (levels 8,8,8,5,5,5 -> 64,000 tokens) and a 1x1x1 conv back up.

Two decoder layouts exist in the released checkpoints: "mirrored" (the encoder's downsampling schedule reversed,
which diffusers implements) and "legacy" (temporal upsampling in the first up levels), selected by `legacy_mode`.
"""

import math
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.autoencoder_kl_cosmos import (
    CosmosCausalConv3d,
    CosmosDecoder3d,
    CosmosEncoder3d,
    CosmosUpsample3d,
)
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from diffusers.utils.accelerate_utils import apply_forward_hook

from . import causal_video
from .fsq import FSQ
from .strict_loading import StrictLoadingMixin
from .validation import (
    MAX_FRAME_PIXELS,
    check_batch_and_grid,
    check_frame_size,
    check_latent,
    check_latent_frames,
    check_tokenizer_config,
    check_video,
)


@dataclass
class DiscreteVideoTokenizerOutput(BaseOutput):
    """`indices` [B, T', H', W'] int64 tokens, `codes` [B, D, T', H', W'] quantized FSQ codes, `sample` the video."""

    indices: torch.LongTensor = None
    codes: torch.Tensor = None
    sample: torch.Tensor = None


def apply_legacy_upsampling(decoder: CosmosDecoder3d, num_levels: int, patch_size: int, spatial_compression: int,
                            temporal_compression: int):
    """Rebuild the decoder's upsamplers with the legacy rule: temporal upsampling in the first (lowest-res) levels.

    The mirrored rule (diffusers) upsamples time at up-levels 1..n_t; legacy at levels 0..n_t-1. Spatial upsampling
    follows the temporal one, plus the extra spatial levels when space is compressed more than time.
    """
    num_spatial = int(math.log2(spatial_compression)) - int(math.log2(patch_size))
    num_temporal = int(math.log2(temporal_compression)) - int(math.log2(patch_size))
    for i, block in enumerate(decoder.up_blocks[: num_levels - 1]):
        temporal_up = i < num_temporal
        spatial_up = temporal_up or (i < num_spatial and num_spatial > num_temporal)
        channels = block.resnets[-1].conv2.conv_t.out_channels
        block.upsamplers[0] = CosmosUpsample3d(channels, spatial_upsample=spatial_up, temporal_upsample=temporal_up)


class CosmosDiscreteVideoTokenizer(causal_video.CausalStreamingMixin, StrictLoadingMixin, ModelMixin, ConfigMixin):
    r"""Causal discrete video tokenizer of Cosmos-Tokenize1 (DV).

    Videos are float tensors in [-1, 1] shaped `[B, 3, T, H, W]` with `T = 1 + k * temporal_compression` (the first
    frame is encoded on its own, causally); H and W must be multiples of `spatial_compression`. Tokens are int64
    `[B, 1 + k, H / s, W / s]` in `[0, codebook_size)`.

    Args:
        channels / channels_mult / num_res_blocks / attn_resolutions / resolution: network width and depth, as in the
            reference configs (`resolution` only decides at which levels attention is placed).
        z_channels: encoder output channels (16, or 256 for DV4x8x8).
        levels: FSQ levels; `embedding_dim == len(levels)`.
        patch_size / patch_method: haar wavelet (or rearrange) patching before the first conv.
        spatial_compression / temporal_compression: total compression factors.
        legacy_mode: decoder layout of the older checkpoints (see `apply_legacy_upsampling`).
    """

    _supports_gradient_checkpointing = True
    # frames above this many pixels are refused before any work (see validation.MAX_FRAME_PIXELS); None = no limit
    max_frame_pixels = MAX_FRAME_PIXELS

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 128,
        channels_mult: tuple = (2, 4, 4),
        num_res_blocks: int = 2,
        attn_resolutions: tuple = (32,),
        resolution: int = 1024,
        z_channels: int = 16,
        levels: tuple = (8, 8, 8, 5, 5, 5),
        patch_size: int = 4,
        patch_method: str = "haar",
        spatial_compression: int = 16,
        temporal_compression: int = 8,
        legacy_mode: bool = False,
        dropout: float = 0.0,
    ):
        check_tokenizer_config(
            dict(in_channels=in_channels, out_channels=out_channels, channels=channels, channels_mult=channels_mult,
                 num_res_blocks=num_res_blocks, attn_resolutions=attn_resolutions, resolution=resolution,
                 z_channels=z_channels, levels=levels, patch_size=patch_size, patch_method=patch_method,
                 spatial_compression=spatial_compression, temporal_compression=temporal_compression,
                 legacy_mode=legacy_mode, dropout=dropout),
            resampling_offset=1,
        )
        super().__init__()
        encoder_channels = tuple(channels * m for m in (1, *channels_mult))
        decoder_channels = tuple(channels * m for m in (*channels_mult, channels_mult[-1]))
        common = dict(
            num_resnet_blocks=num_res_blocks,
            attention_resolutions=tuple(attn_resolutions),
            resolution=resolution,
            patch_size=patch_size,
            patch_type=patch_method,
            dropout=dropout,
            spatial_compression_ratio=spatial_compression,
            temporal_compression_ratio=temporal_compression,
        )
        self.encoder = CosmosEncoder3d(in_channels, z_channels, block_out_channels=encoder_channels, **common)
        self.decoder = CosmosDecoder3d(z_channels, out_channels, block_out_channels=decoder_channels, **common)
        if legacy_mode:
            apply_legacy_upsampling(self.decoder, len(channels_mult), patch_size, spatial_compression,
                                    temporal_compression)
        embedding_dim = len(levels)
        self.quant_conv = CosmosCausalConv3d(z_channels, embedding_dim, kernel_size=1, padding=0)
        self.post_quant_conv = CosmosCausalConv3d(embedding_dim, z_channels, kernel_size=1, padding=0)
        self.quantizer = FSQ(levels)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def latent_shape(self, num_frames: int, height: int, width: int):
        """Token grid `(T', H', W')` for a video of the given size (after validating it)."""
        tc, sc = self.config.temporal_compression, self.config.spatial_compression
        return 1 + (num_frames - 1) // tc, height // sc, width // sc

    @property
    def temporal_compression_factor(self) -> int:
        return self.config.temporal_compression

    # -- encoding -----------------------------------------------------------------------------------------------
    # `apply_forward_hook`: these entry points (not only `forward`) fire accelerate's offload hooks, so that
    # `pipe.enable_model_cpu_offload()` moves the tokenizer to the accelerator when it is used.
    @apply_forward_hook
    def encode_pre_quant(self, video: torch.Tensor) -> torch.Tensor:
        """Continuous FSQ input `[B, D, T', H', W']` (before rounding); streamed when `enable_streaming()` is on."""
        check_video(video, self.config.in_channels, self.config.temporal_compression, self.config.spatial_compression,
                    self.max_frame_pixels)
        return self.encode_latent(video.to(self.dtype))

    @apply_forward_hook
    def encode(self, video: torch.Tensor, return_dict: bool = True):
        """Video `[B,3,T,H,W]` in [-1,1] -> `DiscreteVideoTokenizerOutput(indices, codes)`."""
        indices, codes = self.quantizer(self.encode_pre_quant(video))
        codes = codes.to(video.dtype if video.dtype.is_floating_point else self.dtype)
        if not return_dict:
            return indices, codes
        return DiscreteVideoTokenizerOutput(indices=indices, codes=codes)

    @apply_forward_hook
    def tokenize(self, video: torch.Tensor) -> torch.LongTensor:
        """Video `[B,3,T,H,W]` in [-1,1] -> tokens `[B, T', H', W']` (int64)."""
        return self.encode(video).indices

    # -- decoding -----------------------------------------------------------------------------------------------
    @apply_forward_hook
    def decode(self, codes: torch.Tensor, return_dict: bool = True):
        """Quantized codes `[B, D, T', H', W']` -> video `[B, 3, T, H, W]`."""
        if not isinstance(codes, torch.Tensor) or codes.ndim != 5 or codes.shape[1] != self.quantizer.dim:
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"codes must be shaped [B, {self.quantizer.dim}, T', H', W'], got {shape}")
        check_latent(codes, self.quantizer.dim, self.config.spatial_compression, self.max_frame_pixels, "codes",
                     value_range=self.quantizer.code_range())
        video = self.decode_latent(codes.to(self.dtype))
        if not return_dict:
            return (video,)
        return DiscreteVideoTokenizerOutput(sample=video)

    @apply_forward_hook
    def detokenize(self, indices: torch.LongTensor) -> torch.Tensor:
        """Tokens `[B, T', H', W']` -> video `[B, 3, 1 + (T'-1) * tc, H' * s, W' * s]`."""
        if indices.ndim != 4:
            raise ValueError(f"indices must be shaped [B, T', H', W'], got {tuple(indices.shape)}")
        check_latent_frames(indices.shape[1])
        check_batch_and_grid(indices.shape, "indices", "B, T', H', W'")
        sc = self.config.spatial_compression
        check_frame_size(indices.shape[2] * sc, indices.shape[3] * sc, self.max_frame_pixels, "detokenized video")
        codes = self.quantizer.indices_to_codes(indices)  # moved to the quantizer's device there
        return self.decode(codes).sample

    def forward(self, sample: torch.Tensor, return_dict: bool = True):
        """Tokenize and reconstruct: returns `DiscreteVideoTokenizerOutput(indices, codes, sample)`."""
        indices, codes = self.encode(sample, return_dict=False)
        # the codes come from our own quantizer, not from a user: decode them unchecked, so that a training run whose
        # weights diverged reaches its loss (and the trainer's non-finite-loss stop) instead of a decode-input error
        video = self.decode_latent(codes.to(self.dtype))
        if not return_dict:
            return (video, indices)
        return DiscreteVideoTokenizerOutput(indices=indices, codes=codes, sample=video)
