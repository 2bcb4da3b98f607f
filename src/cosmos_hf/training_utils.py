"""Shared plumbing of the `training/*.py` scripts: YAML configs with `--set` overrides, and accelerate checkpoints
that are written atomically (a checkpoint folder appears complete, with `train_state.json`, or not at all)."""

import copy
import json
import os
import re
import shutil
from pathlib import Path

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def merge_config(base: dict, update: dict) -> dict:
    """Recursive dict merge; `update` wins. Neither input is modified."""
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml_config(path, defaults: dict, overrides=(), strict: bool = True) -> dict:
    """`defaults` merged with the YAML file at `path`, then `key.path=value` overrides (values parsed as YAML).

    With `strict`, top-level keys that `defaults` does not have are refused by name.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    user = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(user) - set(defaults))
    if strict and unknown:
        raise ValueError(f"unknown top-level config keys {unknown}; valid: {sorted(defaults)}")
    config = merge_config(defaults, user)
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"--set expects key.path=value, got {item!r}")
        key, value = item.split("=", 1)
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return config


def list_checkpoints(output_dir: Path):
    """Complete checkpoints in `output_dir` as sorted `(step, path)` pairs."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = CHECKPOINT_RE.match(path.name)
        if match and (path / "train_state.json").is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def resolve_resume_checkpoint(resume_from_checkpoint, output_dir: Path):
    """`--resume_from_checkpoint` ('latest' or a folder) -> a complete checkpoint folder, or None for 'latest' when
    there is none yet."""
    if resume_from_checkpoint == "latest":
        found = list_checkpoints(output_dir)
        return found[-1][1] if found else None
    path = Path(resume_from_checkpoint)
    if not (path / "train_state.json").is_file():
        raise ValueError(f"{path} is not a complete checkpoint folder (no train_state.json)")
    return path


def checkpoint_step(path: Path) -> int:
    return int(json.loads((Path(path) / "train_state.json").read_text())["global_step"])


def resume_training_state(accelerator, resume_from_checkpoint, output_dir: Path) -> int:
    """Load the accelerate state named by `--resume_from_checkpoint` (if any); returns the step to continue from."""
    if not resume_from_checkpoint:
        return 0
    path = resolve_resume_checkpoint(resume_from_checkpoint, output_dir)
    if path is None:
        accelerator.print(f"no checkpoint in {output_dir}; starting from step 0")
        return 0
    accelerator.load_state(str(path))
    step = checkpoint_step(path)
    accelerator.print(f"resumed from {path} at step {step}")
    return step


def save_checkpoint(accelerator, output_dir: Path, step: int, limit: int | None):
    """`accelerator.save_state` into `checkpoint-<step>` via a temporary folder; keep the newest `limit`."""
    output_dir = Path(output_dir)
    final, tmp = output_dir / f"checkpoint-{step}", output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "train_state.json").write_text(json.dumps({"global_step": step}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if limit:
            for _, old in list_checkpoints(output_dir)[:-limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
