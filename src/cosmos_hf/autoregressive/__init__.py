"""Cosmos-Predict1 autoregressive world model (transformers causal LM) and its checkpoint converter.

Importing this package registers `cosmos_ar` with transformers' `AutoConfig`, `AutoModel` and
`AutoModelForCausalLM`. It stays cheap: only the config class is imported; the model classes are registered
through small proxies that import `modeling_cosmos_ar` on first use.
"""

import importlib

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from ..utils import lazy_exports
from .configuration_cosmos_ar import CosmosARConfig

_MODELING = "cosmos_hf.autoregressive.modeling_cosmos_ar"


def _lazy_auto_entry(class_name: str):
    """A stand-in class for the Auto registries: `from_pretrained` / `from_config` resolve the real class lazily."""

    def real():
        return getattr(importlib.import_module(_MODELING), class_name)

    def from_pretrained(cls, *args, **kwargs):
        return real().from_pretrained(*args, **kwargs)

    def _from_config(cls, *args, **kwargs):
        return real()._from_config(*args, **kwargs)

    def from_config(cls, *args, **kwargs):
        return real()._from_config(*args, **kwargs)

    return type(
        class_name,
        (),
        {
            "config_class": CosmosARConfig,
            "__module__": _MODELING,
            "__doc__": f"Lazy Auto-class entry for {class_name}.",
            "from_pretrained": classmethod(from_pretrained),
            "_from_config": classmethod(_from_config),
            "from_config": classmethod(from_config),
        },
    )


AutoConfig.register(CosmosARConfig.model_type, CosmosARConfig, exist_ok=True)
AutoModel.register(CosmosARConfig, _lazy_auto_entry("CosmosARModel"), exist_ok=True)
AutoModelForCausalLM.register(CosmosARConfig, _lazy_auto_entry("CosmosARForCausalLM"), exist_ok=True)


_LAZY = {
    "CosmosARModel": "modeling_cosmos_ar",
    "CosmosARForCausalLM": "modeling_cosmos_ar",
    "CosmosARPreTrainedModel": "modeling_cosmos_ar",
    "convert_ar_checkpoint": "convert",
    "medusa_generate": "medusa",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = ["CosmosARConfig", "CosmosARModel", "CosmosARForCausalLM", "convert_ar_checkpoint", "medusa_generate"]
