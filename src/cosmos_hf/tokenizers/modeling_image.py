"""Cosmos-Tokenize1 image tokenizers: continuous (CI8x8, CI16x16) and discrete (DI8x8, DI16x16), as diffusers models.

A 2D encoder/decoder in the style of the latent-diffusion autoencoder: haar wavelet patching, ResNet blocks with
GroupNorm(32), a single-head attention block in the middle (and at the listed resolutions), strided-conv
downsampling and nearest-neighbour upsampling. CI keeps the 16-channel latent (AE formulation, no sampling); DI
projects it to 6 FSQ channels and quantizes (64,000 tokens).

Module names follow diffusers' conventions (`down_blocks`, `resnets`, `mid_block`, `to_q` ...); the converter maps
the reference's names (`down.0.block.0`, `mid.attn_1.q` ...) onto them.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn

from .fsq import FSQ
from .strict_loading import StrictLoadingMixin
from .validation import (
    MAX_FRAME_PIXELS,
    check_batch_and_grid,
    check_config_int,
    check_config_ints,
    check_frame_size,
    check_image,
    check_latent,
    check_tokenizer_config,
)

_HAAR = 0.7071067811865476


def haar_patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Multi-level 2D haar transform: [B, C, H, W] -> [B, C * p^2, H/p, W/p] (subbands ll, lh, hl, hh per level)."""
    for _ in range(int(patch_size).bit_length() - 1):
        low_w = (x[..., 0::2] + x[..., 1::2]) * _HAAR
        high_w = (x[..., 0::2] - x[..., 1::2]) * _HAAR
        subbands = []
        for band in (low_w, high_w):
            subbands.append((band[..., 0::2, :] + band[..., 1::2, :]) * _HAAR)
            subbands.append((band[..., 0::2, :] - band[..., 1::2, :]) * _HAAR)
        x = torch.cat(subbands, dim=1) / 2
    return x


def _interleave(low: torch.Tensor, high: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of one haar step along `dim`: out[2i] = a(L+H), out[2i+1] = a(L-H)."""
    even, odd = (low + high) * _HAAR, (low - high) * _HAAR
    return torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)


def haar_unpatchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Inverse of `haar_patchify`."""
    for _ in range(int(patch_size).bit_length() - 1):
        ll, lh, hl, hh = torch.chunk(x * 2, 4, dim=1)
        low_w = _interleave(ll, lh, dim=2)
        high_w = _interleave(hl, hh, dim=2)
        x = _interleave(low_w, high_w, dim=3)
    return x


def rearrange_patchify(x, p):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4).reshape(b, c * p * p, h // p, w // p)


def rearrange_unpatchify(x, p):
    b, c, h, w = x.shape
    return x.reshape(b, c // (p * p), p, p, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // (p * p), h * p, w * p)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock2d(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.conv_shortcut(x) + h


class AttentionBlock2d(nn.Module):
    """Single-head self-attention over all H*W positions, 1x1-conv projections."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.to_q = nn.Conv2d(channels, channels, 1)
        self.to_k = nn.Conv2d(channels, channels, 1)
        self.to_v = nn.Conv2d(channels, channels, 1)
        self.to_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        normed = self.norm(x)
        q, k, v = (proj(normed).flatten(2).transpose(1, 2) for proj in (self.to_q, self.to_k, self.to_v))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, c, h, w)
        return x + self.to_out(out)


class Downsample2d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric pad as in the reference


class Upsample2d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))


class _Level(nn.Module):
    """One resolution level: ResNet blocks, optional attention after each, optional resampler at the end."""

    def __init__(self, in_channels, out_channels, num_blocks, use_attention, resampler, dropout):
        super().__init__()
        self.resnets = nn.ModuleList()
        self.attentions = nn.ModuleList()
        for _ in range(num_blocks):
            self.resnets.append(ResnetBlock2d(in_channels, out_channels, dropout))
            in_channels = out_channels
            if use_attention:
                self.attentions.append(AttentionBlock2d(out_channels))
        self.resampler = resampler(out_channels) if resampler is not None else None

    def forward(self, x):
        for i, resnet in enumerate(self.resnets):
            x = resnet(x)
            if len(self.attentions):
                x = self.attentions[i](x)
        return self.resampler(x) if self.resampler is not None else x


class MidBlock2d(nn.Module):
    def __init__(self, channels, dropout):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2d(channels, channels, dropout), ResnetBlock2d(channels, channels, dropout)])
        self.attention = AttentionBlock2d(channels)

    def forward(self, x):
        return self.resnets[1](self.attention(self.resnets[0](x)))


class CosmosImageEncoder2d(nn.Module):
    def __init__(self, in_channels, z_channels, channels, channels_mult, num_res_blocks, attn_resolutions, resolution,
                 patch_size, patch_method, spatial_compression, dropout):
        super().__init__()
        self.patch_size, self.patch_method = patch_size, patch_method
        num_downsamples = int(spatial_compression).bit_length() - int(patch_size).bit_length()
        if num_downsamples > len(channels_mult):
            raise ValueError(f"spatial_compression {spatial_compression} needs more than {len(channels_mult)} levels")
        self.conv_in = nn.Conv2d(in_channels * patch_size**2, channels, 3, padding=1)
        current_resolution = resolution // patch_size
        block_in = channels
        self.down_blocks = nn.ModuleList()
        for level, mult in enumerate(channels_mult):
            block_out = channels * mult
            downsample = level < num_downsamples
            self.down_blocks.append(
                _Level(block_in, block_out, num_res_blocks, current_resolution in attn_resolutions,
                       Downsample2d if downsample else None, dropout)
            )
            block_in = block_out
            if downsample:
                current_resolution //= 2
        self.mid_block = MidBlock2d(block_in, dropout)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, z_channels, 3, padding=1)

    def forward(self, x):
        if self.patch_method == "haar":
            x = haar_patchify(x, self.patch_size)
        else:
            x = rearrange_patchify(x, self.patch_size)
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class CosmosImageDecoder2d(nn.Module):
    def __init__(self, out_channels, z_channels, channels, channels_mult, num_res_blocks, attn_resolutions, resolution,
                 patch_size, patch_method, spatial_compression, dropout):
        super().__init__()
        self.patch_size, self.patch_method = patch_size, patch_method
        num_levels = len(channels_mult)
        num_upsamples = int(spatial_compression).bit_length() - int(patch_size).bit_length()
        block_in = channels * channels_mult[-1]
        current_resolution = (resolution // patch_size) // 2 ** (num_levels - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid_block = MidBlock2d(block_in, dropout)
        self.up_blocks = nn.ModuleList()  # ordered as executed: lowest resolution first
        for level in reversed(range(num_levels)):
            block_out = channels * channels_mult[level]
            upsample = level >= num_levels - num_upsamples
            self.up_blocks.append(
                _Level(block_in, block_out, num_res_blocks + 1, current_resolution in attn_resolutions,
                       Upsample2d if upsample else None, dropout)
            )
            block_in = block_out
            if upsample:
                current_resolution *= 2
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_channels * patch_size**2, 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        x = self.conv_out(F.silu(self.norm_out(x)))
        if self.patch_method == "haar":
            return haar_unpatchify(x, self.patch_size)
        return rearrange_unpatchify(x, self.patch_size)


class _ImageTokenizerBase(StrictLoadingMixin, ModelMixin, ConfigMixin):
    _supports_gradient_checkpointing = False
    # images above this many pixels are refused before any work (see validation.MAX_FRAME_PIXELS); None = no limit
    max_frame_pixels = MAX_FRAME_PIXELS

    def _build(self, in_channels, out_channels, channels, channels_mult, num_res_blocks, attn_resolutions, resolution,
               z_channels, patch_size, patch_method, spatial_compression, dropout):
        check_tokenizer_config(
            dict(in_channels=in_channels, out_channels=out_channels, channels=channels, channels_mult=channels_mult,
                 num_res_blocks=num_res_blocks, attn_resolutions=attn_resolutions, resolution=resolution,
                 z_channels=z_channels, patch_size=patch_size, patch_method=patch_method,
                 spatial_compression=spatial_compression, dropout=dropout),
            resampling_offset=0,
        )
        widths = [channels * mult for mult in channels_mult]
        if any(width % 32 for width in widths):
            raise ValueError(f"config keys 'channels' x 'channels_mult' must give multiples of 32 (GroupNorm with 32 "
                             f"groups), got {widths}")
        common = dict(channels=channels, channels_mult=tuple(channels_mult), num_res_blocks=num_res_blocks,
                      attn_resolutions=tuple(attn_resolutions), resolution=resolution, patch_size=patch_size,
                      patch_method=patch_method, spatial_compression=spatial_compression, dropout=dropout)
        self.encoder = CosmosImageEncoder2d(in_channels, z_channels, **common)
        self.decoder = CosmosImageDecoder2d(out_channels, z_channels, **common)

    def _check(self, image):
        check_image(image, self.config.in_channels, self.config.spatial_compression, self.max_frame_pixels)
        return image.to(self.dtype)


class CosmosImageTokenizer(_ImageTokenizerBase):
    r"""Continuous image tokenizer (CI8x8 / CI16x16): image `[B,3,H,W]` in [-1,1] <-> latent `[B,16,H/s,W/s]`.

    `encode` returns diffusers' `AutoencoderKLOutput` with a deterministic `latent_dist` (AE formulation: `.mode()`
    and `.sample()` both return the latent), `decode` returns `DecoderOutput(sample=...)`.
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, out_channels: int = 3, channels: int = 128, channels_mult: tuple = (2, 4, 4),
                 num_res_blocks: int = 2, attn_resolutions: tuple = (32,), resolution: int = 1024, z_channels: int = 16,
                 latent_channels: int = 16, patch_size: int = 2, patch_method: str = "haar",
                 spatial_compression: int = 8, dropout: float = 0.0):
        super().__init__()
        check_config_int("latent_channels", latent_channels)
        self._build(in_channels, out_channels, channels, channels_mult, num_res_blocks, attn_resolutions, resolution,
                    z_channels, patch_size, patch_method, spatial_compression, dropout)
        self.quant_conv = nn.Conv2d(z_channels, latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(latent_channels, z_channels, 1)

    @apply_forward_hook
    def encode(self, image: torch.Tensor, return_dict: bool = True):
        from diffusers.models.autoencoders.vae import IdentityDistribution

        latent = self.quant_conv(self.encoder(self._check(image)))
        dist = IdentityDistribution(latent)
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    @apply_forward_hook
    def decode(self, latent: torch.Tensor, return_dict: bool = True):
        if latent.ndim != 4 or latent.shape[1] != self.config.latent_channels:
            raise ValueError(f"latent must be shaped [B, {self.config.latent_channels}, h, w], got {tuple(latent.shape)}")
        check_latent(latent, self.config.latent_channels, self.config.spatial_compression, self.max_frame_pixels)
        image = self.decoder(self.post_quant_conv(latent.to(self.dtype)))
        return DecoderOutput(sample=image) if return_dict else (image,)

    def forward(self, sample: torch.Tensor, return_dict: bool = True):
        # our own latent, not user input: decoded unchecked (a diverged training run must reach its loss check)
        latent = self.encode(sample).latent_dist.mode()
        image = self.decoder(self.post_quant_conv(latent.to(self.dtype)))
        return DecoderOutput(sample=image) if return_dict else (image,)


@dataclass
class DiscreteImageTokenizerOutput(BaseOutput):
    indices: torch.LongTensor = None
    codes: torch.Tensor = None
    sample: torch.Tensor = None


class CosmosDiscreteImageTokenizer(_ImageTokenizerBase):
    r"""Discrete image tokenizer (DI8x8 / DI16x16): image `[B,3,H,W]` in [-1,1] <-> tokens `[B, H/s, W/s]` (FSQ)."""

    @register_to_config
    def __init__(self, in_channels: int = 3, out_channels: int = 3, channels: int = 128, channels_mult: tuple = (2, 4, 4),
                 num_res_blocks: int = 2, attn_resolutions: tuple = (32,), resolution: int = 1024, z_channels: int = 256,
                 levels: tuple = (8, 8, 8, 5, 5, 5), patch_size: int = 2, patch_method: str = "haar",
                 spatial_compression: int = 8, dropout: float = 0.0):
        super().__init__()
        check_config_ints("levels", levels, minimum=2)
        self._build(in_channels, out_channels, channels, channels_mult, num_res_blocks, attn_resolutions, resolution,
                    z_channels, patch_size, patch_method, spatial_compression, dropout)
        self.quant_conv = nn.Conv2d(z_channels, len(levels), 1)
        self.post_quant_conv = nn.Conv2d(len(levels), z_channels, 1)
        self.quantizer = FSQ(levels)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @apply_forward_hook
    def encode_pre_quant(self, image: torch.Tensor) -> torch.Tensor:
        return self.quant_conv(self.encoder(self._check(image)))

    @apply_forward_hook
    def encode(self, image: torch.Tensor, return_dict: bool = True):
        indices, codes = self.quantizer(self.encode_pre_quant(image))
        codes = codes.to(self.dtype)
        return DiscreteImageTokenizerOutput(indices=indices, codes=codes) if return_dict else (indices, codes)

    @apply_forward_hook
    def tokenize(self, image: torch.Tensor) -> torch.LongTensor:
        return self.encode(image).indices

    @apply_forward_hook
    def decode(self, codes: torch.Tensor, return_dict: bool = True):
        if codes.ndim != 4 or codes.shape[1] != self.quantizer.dim:
            raise ValueError(f"codes must be shaped [B, {self.quantizer.dim}, h, w], got {tuple(codes.shape)}")
        check_latent(codes, self.quantizer.dim, self.config.spatial_compression, self.max_frame_pixels, "codes",
                     value_range=self.quantizer.code_range())
        image = self.decoder(self.post_quant_conv(codes.to(self.dtype)))
        return DiscreteImageTokenizerOutput(sample=image) if return_dict else (image,)

    @apply_forward_hook
    def detokenize(self, indices: torch.LongTensor) -> torch.Tensor:
        if indices.ndim != 3:
            raise ValueError(f"indices must be shaped [B, h, w], got {tuple(indices.shape)}")
        check_batch_and_grid(indices.shape, "indices", "B, h, w")
        sc = self.config.spatial_compression
        check_frame_size(indices.shape[1] * sc, indices.shape[2] * sc, self.max_frame_pixels, "detokenized image")
        return self.decode(self.quantizer.indices_to_codes(indices)).sample  # moved to the quantizer's device there

    def forward(self, sample: torch.Tensor, return_dict: bool = True):
        indices, codes = self.encode(sample, return_dict=False)
        # our own quantizer's codes, not user input: decoded unchecked (a diverged training run must reach its loss)
        image = self.decoder(self.post_quant_conv(codes.to(self.dtype)))
        return DiscreteImageTokenizerOutput(indices=indices, codes=codes, sample=image) if return_dict else (image, indices)
