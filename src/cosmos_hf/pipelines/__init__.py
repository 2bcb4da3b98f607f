"""DiffusionPipeline subclasses, one per file (imported lazily)."""

import importlib

_LAZY = {
    "CosmosText2WorldPipeline": "pipeline_cosmos_text2world",
    "CosmosVideo2WorldPipeline": "pipeline_cosmos_video2world",
    "CosmosARVideo2WorldPipeline": "pipeline_cosmos_ar_video2world",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
