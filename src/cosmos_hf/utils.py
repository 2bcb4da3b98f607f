"""Small helpers shared across the package: atomic file writes and safe checkpoint reading."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, is_dir: bool = False):
    """Yield a temporary sibling path; on success rename it onto `path`, on error remove it.

    Nothing half-written is ever left at `path`: readers see the old file (or none) until the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
    # mkstemp/mkdtemp create 0600/0700 entries; give the result the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, (0o777 if is_dir else 0o666) & ~umask)
    try:
        yield tmp
        if is_dir and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise


def load_state_dict_file(path, allow_pickle: bool = False):
    """Read a plain state dict from .safetensors, or from .pt/.pth/.bin with `torch.load(weights_only=True)`.

    Unpickling arbitrary objects executes code, so it is refused unless `allow_pickle=True`.
    Corrupt or truncated files raise a ValueError that names the file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint file is empty: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises its own error types for truncation / bad headers
            raise ValueError(f"cannot read safetensors checkpoint {path} (corrupt or truncated?): {err}") from err
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=not allow_pickle)
    except Exception as err:
        hint = "" if allow_pickle else " (only plain tensors are accepted; pass allow_pickle=True for trusted files)"
        raise ValueError(f"cannot read checkpoint {path}{hint}: {err}") from err
    for key in ("state_dict", "model", "ema"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds a {type(state).__name__}, expected a state dict")
    return state


def lazy_exports(package: str, table: dict):
    """`__getattr__` and `__dir__` for a package whose public names live in submodules imported on first use.

    `table` maps a public name to its submodule (relative to `package`); keeps `import cosmos_hf...` cheap.
    """
    import importlib
    import sys

    def __getattr__(name):
        if name in table:
            value = getattr(importlib.import_module(f"{package}.{table[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
