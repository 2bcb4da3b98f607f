"""Cosmos-Tokenize1 continuous video tokenizer (CV4x8x8, CV8x8x8, CV8x16x16): diffusers' `AutoencoderKLCosmos`, extended.

diffusers already has the CV model (`AutoencoderKLCosmos`, mirrored decoder layout). This subclass keeps its modules,
config and weights (a folder saved by either class loads in the other) and adds what it lacks:

- `enable_streaming()` / a working `enable_tiling()`: exact chunked causal encode/decode of long videos with memory
  set by the chunk, not the video length (diffusers' `enable_tiling` sets flags that encode/decode never read);
- bfloat16 on the CPU (diffusers' forward calls `avg_pool3d`, which has no bf16 CPU kernel) and faster CPU execution
  (see `causal_video.py`);
- the legacy decoder layout of older checkpoints (`legacy_mode=True`);
- input validation with clear errors, and `normalize_latents` / `denormalize_latents` for the per-channel, per-frame
  latent mean/std that the released CV8x8x8 ships as `mean_std.pt` (stored in the config as `latents_mean/std`).
"""

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.autoencoder_kl_cosmos import AutoencoderKLCosmos
from diffusers.models.autoencoders.vae import DecoderOutput, IdentityDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.utils.accelerate_utils import apply_forward_hook

from . import causal_video
from .modeling_discrete_video import apply_legacy_upsampling
from .strict_loading import StrictLoadingMixin
from .validation import MAX_FRAME_PIXELS, check_generator, check_latent, check_tokenizer_config, check_video


class CosmosContinuousVideoTokenizer(causal_video.CausalStreamingMixin, StrictLoadingMixin, AutoencoderKLCosmos):
    r"""Causal continuous video tokenizer (CV): video `[B,3,T,H,W]` in [-1,1] <-> latent `[B,16,T',H',W']`.

    Same arguments as diffusers' `AutoencoderKLCosmos`, plus `legacy_mode` (decoder layout of older checkpoints).
    `latents_mean` / `latents_std` default to `None` here (diffusers' class defaults to the CV8x8x8 statistics).
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        latent_channels: int = 16,
        encoder_block_out_channels: tuple = (128, 256, 512, 512),
        decode_block_out_channels: tuple = (256, 512, 512, 512),
        attention_resolutions: tuple = (32,),
        resolution: int = 1024,
        num_layers: int = 2,
        patch_size: int = 4,
        patch_type: str = "haar",
        scaling_factor: float = 1.0,
        spatial_compression_ratio: int = 8,
        temporal_compression_ratio: int = 8,
        latents_mean: list | None = None,
        latents_std: list | None = None,
        legacy_mode: bool = False,
    ):
        check_tokenizer_config(
            dict(in_channels=in_channels, out_channels=out_channels, latent_channels=latent_channels,
                 encoder_block_out_channels=encoder_block_out_channels,
                 decode_block_out_channels=decode_block_out_channels, attention_resolutions=attention_resolutions,
                 resolution=resolution, num_layers=num_layers, patch_size=patch_size, patch_type=patch_type,
                 spatial_compression_ratio=spatial_compression_ratio,
                 temporal_compression_ratio=temporal_compression_ratio, legacy_mode=legacy_mode),
            resampling_offset=2,
        )
        super().__init__(
            in_channels=in_channels, out_channels=out_channels, latent_channels=latent_channels,
            encoder_block_out_channels=encoder_block_out_channels, decode_block_out_channels=decode_block_out_channels,
            attention_resolutions=attention_resolutions, resolution=resolution, num_layers=num_layers,
            patch_size=patch_size, patch_type=patch_type, scaling_factor=scaling_factor,
            spatial_compression_ratio=spatial_compression_ratio, temporal_compression_ratio=temporal_compression_ratio,
            latents_mean=latents_mean, latents_std=latents_std,
        )
        if legacy_mode:
            apply_legacy_upsampling(self.decoder, len(encoder_block_out_channels) - 1, patch_size,
                                    spatial_compression_ratio, temporal_compression_ratio)
        self._check_decoder_upsampling()

    def _check_decoder_upsampling(self):
        """Refuse a block layout whose decoder does not undo the compression. The layout rule (the reference's, which
        diffusers follows) never upsamples in the decoder's first block, so e.g. 4x4x4 with two encoder levels
        would build a decoder that returns 32x32 frames for 64x64 inputs: a silent wrong result, not a model."""
        spatial = temporal = self.config.patch_size
        for block in self.decoder.up_blocks:
            for upsampler in block.upsamplers or []:
                spatial *= 2 if upsampler.spatial_upsample else 1
                temporal *= 2 if upsampler.temporal_upsample else 1
        if (spatial, temporal) != (self.config.spatial_compression_ratio, self.config.temporal_compression_ratio):
            raise ValueError(
                f"this block layout ({len(self.config.encoder_block_out_channels) - 1} levels: "
                f"encoder_block_out_channels={list(self.config.encoder_block_out_channels)}) builds a decoder that "
                f"upsamples {temporal}x in time and {spatial}x in space, not the configured "
                f"temporal_compression_ratio={self.config.temporal_compression_ratio} and spatial_compression_ratio="
                f"{self.config.spatial_compression_ratio}: add a level (one more entry in channels_mult)"
            )

    @property
    def temporal_compression_factor(self) -> int:
        return self.config.temporal_compression_ratio

    # frames above this many pixels are refused before any work (see validation.MAX_FRAME_PIXELS); None = no limit
    max_frame_pixels = MAX_FRAME_PIXELS

    # `_encode` / `_decode` compute only: `encode` / `decode` validate the whole batch once, before slicing it
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_latent(x.to(self.dtype))

    def _decode(self, z: torch.Tensor, return_dict: bool = True):
        video = self.decode_latent(z.to(self.dtype))
        return DecoderOutput(sample=video) if return_dict else (video,)

    # diffusers' AutoencoderKLCosmos decorates encode/decode; overrides must too, or offload hooks never fire
    @apply_forward_hook
    def encode(self, x: torch.Tensor, return_dict: bool = True):
        check_video(x, self.config.in_channels, self.config.temporal_compression_ratio,
                    self.config.spatial_compression_ratio, self.max_frame_pixels)
        latent = torch.cat([self._encode(x_slice) for x_slice in x.split(1)]) if self.use_slicing else self._encode(x)
        posterior = IdentityDistribution(latent)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    @apply_forward_hook
    def decode(self, z: torch.Tensor, return_dict: bool = True):
        if not isinstance(z, torch.Tensor) or z.ndim != 5:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"latent must be shaped [B, {self.config.latent_channels}, T', H', W'], got {shape}")
        check_latent(z, self.config.latent_channels, self.config.spatial_compression_ratio, self.max_frame_pixels)
        if self.use_slicing and z.shape[0] > 1:
            video = torch.cat([self._decode(z_slice).sample for z_slice in z.split(1)])
        else:
            video = self._decode(z).sample
        return DecoderOutput(sample=video) if return_dict else (video,)

    def forward(self, sample: torch.Tensor, sample_posterior: bool = False, return_dict: bool = True,
                generator: torch.Generator | None = None):
        """diffusers' forward (encode + decode); `generator` is checked although the AE posterior never samples."""
        check_generator(generator)
        return super().forward(sample, sample_posterior=sample_posterior, return_dict=return_dict, generator=generator)

    # -- latent statistics --------------------------------------------------------------------------------------
    def _latent_stats(self, latent):
        mean, std = self.config.latents_mean, self.config.latents_std
        if mean is None or std is None:
            return None, None
        shape = (1, self.config.latent_channels, -1, 1, 1)
        frames = latent.shape[2]
        mean = torch.tensor(mean).view(shape)[:, :, :frames].to(latent)
        std = torch.tensor(std).view(shape)[:, :, :frames].to(latent)
        if mean.shape[2] < frames:
            raise ValueError(f"latents_mean covers {mean.shape[2]} latent frames, the latent has {frames}")
        return mean, std

    def normalize_latents(self, latent: torch.Tensor) -> torch.Tensor:
        """(latent - mean) / std with the released per-channel, per-frame statistics (identity when absent)."""
        mean, std = self._latent_stats(latent)
        return latent if mean is None else (latent - mean) / std

    def denormalize_latents(self, latent: torch.Tensor) -> torch.Tensor:
        mean, std = self._latent_stats(latent)
        return latent if mean is None else latent * std + mean
