"""An identity "autoencoder" so a diffusion world model can run in pixel space with the same pipeline code.

It exposes the attributes Cosmos pipelines read from `AutoencoderKLCosmos` (`encode(...).latent_dist`, `decode`,
`config.latent_channels`, `spatial_compression_ratio`, `temporal_compression_ratio`, `latents_mean/std`), saves and
loads like any diffusers model, and has no weights. `latents_mean` / `latents_std` (one value per RGB channel)
normalise pixels in [-1, 1] the way a VAE's latent statistics do, so x0 has std sigma_data.
"""

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, IdentityDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin


class CosmosPixelSpaceAutoencoder(ModelMixin, ConfigMixin):
    """Identity encoder/decoder over RGB video in [-1, 1] ([B, 3, T, H, W])."""

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 3,
        latents_mean: list[float] | None = None,
        latents_std: list[float] | None = None,
        spatial_compression_ratio: int = 1,
        temporal_compression_ratio: int = 1,
    ):
        super().__init__()
        if spatial_compression_ratio != 1 or temporal_compression_ratio != 1:
            raise ValueError("pixel space has no compression: spatial/temporal_compression_ratio must be 1")
        if latent_channels != 3:
            raise ValueError(f"pixel space has 3 channels, got latent_channels={latent_channels}")
        for name, values in (("latents_mean", latents_mean), ("latents_std", latents_std)):
            if values is not None and len(values) != 3:
                raise ValueError(f"{name} needs one value per RGB channel (3), got {len(values)}")
        if latents_std is not None and min(latents_std) <= 0:
            raise ValueError(f"latents_std must be positive, got {latents_std}")
        # a one-element buffer gives the module a device and dtype (pipelines read `vae.dtype`) and a weights file,
        # which diffusers' loader expects in every model folder
        self.register_buffer("device_anchor", torch.zeros(1))

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        posterior = IdentityDistribution(x)
        if not return_dict:
            return (posterior,)
        return AutoencoderKLOutput(latent_dist=posterior)

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        if not return_dict:
            return (z,)
        return DecoderOutput(sample=z)
