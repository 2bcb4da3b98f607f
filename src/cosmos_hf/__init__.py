"""cosmos-hf: the Cosmos World Foundation Model platform on Hugging Face diffusers / transformers.

Top-level names are imported lazily (like diffusers) so that `import cosmos_hf` stays cheap; the
autoregressive package is imported eagerly because it registers `cosmos_ar` with transformers' Auto classes.
"""

import os as _os
import sys as _sys

from .utils import lazy_exports

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY_IMPORTS = {
    # tokenizers (Cosmos-Tokenize1)
    "FSQ": "tokenizers.fsq",
    "CosmosContinuousVideoTokenizer": "tokenizers.modeling_continuous_video",
    "CosmosDiscreteVideoTokenizer": "tokenizers.modeling_discrete_video",
    "CosmosImageTokenizer": "tokenizers.modeling_image",
    "CosmosDiscreteImageTokenizer": "tokenizers.modeling_image",
    "convert_tokenizer_checkpoint": "tokenizers.convert",
    "load_tokenizer": "tokenizers.convert",
    "pad_video_frames": "tokenizers.validation",
    # diffusion WFM
    "CosmosText2WorldPipeline": "pipelines.pipeline_cosmos_text2world",
    "CosmosVideo2WorldPipeline": "pipelines.pipeline_cosmos_video2world",
    "CosmosCameraControlPipeline": "pipelines.pipeline_cosmos_camera_control",
    "CosmosActionConditionedPipeline": "pipelines.pipeline_cosmos_action_conditioned",
    "CosmosMultiViewPipeline": "pipelines.pipeline_cosmos_multiview",
    "CosmosPixelSpaceAutoencoder": "diffusion.pixel_space",
    "EDMObjective": "diffusion.edm",
    "EDMConfig": "diffusion.edm",
    "CosmosDiffusionDecoderPipeline": "pipelines.pipeline_cosmos_diffusion_decoder",
    "MiniLMTextEncoder": "diffusion.text_encoding",
    "CosmosDVTokenEmbedder": "diffusion.diffusion_decoder",
    # guardrails
    "CosmosSafetyChecker": "guardrails.checker",
    "CosmosPromptUpsampler": "guardrails.prompt_upsampler",
    # autoregressive WFM
    "CosmosARConfig": "autoregressive.configuration_cosmos_ar",
    "CosmosARModel": "autoregressive.modeling_cosmos_ar",
    "CosmosARForCausalLM": "autoregressive.modeling_cosmos_ar",
    "convert_ar_checkpoint": "autoregressive.convert",
    "CosmosARVideo2WorldPipeline": "pipelines.pipeline_cosmos_ar_video2world",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY_IMPORTS)


def register_auto_classes() -> None:
    """Register CosmosARConfig / CosmosARForCausalLM with transformers' Auto classes (idempotent).

    Needs transformers' configuration module, which imports torch (about 3 s cold).
    """
    from . import autoregressive  # noqa: F401  (registers on import)


# `import cosmos_hf` registers at once, so `AutoModelForCausalLM.from_pretrained(<cosmos_ar folder>)` just works. The
# `cosmos-hf` command is the exception: it registers in `cli.main` right before running a subcommand, so that
# `cosmos-hf --help` answers without importing torch.
_program = _sys.argv[0] if getattr(_sys, "argv", None) else ""
if _os.path.basename(_program) != "cosmos-hf":
    register_auto_classes()
