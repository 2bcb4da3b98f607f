"""Small helpers shared across the package: atomic file writes and safe checkpoint reading."""

import argparse
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
            # os.replace cannot replace a non-empty folder: move the old one aside first and delete it only once
            # the new one is in place, so a failure at any point leaves one complete folder at `path`.
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old / path.name, path)
                shutil.rmtree(old, ignore_errors=True)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise


def check_output_dir(out_dir, overwrite: bool = False, inputs=()) -> Path:
    """Refuse an output folder whose replacement would lose data; returns it as an absolute path.

    Writers replace the whole folder (`atomic_path(..., is_dir=True)`), so: a non-empty folder needs
    `overwrite=True` (`--overwrite`); a folder that is or holds one of `inputs`, or the current working directory
    (`--out .`), is refused even then; an existing file at the path is refused.
    """
    out = Path(out_dir).expanduser().resolve()
    for item in inputs:
        item = Path(item).expanduser().resolve()
        if item == out or out in item.parents:
            raise ValueError(
                f"output folder {out} contains the input {item}; the output folder is replaced as a whole, "
                "so choose a folder outside the inputs"
            )
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise ValueError(
            f"output folder {out} is (or contains) the current working directory; the output folder is replaced as "
            "a whole, so choose a new subfolder"
        )
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(
            f"output folder {out} is not empty; pass --overwrite (overwrite=True in Python) to replace it: its "
            "contents are deleted once the new folder is complete"
        )
    return out


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

    The package's one lazy-import mechanism (every `cosmos_hf` package `__init__` uses it, like transformers'
    `_LazyModule`): `table` maps a public name to its submodule (relative to `package`), and an attribute that names
    a submodule (`cosmos_hf.sim.physics_scenes`) imports it, so `import cosmos_hf...` stays cheap and no package
    needs eager imports for attribute access. Usage, at the end of a package's `__init__.py`:

        __getattr__, __dir__ = lazy_exports(__name__, {"PublicName": "submodule", ...})
    """
    import importlib
    import importlib.util
    import sys

    def __getattr__(name):
        if name in table:
            value = getattr(importlib.import_module(f"{package}.{table[name]}"), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__


def _int_at_least(text, minimum: int, kind: str) -> int:
    """argparse type body: an integer >= `minimum` (its ArgumentTypeError message is what argparse prints)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind} (>= {minimum}), got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {kind} (>= {minimum}), got {value}")
    return value


def positive_int(text) -> int:
    """argparse type for counts that must be >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text) -> int:
    """argparse type for offsets and indices that must be >= 0."""
    return _int_at_least(text, 0, "a non-negative integer")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX, as oneDNN reports it). Elsewhere (e.g. an
    AVX2-only CPU) PyTorch emulates bf16 arithmetic, and a bf16 model runs slower than the same model in float32."""
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


_WARNED_EMULATED_BF16: set[str] = set()


def warn_if_emulated_bf16(dtype, device, what: str) -> bool:
    """Warn (once per `what` and process) that `what` runs in bfloat16 on a CPU without native bf16, where it is
    slower than float32 and only saves memory. Returns whether the condition holds (warned now or before)."""
    import warnings

    import torch

    if dtype != torch.bfloat16 or torch.device(device).type != "cpu" or cpu_has_native_bf16():
        return False
    if what not in _WARNED_EMULATED_BF16:
        _WARNED_EMULATED_BF16.add(what)
        capability = torch.backends.cpu.get_cpu_capability()
        warnings.warn(
            f"{what} runs in bfloat16 on a CPU without native bf16 (PyTorch CPU capability {capability}; no "
            "AVX512-BF16 or AMX): PyTorch emulates bf16 here, which is slower than float32 and only saves memory. "
            "Load it with torch_dtype=torch.float32 for speed.",
            UserWarning,
            stacklevel=3,
        )
    return True
