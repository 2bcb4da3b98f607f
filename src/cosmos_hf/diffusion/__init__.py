"""Diffusion world models (Cosmos-Predict1): EDM objective, pixel-space autoencoder, text encoding, nano configs,
post-trained DiTs (camera control, robot actions, multi-view) and their checkpoint converter.

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
    "CosmosCameraControlTransformer3DModel": "camera_control",
    "JOYSTICK_MOVES": "camera_control",
    "joystick_trajectory": "camera_control",
    "latent_frame_poses": "camera_control",
    "plucker_rays": "camera_control",
    "CosmosActionConditionedTransformer3DModel": "action_conditioning",
    "CosmosMultiViewTransformer3DModel": "multiview",
    "convert_post_trained_checkpoint": "convert_post_trained",
    "convert_post_trained_state_dict": "convert_post_trained",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
