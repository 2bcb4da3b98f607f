"""Hub-layout saving for cosmos-hf pipelines: model_index.json + a `pipeline.py` entry point.

diffusers resolves `"_class_name": ["pipeline", "ClassName"]` in model_index.json to `pipeline.py` next to it, so
`DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)` returns our class. The entry point only imports
the class from the installed `cosmos_hf` package (no model code is copied into the folder).
"""

import json
import os
from pathlib import Path

# diffusers loads a component recorded as ["cosmos_hf.pipelines.shared_weights", ...] (a vae whose weights are a
# reference to a tokenizer folder) only from a module already imported; every cosmos-hf pipeline imports this module
from . import shared_weights  # noqa: F401

ENTRY_POINT_NAME = "pipeline"

_ENTRY_POINT_TEMPLATE = '''"""Entry point for `DiffusionPipeline.from_pretrained(<this folder>, trust_remote_code=True)`.

The pipeline class lives in the `cosmos_hf` package (pip install cosmos-hf); this file only re-exports it.
"""

from {module} import {class_name}  # noqa: F401
'''


def write_entry_point(save_directory, pipeline_class) -> None:
    """Point model_index.json at `pipeline.py` and write that file (both replaced atomically)."""
    from ..utils import atomic_path

    save_directory = Path(save_directory)
    index_path = save_directory / "model_index.json"
    index = json.loads(index_path.read_text())
    index["_class_name"] = [ENTRY_POINT_NAME, pipeline_class.__name__]
    with atomic_path(index_path) as tmp:
        tmp.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    code = _ENTRY_POINT_TEMPLATE.format(module=pipeline_class.__module__, class_name=pipeline_class.__name__)
    with atomic_path(save_directory / f"{ENTRY_POINT_NAME}.py") as tmp:
        tmp.write_text(code)


def is_own_folder(path, pipeline_class) -> bool:
    """True when `path` is a local folder saved by `pipeline_class` (its entry point names that class)."""
    index_path = Path(path) / "model_index.json"
    if not index_path.is_file():
        return False
    try:
        name = json.loads(index_path.read_text()).get("_class_name")
    except (OSError, json.JSONDecodeError):
        return False
    return name == [ENTRY_POINT_NAME, pipeline_class.__name__] or name == pipeline_class.__name__


def load_own_folder(pipeline_class, path, **kwargs):
    """Load a folder saved by `pipeline_class` with that class, without executing the folder's pipeline.py.

    diffusers would route any folder with a `pipeline.py` through its remote-code loader; when the caller already
    names the class, we read model_index.json with the `_class_name` entry point hidden instead (a scoped patch of
    diffusers' resolver for the duration of the call; not thread-safe).
    """
    from diffusers.pipelines import pipeline_utils

    original = pipeline_utils._resolve_custom_pipeline_and_cls

    def resolve_without_entry_point(folder, config, custom_pipeline):
        if os.path.samefile(folder, path) and custom_pipeline is None:
            return None, None
        return original(folder, config, custom_pipeline)

    pipeline_utils._resolve_custom_pipeline_and_cls = resolve_without_entry_point
    try:
        return pipeline_utils.DiffusionPipeline.from_pretrained.__func__(pipeline_class, path, **kwargs)
    finally:
        pipeline_utils._resolve_custom_pipeline_and_cls = original


class HubLayoutMixin:
    """`save_pretrained` writes the `pipeline.py` entry point; `from_pretrained` loads our own folders with this class.

    Put it before `DiffusionPipeline` (or a diffusers pipeline) in the bases of every cosmos-hf pipeline.
    """

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`DiffusionPipeline.save_pretrained` plus the `pipeline.py` entry point for `trust_remote_code` loading.

        Our guardrail (`CosmosSafetyChecker`) is not a saved component: it holds no trained weights of its own, and
        loading builds the default one again (`safety_checker=None` means guardrails on). It is recorded as absent
        here, as diffusers would record it anyway, without diffusers' warning that it "cannot be saved".
        """
        from ..guardrails.checker import CosmosSafetyChecker

        checker = getattr(self, "safety_checker", None)
        unsaved = isinstance(checker, CosmosSafetyChecker)
        if unsaved:
            self.register_modules(safety_checker=None)
        try:
            super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            if unsaved:
                self.register_modules(safety_checker=checker)
        write_entry_point(save_directory, type(self))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a pipeline folder (or cached Hub id) into this class; our own folders load without remote code."""
        if kwargs.get("custom_pipeline") is None and is_own_folder(pretrained_model_name_or_path, cls):
            return load_own_folder(cls, pretrained_model_name_or_path, **kwargs)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
