"""Cosmos-Tokenize1: causal video and image tokenizers (continuous CV/CI, discrete DV/DI with FSQ), converters."""

from .configs import REFERENCE_CONFIGS, from_config_name, model_from_reference_kwargs
from .convert import convert_tokenizer_checkpoint, load_tokenizer, save_converted
from .fsq import FSQ
from .modeling_continuous_video import CosmosContinuousVideoTokenizer
from .modeling_discrete_video import CosmosDiscreteVideoTokenizer
from .modeling_image import CosmosDiscreteImageTokenizer, CosmosImageTokenizer
from .validation import pad_video_frames

__all__ = [
    "FSQ",
    "CosmosContinuousVideoTokenizer",
    "CosmosDiscreteVideoTokenizer",
    "CosmosImageTokenizer",
    "CosmosDiscreteImageTokenizer",
    "REFERENCE_CONFIGS",
    "from_config_name",
    "model_from_reference_kwargs",
    "convert_tokenizer_checkpoint",
    "save_converted",
    "load_tokenizer",
    "pad_video_frames",
]
