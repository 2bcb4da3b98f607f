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


def load_pipeline(path, trust_remote_code: bool = False, **kwargs):
    """`DiffusionPipeline.from_pretrained(path, ...)` for any pipeline folder, without diffusers' remote-code copy for
    ours: a folder whose `pipeline.py` is exactly our entry point for a cosmos-hf class loads with that class (what
    executing the entry point would give), and nothing is executed or copied.

    Why: for every load of a folder with a `pipeline.py`, diffusers copies that file to one fixed path of its modules
    cache (`diffusers_modules/local/pipeline.py`, not atomically) and then imports it, so two processes loading such
    folders at once can import a half-written copy ("module 'diffusers_modules.local.pipeline' has no attribute
    'CosmosVideo2WorldPipeline'"; seen with two `cosmos-hf eval physics` runs started together). Other folders go
    to `DiffusionPipeline.from_pretrained` with `trust_remote_code` as given.
    """
    from diffusers import DiffusionPipeline

    pipeline_class = own_entry_point_class(path)
    if pipeline_class is not None:
        return pipeline_class.from_pretrained(path, **kwargs)
    return DiffusionPipeline.from_pretrained(str(path), trust_remote_code=trust_remote_code, **kwargs)


def own_entry_point_class(path):
    """The cosmos-hf pipeline class whose entry point `path/pipeline.py` is, byte for byte; None otherwise."""
    from .. import pipelines

    path = Path(path)
    try:
        name = json.loads((path / "model_index.json").read_text()).get("_class_name")
        code = (path / f"{ENTRY_POINT_NAME}.py").read_text()
    except (OSError, ValueError):
        return None
    if not (isinstance(name, list) and len(name) == 2 and name[0] == ENTRY_POINT_NAME
            and name[1] in pipelines.__all__):
        return None
    pipeline_class = getattr(pipelines, name[1])
    if not (isinstance(pipeline_class, type) and issubclass(pipeline_class, HubLayoutMixin)):
        return None
    expected = _ENTRY_POINT_TEMPLATE.format(module=pipeline_class.__module__, class_name=pipeline_class.__name__)
    return pipeline_class if code == expected else None


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
        saved = own_entry_point_class(pretrained_model_name_or_path)
        if (saved is not None and not issubclass(cls, saved) and kwargs.get("custom_pipeline") is None
                and not kwargs.get("trust_remote_code")):
            # a folder of another cosmos-hf pipeline (say a Video2World folder given as a diffusion decoder): diffusers
            # would only ask for trust_remote_code, which then loads the folder's class, not this one
            raise ValueError(
                f"{pretrained_model_name_or_path} holds a {saved.__name__} (its model_index.json), not a "
                f"{cls.__name__}; give a {cls.__name__} folder, or load this one with {saved.__name__}.from_pretrained "
                "or cosmos_hf.pipelines.load_pipeline"
            )
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
