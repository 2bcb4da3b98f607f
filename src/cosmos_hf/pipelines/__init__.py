"""DiffusionPipeline subclasses, one per file (imported lazily)."""

from ..utils import lazy_exports

_LAZY = {
    "CosmosText2WorldPipeline": "pipeline_cosmos_text2world",
    "CosmosVideo2WorldPipeline": "pipeline_cosmos_video2world",
    "CosmosARVideo2WorldPipeline": "pipeline_cosmos_ar_video2world",
    # post-trained world models (train_diffusion.py --condition camera | action | multiview)
    "CosmosCameraControlPipeline": "pipeline_cosmos_camera_control",
    "CosmosActionConditionedPipeline": "pipeline_cosmos_action_conditioned",
    "CosmosMultiViewPipeline": "pipeline_cosmos_multiview",
    # the autoregressive model's diffusion decoder (train_diffusion.py --condition dv_tokens)
    "CosmosDiffusionDecoderPipeline": "pipeline_cosmos_diffusion_decoder",
    # any saved pipeline folder; ours without diffusers' remote-code copy (hub_layout.load_pipeline)
    "load_pipeline": "hub_layout",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
