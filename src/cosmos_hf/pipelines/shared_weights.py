"""Pipeline folders that share the CV tokenizer's weights instead of copying them.

The bundled nano pipelines all use the nano CV4x8x8 tokenizer as their `vae` (or `decoder_vae`). Saved the diffusers
way, each folder would carry its own copy of `diffusion_pytorch_model.safetensors`. A `ReferencedAutoencoderKLCosmos`
component folder instead holds only `config.json`: diffusers' `AutoencoderKLCosmos` config plus

- `"weights_from_folder"`: the folder that holds the weights, relative to this component folder (e.g.
  `"../../cosmos-nano-tokenizer-cv4x8x8"`), and
- `"weights_sha256"`: the sha256 of that folder's `diffusion_pytorch_model.safetensors`,

and `from_pretrained` loads the weights from there after checking the hash (a clear error names both paths when the
folder or file is missing or the hash differs). model_index.json records the component as
`["cosmos_hf.pipelines.shared_weights", "ReferencedAutoencoderKLCosmos"]`, so `DiffusionPipeline.from_pretrained`
(with or without `trust_remote_code`) and our pipeline classes load it like any other component.

Saving a pipeline whose vae came from a reference writes a reference again when the referenced weight file is still
there, unchanged, and equal to the model's weights (the relative path is recomputed for the new location; copy the
referenced folder along when you move the saved pipeline elsewhere). Otherwise — the referenced folder is gone or the
weights were changed (fine-tuned) — it writes a full, self-contained copy, so a save never loses weights.

`link_bundled_vae(pipeline_folder)` (or `python -m cosmos_hf.pipelines.shared_weights FOLDER...`) turns the vae of
an already saved pipeline folder into such a reference.
"""

import argparse
import inspect
import json
import os
from pathlib import Path

import torch
from diffusers import AutoencoderKLCosmos

# `ModelMixin` must be an attribute of this module: diffusers records a pipeline component defined here as
# ["cosmos_hf.pipelines.shared_weights", "ReferencedAutoencoderKLCosmos"] and, to pick its save/load methods, looks
# the component's base classes up by name in this module
from diffusers import ModelMixin  # noqa: F401

from ..diffusion.text_encoding import _file_sha256

# config.json keys of a referencing component folder
WEIGHTS_FROM_FOLDER_KEY = "weights_from_folder"
WEIGHTS_SHA256_KEY = "weights_sha256"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
# the bundled nano CV tokenizer, a sibling of the pipeline folders in `pipelines/`
BUNDLED_CV_TOKENIZER = "cosmos-nano-tokenizer-cv4x8x8"
# pipeline components that hold the CV tokenizer in our pipelines (the AR pipeline's diffusion decoder has its own)
VAE_COMPONENTS = ("vae", "decoder_vae")
# how model_index.json names this module (spelled out: under `python -m` this module's __name__ is "__main__")
REFERENCED_VAE_MODULE = "cosmos_hf.pipelines.shared_weights"


def weights_sha256(weights_file) -> str:
    """sha256 of a weight file (cached per path, size and mtime: the pipelines check it on every load)."""
    weights_file = Path(weights_file)
    stat = weights_file.stat()
    return _file_sha256(str(weights_file.resolve()), stat.st_size, stat.st_mtime_ns)


def _read_config(component_folder: Path) -> dict | None:
    config_file = component_folder / "config.json"
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # not ours: let diffusers report the problem
    return config if isinstance(config, dict) else None


def resolve_weights_reference(component_folder, config: dict) -> Path:
    """The referenced weight file of a component folder, after checking that it exists and has the saved sha256."""
    component_folder = Path(component_folder)
    reference = config[WEIGHTS_FROM_FOLDER_KEY]
    expected = config.get(WEIGHTS_SHA256_KEY)
    if not isinstance(reference, str) or not isinstance(expected, str):
        raise ValueError(
            f"{component_folder / 'config.json'}: {WEIGHTS_FROM_FOLDER_KEY!r} and {WEIGHTS_SHA256_KEY!r} must both be "
            f"strings (a relative folder path and a sha256), got {reference!r} and {expected!r}"
        )
    weights_file = (component_folder / reference / WEIGHTS_NAME).resolve()
    if not weights_file.is_file():
        raise FileNotFoundError(
            f"the vae in {component_folder} takes its weights from {component_folder / reference} "
            f"({WEIGHTS_FROM_FOLDER_KEY!r} in its config.json), but {weights_file} does not exist; keep the referenced "
            f"folder next to the pipeline (e.g. copy the whole pipelines/ folder) or save the pipeline with a full vae"
        )
    actual = weights_sha256(weights_file)
    if actual != expected:
        raise ValueError(
            f"the vae in {component_folder} was saved as a reference to weights of sha256 {expected}, but "
            f"{weights_file} has sha256 {actual}; the referenced tokenizer changed since the pipeline was saved "
            f"(restore that tokenizer version, or save the pipeline again with the new one)"
        )
    return weights_file


class ReferencedAutoencoderKLCosmos(AutoencoderKLCosmos):
    r"""diffusers' `AutoencoderKLCosmos` whose weights may live in another folder (a tokenizer folder next to the
    pipeline), so that pipeline folders do not each carry a copy of them. See the module docstring for the format.

    `from_pretrained` on a referencing folder builds the model from the folder's config and loads the referenced,
    sha256-checked weights; on any other folder it is `AutoencoderKLCosmos.from_pretrained`.
    """

    # the resolved weight file this model was loaded from (None when loaded from a full folder or built in code)
    _referenced_weights: Path | None = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "ReferencedAutoencoderKLCosmos":
        """Load a referencing folder (weights from the referenced folder, sha256-checked), or a full folder.

        Keyword arguments are those of `ModelMixin.from_pretrained` (what diffusers passes when it loads a pipeline
        component); for a referencing folder `torch_dtype` and a single-device `device_map` apply, and the ones about
        weight files (`variant`, `use_safetensors`, ...) do not: the reference names exactly one file.
        """
        folder = Path(pretrained_model_name_or_path)
        component_folder = folder / (kwargs.get("subfolder") or "")
        config = _read_config(component_folder) if folder.is_dir() else None
        if config is None or WEIGHTS_FROM_FOLDER_KEY not in config:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

        weights_file = resolve_weights_reference(component_folder, config)
        torch_dtype = kwargs.get("torch_dtype")
        device_map = kwargs.get("device_map")
        if device_map is not None and not isinstance(device_map, (str, torch.device, int)):
            raise ValueError(
                f"a vae loaded from a weights reference ({component_folder}) supports a single-device device_map "
                f"(e.g. 'cuda'), got {device_map!r}"
            )
        if kwargs.get("quantization_config") is not None:
            raise ValueError(
                f"quantization is not supported for a vae loaded from a weights reference ({component_folder})"
            )

        from safetensors.torch import load_file

        architecture = {k: v for k, v in config.items() if k not in (WEIGHTS_FROM_FOLDER_KEY, WEIGHTS_SHA256_KEY)}
        model = cls.from_config(architecture)
        # strict: a reference to a tokenizer of another architecture must fail loudly, not load half the weights
        model.load_state_dict(load_file(str(weights_file)), strict=True)
        if device_map is not None and device_map not in ("auto", "balanced", "balanced_low_0", "sequential"):
            model.to(device_map)
        if torch_dtype is not None:
            model.to(torch_dtype)
        model._referenced_weights = weights_file
        model.register_to_config(_name_or_path=str(pretrained_model_name_or_path))
        return model.eval()

    def save_pretrained(self, save_directory, is_main_process: bool = True, **kwargs) -> None:
        """A reference again when this model's weights still equal the referenced file's, else a full folder.

        Arguments are those of `ModelMixin.save_pretrained`; for a reference, the ones about weight files do not
        apply (there is none).
        """
        weights_file = self._referenced_weights
        if weights_file is None or not weights_file.is_file() or not self._weights_equal(weights_file):
            # built in code, referenced folder gone, or fine-tuned: a self-contained folder keeps the weights
            super().save_pretrained(save_directory, is_main_process=is_main_process, **kwargs)
            return
        if kwargs.get("push_to_hub"):
            raise ValueError("a vae saved as a weights reference cannot be pushed alone; push the pipelines/ folder")
        if not is_main_process:
            return
        save_directory = Path(save_directory)
        if save_directory.is_file():
            raise ValueError(f"save_directory {save_directory} is a file, expected a folder")
        save_directory.mkdir(parents=True, exist_ok=True)
        write_weights_reference(save_directory, dict(self.config), weights_file.parent)

    @torch.no_grad()
    def _weights_equal(self, weights_file: Path) -> bool:
        from safetensors import safe_open

        with safe_open(str(weights_file), framework="pt") as file:
            state = self.state_dict()
            if set(file.keys()) != set(state):
                return False
            for name, tensor in state.items():
                saved = file.get_tensor(name)
                if saved.shape != tensor.shape or not torch.equal(saved.to(tensor.dtype), tensor.detach().cpu()):
                    return False
        return True


def write_weights_reference(component_folder, config: dict, weights_folder) -> None:
    """Write `component_folder/config.json` as a reference to `weights_folder` and remove the folder's weight files.

    `config` is the AutoencoderKLCosmos config to record (bookkeeping keys such as `_name_or_path` are dropped).
    """
    from ..utils import atomic_path

    component_folder = Path(component_folder)
    weights_folder = Path(weights_folder)
    config = {k: v for k, v in config.items() if k not in ("_name_or_path", "_use_default_values")}
    config["_class_name"] = ReferencedAutoencoderKLCosmos.__name__
    relative = os.path.relpath(weights_folder.resolve(), component_folder.resolve())
    config[WEIGHTS_FROM_FOLDER_KEY] = Path(relative).as_posix()
    config[WEIGHTS_SHA256_KEY] = weights_sha256(weights_folder / WEIGHTS_NAME)
    with atomic_path(component_folder / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    # weight files of a full save into this folder would only mislead (and bloat git): the config says where they are
    for stale in component_folder.iterdir():
        if stale.is_file() and stale.name.startswith("diffusion_pytorch_model") and stale.name != "config.json":
            stale.unlink()


def _architecture_keys() -> list[str]:
    """The config keys that define an AutoencoderKLCosmos (its constructor arguments)."""
    return [name for name in inspect.signature(AutoencoderKLCosmos.__init__).parameters if name != "self"]


def link_bundled_vae(pipeline_folder, tokenizer_folder=None) -> list[str]:
    """Turn a saved pipeline folder's `vae/` (and/or `decoder_vae/`) into a reference to the CV tokenizer folder.

    `tokenizer_folder` defaults to `cosmos-nano-tokenizer-cv4x8x8` next to `pipeline_folder` (the `pipelines/`
    layout). Each component must hold exactly the tokenizer's weights (same names, shapes and values) and have the
    same architecture; otherwise a ValueError says which, and nothing is changed. model_index.json is updated to
    `ReferencedAutoencoderKLCosmos`. Returns the linked component names. A component that is already a reference
    (to weights of the same sha256) is pointed at `tokenizer_folder` again, which repairs the relative path of a
    pipeline that was saved from a bundled one somewhere else (say `outputs/`) and then copied into `pipelines/`.
    """
    from safetensors.torch import load_file

    from ..utils import atomic_path

    pipeline_folder = Path(pipeline_folder)
    index_path = pipeline_folder / "model_index.json"
    if not index_path.is_file():
        raise ValueError(f"{pipeline_folder} is not a saved pipeline folder (no model_index.json)")
    if tokenizer_folder is None:
        tokenizer_folder = pipeline_folder.parent / BUNDLED_CV_TOKENIZER
    tokenizer_folder = Path(tokenizer_folder)
    tokenizer_weights = tokenizer_folder / WEIGHTS_NAME
    tokenizer_config = _read_config(tokenizer_folder)
    if not tokenizer_weights.is_file() or tokenizer_config is None:
        raise ValueError(f"{tokenizer_folder} is not a CV tokenizer folder (needs config.json and {WEIGHTS_NAME})")
    if tokenizer_config.get("legacy_mode"):
        raise ValueError(f"{tokenizer_folder} has the legacy decoder layout, which AutoencoderKLCosmos cannot load")
    index = json.loads(index_path.read_text())
    components = [name for name in VAE_COMPONENTS if isinstance(index.get(name), list) and index[name][0] is not None]
    if not components:
        raise ValueError(f"{index_path} has no vae component (looked for {', '.join(VAE_COMPONENTS)})")

    reference_state = load_file(str(tokenizer_weights))
    # check every component before changing any, so that a bad folder is left as it was
    plans = []
    for name in components:
        component_folder = pipeline_folder / name
        config = _read_config(component_folder)
        if config is None:
            raise ValueError(f"{component_folder} has no readable config.json")
        differing = sorted(k for k in _architecture_keys() if config.get(k) != tokenizer_config.get(k))
        if differing:
            raise ValueError(
                f"{component_folder} and {tokenizer_folder} differ in config {differing}; not the same tokenizer"
            )
        if WEIGHTS_FROM_FOLDER_KEY in config:
            # already a reference (e.g. a pipeline saved elsewhere from a bundled one, then copied into pipelines/):
            # point it at this tokenizer folder if that holds the very weights it was saved with
            if config.get(WEIGHTS_SHA256_KEY) != weights_sha256(tokenizer_weights):
                raise ValueError(
                    f"{component_folder} references weights of sha256 {config.get(WEIGHTS_SHA256_KEY)}, but "
                    f"{tokenizer_weights} has sha256 {weights_sha256(tokenizer_weights)}; not the same tokenizer"
                )
            plans.append((name, component_folder, config))
            continue
        weights = component_folder / WEIGHTS_NAME
        if not weights.is_file():
            raise ValueError(f"{component_folder} has no {WEIGHTS_NAME} to replace by a reference")
        state = load_file(str(weights))
        if set(state) != set(reference_state) or any(not torch.equal(state[k], reference_state[k]) for k in state):
            raise ValueError(f"the weights in {weights} differ from {tokenizer_weights}; not the same tokenizer")
        plans.append((name, component_folder, config))

    for name, component_folder, config in plans:
        write_weights_reference(component_folder, config, tokenizer_folder)
        index[name] = [REFERENCED_VAE_MODULE, ReferencedAutoencoderKLCosmos.__name__]
    if plans:
        with atomic_path(index_path) as tmp:
            tmp.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return components


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cosmos_hf.pipelines.shared_weights",
        description="Replace the vae weights of saved pipeline folders by a sha256-checked reference to the CV "
        f"tokenizer folder (default: {BUNDLED_CV_TOKENIZER} next to each pipeline folder).",
    )
    parser.add_argument("pipeline_folders", nargs="+", type=Path)
    parser.add_argument("--tokenizer-folder", type=Path, default=None)
    args = parser.parse_args(argv)
    for folder in args.pipeline_folders:
        linked = link_bundled_vae(folder, args.tokenizer_folder)
        print(f"{folder}: {', '.join(linked)} -> reference")


if __name__ == "__main__":
    # run the imported module's main, so that the class written to model_index.json is the importable one
    from cosmos_hf.pipelines.shared_weights import main as imported_main

    imported_main()
