"""Cosmos-Tokenize1: causal video and image tokenizers (continuous CV/CI, discrete DV/DI with FSQ), converters.

Names are imported lazily (`cosmos_hf.utils.lazy_exports`) so that `cosmos-hf tokenize --help` does not import
torch.
"""

from ..utils import lazy_exports

_LAZY = {
    "FSQ": "fsq",
    "CosmosContinuousVideoTokenizer": "modeling_continuous_video",
    "CosmosDiscreteVideoTokenizer": "modeling_discrete_video",
    "CosmosImageTokenizer": "modeling_image",
    "CosmosDiscreteImageTokenizer": "modeling_image",
    "REFERENCE_CONFIGS": "configs",
    "from_config_name": "configs",
    "model_from_reference_kwargs": "configs",
    "convert_tokenizer_checkpoint": "convert",
    "save_converted": "convert",
    "load_tokenizer": "convert",
    "pad_video_frames": "validation",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
