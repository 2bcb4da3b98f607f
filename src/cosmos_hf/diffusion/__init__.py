"""Diffusion world models (Cosmos-Predict1): EDM objective, pixel-space autoencoder, text encoding, nano configs.

Names are imported lazily so that `import cosmos_hf.diffusion` stays cheap.
"""

from ..utils import lazy_exports

_LAZY = {
    "EDMConfig": "edm",
    "EDMObjective": "edm",
    "VideoCondition": "edm",
    "UncertaintyLogVar": "edm",
    "denoise": "edm",
    "edm_scalings": "edm",
    "edm_loss_weight": "edm",
    "sample_lognormal_sigma": "edm",
    "video_condition_from_frames": "edm",
    "CosmosPixelSpaceAutoencoder": "pixel_space",
    "encode_prompts": "text_encoding",
    "load_text_encoder": "text_encoding",
    "minilm_path": "text_encoding",
    "minilm_weights_sha256": "text_encoding",
    "MiniLMTextEncoder": "text_encoding",
    "NANO_TRANSFORMER_CONFIGS": "nano",
    "transformer_config": "nano",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
