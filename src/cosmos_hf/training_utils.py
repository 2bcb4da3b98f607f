"""Shared plumbing of the `training/*.py` scripts: YAML configs checked against each script's defaults (with
`--set key.path=value` overrides), one accelerator set-up (`setup_accelerator`: accelerate trackers with a
`train_log.jsonl` writer, seeds, config.yaml), the learning-rate schedule (`training.lr_scheduler`), a data order that
a resumed run can recompute, and checkpoints that hold no pickle. Their data (datasets, clip streams, token and latent
caches) is `cosmos_hf.data.training_data`.

A checkpoint folder `checkpoint-<step>/` holds safetensors for tensors and JSON for everything else:

    model.safetensors, model_1.safetensors, ...     model weights (plain state dicts, loadable by anyone)
    optimizer.json + optimizer.safetensors, ...     optimizer state (JSON skeleton + the tensors it names)
    scheduler.json, ...                             learning-rate scheduler state
    <name>.json + <name>.safetensors                other state, e.g. `ema` (diffusers' EMAModel)
    random_states_<rank>.json + .safetensors        Python, NumPy, torch (CPU and CUDA) RNG states of each process
    train_state.json                                step, data position (epoch, batches done), format tag

Resuming reads only these files, never a pickle (accelerate's `save_state` writes `optimizer.bin`,
`random_states_*.pkl` and `custom_checkpoint_*.pkl`, which unpickle on load; files like those are ignored). A file
that is missing or unreadable is an error naming it. The folder is written under a temporary name and renamed, so a
checkpoint appears complete, with `train_state.json`, or not at all. Model and optimizer states go through
`torch.distributed.checkpoint.state_dict` as full (gathered) state dicts, so DDP and FSDP runs write the same files
(tested: one process and 2-process DDP on the CPU; FSDP untested here).
"""

import contextlib
import copy
import json
import math
import os
import random
import re
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from accelerate.tracking import GeneralTracker, on_main_process
from torch.utils.data import Sampler

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
CHECKPOINT_FORMAT = "cosmos-hf-training-checkpoint/1"  # written to train_state.json; older (pickle) folders lack it


# ---------------------------------------------------------------------------------------------------------- config
def merge_config(base: dict, update: dict) -> dict:
    """Recursive dict merge; `update` wins. Neither input is modified."""
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def check_known_keys(values: dict, defaults: dict, source: str, prefix: str = ""):
    """Refuse keys of `values` that `defaults` does not have, naming the valid ones. A section whose default is an
    empty dict or None is free-form (checked by the code that reads it, e.g. `objective` by EDMConfig)."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in defaults:
            valid = ", ".join(sorted(defaults))
            where = f"section `{prefix[:-1]}`" if prefix else "the top level"
            raise ValueError(f"unknown config key `{name}` in {source}; valid keys at {where}: {valid}")
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict) and default:
            check_known_keys(value, default, source, prefix=f"{name}.")
        # a number where the default is one (None stays allowed: "unset"); catches e.g. `lr: "1e-3"`, `steps: yes`
        number_default = isinstance(default, (int, float)) and not isinstance(default, bool)
        if number_default and value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"config key `{name}` in {source} must be a number (default {default!r}), "
                             f"got {value!r}")


# YAML 1.1 (PyYAML's dialect) reads `1e-3` and `3e-4` as *strings*: only numbers with a dot (`1.0e-3`) are floats.
# A learning rate written the way everyone writes it would reach the optimizer as text, so configs and `--set`
# values are read with YAML 1.2's float rule added (ints, `.5`, `1.`, `1e-3`, `-2E+4` and the dotted forms).
_YAML12_FLOAT = r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"


def load_yaml(text: str):
    """`yaml.safe_load(text)`, except that exponent floats without a dot (`1e-3`) are floats, as in YAML 1.2."""
    import yaml

    class ConfigLoader(yaml.SafeLoader):
        pass

    # appended after SafeLoader's own resolvers, so plain ints still resolve as ints
    ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(_YAML12_FLOAT), list("-+.0123456789"))
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 (a SafeLoader subclass: no object construction)


def load_config(path, defaults: dict, overrides=(), renamed_sections: dict | None = None,
                renamed_keys: dict | None = None) -> dict:
    """`defaults` merged with the YAML file at `path`, then `key.path=value` overrides (`--set`, values parsed as YAML).

    Every key, in the file or in an override, must exist in `defaults` (free-form sections excepted, see
    `check_known_keys`): a misspelt key is an error naming the valid ones, not a silently ignored setting.
    `renamed_sections` maps old section names to new ones (e.g. {"train": "training"}), `renamed_keys` old dotted keys
    to what replaced them (e.g. {"training.weight_decay": "training.adam_weight_decay"}); an old name is refused with
    the new one in the message.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    user = load_yaml(path.read_text()) or {}
    if not isinstance(user, dict):
        raise ValueError(f"config file {path} must hold a mapping of sections, got {type(user).__name__}")
    parsed_overrides = []
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"--set expects key.path=value, got {item!r}")
        key, value = item.split("=", 1)
        parsed_overrides.append((key.strip().split("."), load_yaml(value)))
    for old, new in (renamed_sections or {}).items():
        used_in = [f"{path}"] if old in user else []
        used_in += [f"--set {'.'.join(parts)}=..." for parts, _ in parsed_overrides if parts[0] == old]
        if used_in:
            raise ValueError(f"config section `{old}:` is now called `{new}:` (the name every training script uses); "
                             f"rename it in {', '.join(used_in)}")
    for old, new in (renamed_keys or {}).items():
        parts = old.split(".")
        node = user
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        used_in = [f"{path}"] if isinstance(node, dict) and parts[-1] in node else []
        used_in += [f"--set {old}=..." for keys, _ in parsed_overrides if keys == parts]
        if used_in:
            raise ValueError(f"config key `{old}` is now `{new}` (the name every training script uses); change it in "
                             f"{', '.join(used_in)}")
    check_known_keys(user, defaults, str(path))
    config = merge_config(defaults, user)
    for parts, value in parsed_overrides:
        nested = value
        for part in reversed(parts):
            nested = {part: nested}
        check_known_keys(nested, defaults, f"--set {'.'.join(parts)}")
        node = config
        for index, part in enumerate(parts[:-1]):
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise ValueError(f"--set {'.'.join(parts)}: `{'.'.join(parts[: index + 1])}` is a value, not a section")
            node = node[part]
        node[parts[-1]] = value
    if isinstance(defaults.get("training"), dict) and isinstance(config.get("training"), dict):
        check_training_counts(config["training"], defaults["training"])
    return config


# `training.<key>`: (smallest valid value, whether null is allowed, what the key means). Checked when the config is
# read: a 0 or negative count used to fail only after the data were prepared (`batch_size: 0`, `log_every: 0`: a
# ZeroDivisionError), or silently lose work (`checkpoints_total_limit: -1` deleted every checkpoint as it was
# written); `max_train_steps: 1e4` (a float in YAML 1.2) failed in `range()`.
TRAINING_COUNTS = {
    "max_train_steps": (1, False, "optimizer steps"),
    "batch_size": (1, False, "clips per process and micro-batch"),
    "gradient_accumulation_steps": (1, False, "micro-batches per optimizer step"),
    "lr_warmup_steps": (0, True, "warm-up steps"),
    "checkpointing_steps": (0, True, "0 or null: only at the end"),
    "checkpoints_total_limit": (0, True, "0 or null: keep every checkpoint"),
    "log_every": (0, True, "0 or null: the first and last step only"),
    "validation_steps": (0, True, "0 or null: only at the end"),
    "freeze_encoder_steps": (0, True, "steps"),
}


def check_training_counts(training: dict, defaults: dict):
    """Refuse a `training:` count (TRAINING_COUNTS, where `defaults` has the key) that is not a whole number in its
    range, naming the key and the range; a whole float (`1e4`, which YAML 1.2 reads as 10000.0) becomes the int."""
    for key, (minimum, nullable, meaning) in TRAINING_COUNTS.items():
        if key not in defaults or key not in training:
            continue
        value = training[key]
        if value is None and nullable:
            continue
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = training[key] = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            allowed = f"an integer >= {minimum}" + (" or null" if nullable else "")
            raise ValueError(f"training.{key} must be {allowed} ({meaning}), got {value!r}")


# ---------------------------------------------------------------------------------------------------------- state files
def _to_json_tree(value, tensors: dict, where: str):
    """JSON-able skeleton of a nested state; tensors (and NumPy arrays) go to `tensors` under generated names."""
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}
    if isinstance(value, np.ndarray):
        name = f"t{len(tensors)}"
        tensors[name] = torch.from_numpy(value.astype(np.int64) if value.dtype == np.uint32 else value.copy())
        return {"__ndarray__": name, "dtype": str(value.dtype)}
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json_tree(v, tensors, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_to_json_tree(v, tensors, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _to_json_tree(v, tensors, f"{where}.{k}") for k, v in value.items()}
        return {"__items__": [[_to_json_tree(k, tensors, where), _to_json_tree(v, tensors, f"{where}[{k!r}]")]
                              for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} at {where} in a checkpoint (tensors, numbers, strings, "
                    "lists, tuples and dicts only)")


def _from_json_tree(value, tensors: dict, source: str):
    if isinstance(value, list):
        return [_from_json_tree(v, tensors, source) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value or "__ndarray__" in value:
        name = value.get("__tensor__", value.get("__ndarray__"))
        if name not in tensors:
            raise ValueError(f"{source} names tensor {name!r}, which its .safetensors file does not hold")
        if "__tensor__" in value:
            return tensors[name]
        return tensors[name].numpy().astype(value["dtype"])
    if "__tuple__" in value:
        return tuple(_from_json_tree(v, tensors, source) for v in value["__tuple__"])
    if "__items__" in value:
        return {_from_json_tree(k, tensors, source): _from_json_tree(v, tensors, source) for k, v in value["__items__"]}
    return {k: _from_json_tree(v, tensors, source) for k, v in value.items()}


def save_state_files(state, folder: Path, name: str):
    """Write a nested state (e.g. an optimizer's `state_dict()`) as `<name>.json` + `<name>.safetensors`."""
    from safetensors.torch import save_file

    tensors = {}
    tree = _to_json_tree(state, tensors, name)
    (Path(folder) / f"{name}.json").write_text(json.dumps({"num_tensors": len(tensors), "state": tree}))
    if tensors:
        save_file(tensors, str(Path(folder) / f"{name}.safetensors"))


def _read_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ValueError(f"checkpoint file {path} is missing; the checkpoint is incomplete or from another setup")
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(f"checkpoint file {path} is corrupt or not a safetensors file ({error})") from error


def load_state_files(folder: Path, name: str):
    """Read what `save_state_files` wrote; a missing or unreadable file is a ValueError naming it."""
    folder = Path(folder)
    json_path = folder / f"{name}.json"
    if not json_path.is_file():
        raise ValueError(f"checkpoint file {json_path} is missing; the checkpoint is incomplete or from another setup")
    try:
        content = json.loads(json_path.read_text())
        tree, num_tensors = content["state"], int(content["num_tensors"])
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"checkpoint file {json_path} is corrupt ({error!r})") from error
    tensors = _read_safetensors(folder / f"{name}.safetensors") if num_tensors else {}
    try:
        return _from_json_tree(tree, tensors, str(json_path))
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"checkpoint file {json_path} is corrupt ({error!r})") from error


# ---------------------------------------------------------------------------------------------------------- RNG
def rng_state() -> dict:
    """Every RNG a training step may draw from: Python's `random`, NumPy's global one, torch CPU and CUDA."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, source: str = "RNG state"):
    try:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if torch.cuda.is_available() and "cuda" in state:
            torch.cuda.set_rng_state_all(state["cuda"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{source} is corrupt: cannot restore the random number generators ({error!r})") from error


@contextlib.contextmanager
def fork_rng_state():
    """What runs inside (e.g. validation sampling) leaves every RNG as it found it, so training with and without it
    (or resumed around it) draws the same numbers."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


# ---------------------------------------------------------------------------------------------------------- data order
class EpochShuffleSampler(Sampler):
    """This process's share of epoch `epoch`'s shuffled order, computed from `(seed, epoch)` alone (not from the
    global RNG), so a resumed run recomputes it and skips the `skip_batches` batches it already trained on.

    Like `DistributedSampler(drop_last=True)`: the permutation is dealt round-robin to `num_processes`, and the
    samples that do not fill a whole batch are left out of the epoch. Fewer samples than one batch per process is an
    error (a loader with no batch would loop forever).

    `weights` (one non-negative number per sample, e.g. from `data.scene_weights`): an epoch is instead
    `num_samples` draws with replacement, sample i with probability `weights[i] / sum(weights)`, from the same
    `(seed, epoch)` generator, so a resumed run draws the same epoch.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, epoch: int = 0, skip_batches: int = 0,
                 num_processes: int = 1, process_index: int = 0, weights=None):
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float64)
            if weights.shape != (num_samples,):
                raise ValueError(f"sampling weights must be one per sample ({num_samples}), got shape "
                                 f"{tuple(weights.shape)}")
            if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
                raise ValueError("sampling weights must be finite and >= 0, with a positive sum")
        self.weights = weights
        if num_samples < batch_size * num_processes:
            per = f" x {num_processes} processes = {batch_size * num_processes}" if num_processes > 1 else ""
            raise ValueError(f"the training data has {num_samples} clips, fewer than one batch: training.batch_size "
                             f"{batch_size}{per}; add clips (e.g. data.num_clips) or lower training.batch_size")
        self.num_samples, self.batch_size, self.seed, self.epoch = num_samples, batch_size, seed, epoch
        self.num_processes, self.process_index = num_processes, process_index
        self.batches_per_epoch = num_samples // num_processes // batch_size
        if skip_batches < 0:
            raise ValueError(f"skip_batches must be >= 0, got {skip_batches}")
        self.skip_batches = min(skip_batches, self.batches_per_epoch)  # a resume on more processes may overshoot

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.weights is None:
            order = torch.randperm(self.num_samples, generator=generator)
        else:
            order = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)
        share = order[self.process_index :: self.num_processes][: self.batches_per_epoch * self.batch_size]
        return iter(share[self.skip_batches * self.batch_size :].tolist())

    def __len__(self):
        return (self.batches_per_epoch - self.skip_batches) * self.batch_size


# ---------------------------------------------------------------------------------------------------------- checkpoints
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


def check_no_later_checkpoints(output_dir: Path, resume_from_checkpoint=None):
    """Refuse a run whose `output_dir` holds checkpoints later than the step it starts from (0, or the checkpoint
    `--resume_from_checkpoint` names): they belong to another run (a fresh start in a used folder, or a resume from
    an earlier checkpoint), and mixing them loses work: `checkpoints_total_limit` counted them as newer and deleted the
    new checkpoints as they were written, and a later `--resume_from_checkpoint latest` resumed the other run. Call it
    before anything is written to `output_dir` (config.yaml included)."""
    start = 0
    if resume_from_checkpoint:
        path = resolve_resume_checkpoint(resume_from_checkpoint, output_dir)
        start = checkpoint_step(path) if path is not None else 0
    later = [path.name for step, path in list_checkpoints(output_dir) if step > start]
    if later:
        what = f"resumes from step {start}" if start else "starts at step 0"
        raise ValueError(f"{output_dir} holds {', '.join(later)}, later than this run, which {what}: its checkpoints "
                         "would be mixed with them (checkpoints_total_limit would delete the new ones, "
                         "--resume_from_checkpoint latest would pick the old ones). Resume from the latest one "
                         "(--resume_from_checkpoint latest), move them out, or choose another output_dir")


def read_train_state(path: Path) -> dict:
    state_path = Path(path) / "train_state.json"
    try:
        state = json.loads(state_path.read_text())
        step = int(state["global_step"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ValueError(f"checkpoint file {state_path} is corrupt ({error!r})") from error
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (an older accelerate `save_state` folder, "
                         "whose optimizer/RNG/EMA files are pickles): it is not loaded, because unpickling runs "
                         "code. Start a new run, or resume from a checkpoint written by this version")
    if step < 0:
        raise ValueError(f"checkpoint file {state_path} is corrupt (global_step {step})")
    return {**state, "global_step": step}


def checkpoint_step(path: Path) -> int:
    return read_train_state(path)["global_step"]


def _suffix(index: int) -> str:
    return "" if index == 0 else f"_{index}"


def _unwrap_optimizer(optimizer):
    return getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps the torch one


def save_checkpoint(accelerator, output_dir: Path, step: int, limit: int | None, *, models=(), optimizers=(),
                    schedulers=(), objects=None, train_state=None):
    """Write `checkpoint-<step>` (see the module docstring) via a temporary folder; keep the newest `limit`.

    `optimizers[i]` updates the parameters of `models[i]`; `objects` maps a file name to anything with
    `state_dict()`/`load_state_dict()` (e.g. {"ema": ema}); `train_state` is extra JSON (e.g. the data position).
    Every process calls this (gathering sharded states is collective).
    """
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    output_dir = Path(output_dir)
    final, tmp = output_dir / f"checkpoint-{step}", output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    for index, model in enumerate(models):
        state = get_model_state_dict(model, options=options)
        if accelerator.is_main_process:  # copies: tied weights share storage, which safetensors refuses
            save_file({k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()},
                      str(tmp / f"model{_suffix(index)}.safetensors"))
    for index, optimizer in enumerate(optimizers):
        state = get_optimizer_state_dict(models[index], _unwrap_optimizer(optimizer), options=options)
        if accelerator.is_main_process:
            save_state_files(state, tmp, f"optimizer{_suffix(index)}")
    if accelerator.is_main_process:
        for index, scheduler in enumerate(schedulers):
            save_state_files(scheduler.state_dict(), tmp, f"scheduler{_suffix(index)}")
        for name, obj in (objects or {}).items():
            save_state_files(obj.state_dict(), tmp, name)
    save_state_files(rng_state(), tmp, f"random_states_{accelerator.process_index}")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        info = {"format": CHECKPOINT_FORMAT, "global_step": step, "num_processes": accelerator.num_processes,
                **(train_state or {})}
        (tmp / "train_state.json").write_text(json.dumps(info))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if limit:
            # this run's checkpoints only: a later one belongs to another run (the scripts refuse to start beside
            # one, `check_no_later_checkpoints`); counted as newer, it made this delete the checkpoint just written
            line = [path for saved_step, path in list_checkpoints(output_dir) if saved_step <= step]
            for old in line[:-limit]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def resume_training_state(accelerator, resume_from_checkpoint, output_dir: Path, *, models=(), optimizers=(),
                          schedulers=(), objects=None) -> dict:
    """Load the checkpoint named by `--resume_from_checkpoint` (if any) into the given objects (same arguments as
    `save_checkpoint`) and restore every process's RNG states. Returns the checkpoint's `train_state.json`
    ({"global_step": 0} when there is nothing to resume)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

    if not resume_from_checkpoint:
        return {"global_step": 0}
    path = resolve_resume_checkpoint(resume_from_checkpoint, output_dir)
    if path is None:
        accelerator.print(f"no checkpoint in {output_dir}; starting from step 0")
        return {"global_step": 0}
    state = read_train_state(path)
    saved_processes = int(state.get("num_processes", accelerator.num_processes))
    same_processes = saved_processes == accelerator.num_processes
    if not same_processes:  # allowed (e.g. more GPUs), but the data shares and noise cannot continue exactly
        accelerator.print(f"warning: {path} was written by {saved_processes} processes, this run has "
                          f"{accelerator.num_processes}: training continues from the same weights and data position, "
                          "but not bit-identically to an uninterrupted run")
        if "batches_in_epoch" in state:  # the same number of samples done, in batches of the new size
            state["batches_in_epoch"] = int(state["batches_in_epoch"]) * saved_processes // accelerator.num_processes
    options = StateDictOptions(full_state_dict=True)
    for index, model in enumerate(models):
        file = path / f"model{_suffix(index)}.safetensors"
        try:
            set_model_state_dict(model, _read_safetensors(file), options=options)
        except RuntimeError as error:  # strict loading: missing/unexpected keys or wrong shapes
            raise ValueError(f"checkpoint file {file} does not fit the model ({error})") from error
    for index, optimizer in enumerate(optimizers):
        name = f"optimizer{_suffix(index)}"
        try:
            set_optimizer_state_dict(models[index], _unwrap_optimizer(optimizer), load_state_files(path, name),
                                     options=options)
        except (KeyError, RuntimeError, TypeError) as error:
            file = path / f"{name}.json"
            raise ValueError(f"checkpoint file {file} does not fit the optimizer ({error!r})") from error
    for index, scheduler in enumerate(schedulers):
        scheduler.load_state_dict(load_state_files(path, f"scheduler{_suffix(index)}"))
    for name, obj in (objects or {}).items():
        obj.load_state_dict(load_state_files(path, name))
    rng_name = f"random_states_{accelerator.process_index}"
    if same_processes or accelerator.process_index < saved_processes:
        set_rng_state(load_state_files(path, rng_name), source=str(path / f"{rng_name}.json"))
    accelerator.print(f"resumed from {path} at step {state['global_step']}")
    return state


def truncate_log(path: Path, step: int, accelerator=None):
    """Drop the entries of a JSON-lines log after `step` (written before an interruption and trained again after the
    resume), so each step is logged once, and a line cut short by the interruption. Atomic; only the main process
    writes."""
    from cosmos_hf.utils import atomic_path

    path = Path(path)
    if (accelerator is not None and not accelerator.is_main_process) or not path.is_file():
        return

    def logged_step(line):
        try:
            return int(json.loads(line).get("step", 0))
        except (ValueError, AttributeError, TypeError):
            return None  # a partial line

    lines = path.read_text().splitlines()
    kept = [line for line in lines if logged_step(line) is not None and logged_step(line) <= step]
    if len(kept) != len(lines):
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept))


def epoch_data_loader(dataset, batch_size: int, seed: int, epoch: int, skip_batches: int, accelerator,
                      sample_weights=None, **loader_kwargs):
    """This process's DataLoader over epoch `epoch` of a map-style `dataset`, without the first `skip_batches`
    batches (those a resumed run already trained on): the order comes from `EpochShuffleSampler` (weighted draws
    with `sample_weights`, one per clip: `clip_sampling_weights`), and a dataset with
    `set_sample_seed(seed, epoch)` (random crops) draws from (seed, epoch, index). An IterableDataset (webdataset
    shards) streams from its start again: its resume is not exact. Batches stay on the CPU (the scripts move them)."""
    from torch.utils.data import DataLoader, IterableDataset

    if isinstance(dataset, IterableDataset):
        return DataLoader(dataset, batch_size=batch_size, drop_last=True, **loader_kwargs)
    if hasattr(dataset, "set_sample_seed"):
        dataset.set_sample_seed(seed, epoch)
    sampler = EpochShuffleSampler(len(dataset), batch_size, seed, epoch, skip_batches, accelerator.num_processes,
                                  accelerator.process_index, weights=sample_weights)
    # the loader's own generator (worker seeds) instead of one draw from the global RNG at every epoch start
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                      generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch), **loader_kwargs)


# ---------------------------------------------------------------------------------------------------------- set-up
# `training.lr_scheduler`: diffusers' `get_scheduler` names, plus train_tokenizer.py's own schedule
DIFFUSERS_LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                           "constant_with_warmup")
COSINE_TO_10_PERCENT = "cosine_to_10_percent"
LR_SCHEDULERS = (*DIFFUSERS_LR_SCHEDULERS, COSINE_TO_10_PERCENT)


class JSONLinesTracker(GeneralTracker):
    """An accelerate tracker (`Accelerator(log_with=[...])`) that appends one JSON line per `accelerator.log` call to a
    file: `{"step": step, **values}`, the `train_log.jsonl` that model cards, reports and tests read. Only the main
    process writes."""

    name = "jsonl"
    requires_logging_directory = False
    main_process_only = True

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)

    @property
    def tracker(self):
        return self.path

    @on_main_process
    def store_init_configuration(self, values: dict):
        pass  # the scripts write the whole config to config.yaml

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs):
        entry = {"step": step, **values} if step is not None else dict(values)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")


def read_log(path: Path, up_to_step: int | None = None) -> list[dict]:
    """The entries of a JSON-lines training log (those up to `up_to_step` if given); [] when there is none."""
    path = Path(path)
    if not path.is_file():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [entry for entry in entries if up_to_step is None or entry.get("step", 0) <= up_to_step]


def flat_config(config: dict, prefix: str = "") -> dict:
    """A nested config as `section.key: value` pairs of str/int/float/bool (what `init_trackers` hyperparameters
    accept: TensorBoard refuses lists, dicts and None)."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flat_config(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def setup_accelerator(config: dict, project_name: str, log_file: str = "train_log.jsonl",
                      device_specific_seed: bool = True):
    """The one accelerator set-up of the training scripts; returns the `Accelerator`.

    - `Accelerator` with `training.gradient_accumulation_steps` and `training.mixed_precision`; several processes on
      a machine without CUDA (e.g. training/accelerate/cpu_2proc.yaml) run on the CPU (gloo);
    - trackers: `JSONLinesTracker(output_dir / log_file)` always, plus accelerate's `training.log_with` (e.g.
      ["tensorboard"], logging under `output_dir/logs`), started with the flattened config;
    - `set_seed(seed)` (different on each process with `device_specific_seed`, reproducible per rank);
    - `output_dir/config.yaml`: the resolved config (main process, atomic).
    """
    import logging

    import yaml
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    from cosmos_hf.utils import atomic_path

    training, output_dir = config["training"], Path(config["output_dir"])
    log_with = training.get("log_with") or []
    if isinstance(log_with, str):
        log_with = [log_with]
    multi_process_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    accelerator = Accelerator(
        cpu=multi_process_cpu,
        gradient_accumulation_steps=int(training["gradient_accumulation_steps"]),
        mixed_precision=training["mixed_precision"],
        log_with=[JSONLinesTracker(output_dir / log_file), *log_with],
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    set_seed(int(config["seed"]), device_specific=device_specific_seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(output_dir / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    accelerator.init_trackers(project_name, config=flat_config(config))
    return accelerator


def optimizer_step(accelerator, loss, trainable, max_grad_norm, optimizer, lr_scheduler):
    """Backward, clip the gradient norm (when `max_grad_norm` is set, on the step that syncs gradients), step the
    optimizer and the LR schedule, clear the gradients: the end of every train step inside `accelerator.accumulate`."""
    accelerator.backward(loss)
    if accelerator.sync_gradients and max_grad_norm:
        accelerator.clip_grad_norm_(trainable, max_grad_norm)
    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def build_lr_scheduler(optimizer, training: dict, num_processes: int = 1, max_train_steps=None,
                       held_groups: dict | None = None):
    """`training.lr_scheduler` with `training.lr_warmup_steps` over `training.max_train_steps`.

    Names: diffusers' `get_scheduler` ones (DIFFUSERS_LR_SCHEDULERS), or `cosine_to_10_percent` (train_tokenizer.py's
    schedule: linear warm-up counting the first step, (s + 1) / warmup, then cosine decay to 10% of the peak). Step
    counts are scaled by `num_processes`, since accelerate's prepared scheduler steps once per process per optimizer
    step (diffusers' training examples do the same).

    `max_train_steps`: the run's length if not `training.max_train_steps`; a zero-argument callable is read at every
    step by `cosine_to_10_percent` and `cosine` (a run that shortens itself: `--max_train_minutes`, `WallClockBudget`);
    diffusers' other schedules read it once. `held_groups` {param group index: steps}: that group's factor is 0 for
    its first `steps` steps, then warms up again over `lr_warmup_steps` (train_tokenizer.py's
    `training.freeze_encoder_steps`).
    """
    from diffusers.optimization import get_scheduler

    name = training.get("lr_scheduler")
    if name not in LR_SCHEDULERS:
        raise ValueError(f"training.lr_scheduler must be one of {', '.join(LR_SCHEDULERS)}, got {name!r}")
    warmup = int(training.get("lr_warmup_steps") or 0) * num_processes
    steps = int(training["max_train_steps"]) if max_train_steps is None else max_train_steps
    total = (lambda: int(steps()) * num_processes) if callable(steps) else int(steps) * num_processes
    if name == COSINE_TO_10_PERCENT:
        schedule = cosine_to_10_percent(warmup, total)
    elif name == "cosine" and callable(total):
        schedule = cosine_to_zero(warmup, total)  # diffusers' cosine, but it follows a run that shortens itself
    else:
        scheduler = get_scheduler(name, optimizer=optimizer, num_warmup_steps=warmup,
                                  num_training_steps=total() if callable(total) else total)
        if not held_groups:
            return scheduler
        schedule = scheduler.lr_lambdas[0]
    held = {int(index): int(count) * num_processes for index, count in (held_groups or {}).items()}
    lambdas = [held_then_warm_up(schedule, held[index], warmup) if index in held else schedule
               for index in range(len(optimizer.param_groups))]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def cosine_to_10_percent(warmup: int, total):
    """The LR factor of step s: (s + 1) / warmup during the warm-up, then cosine from 1 down to 0.1 at `total` (an int,
    or a zero-argument callable read at every step)."""

    def lr_lambda(step):
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * _cosine_progress(step, warmup, total)))

    return lr_lambda


def _cosine_progress(step: int, warmup: int, total) -> float:
    """How far step is from the warm-up's end to `total` (an int or a callable read now), in [0, 1]."""
    length = total() if callable(total) else total
    return min(1.0, (step - warmup) / max(1, length - warmup))


def cosine_to_zero(warmup: int, total):
    """diffusers' `cosine` schedule (linear warm-up from 0, then half a cosine from 1 down to 0 at `total`), with
    `total` an int or a zero-argument callable read at every step; it stays at 0 after `total`."""

    def lr_lambda(step):
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * _cosine_progress(step, warmup, total))))

    return lr_lambda


def every(step: int, interval) -> bool:
    """`step` is a multiple of `interval` (`log_every`, `checkpointing_steps`, `validation_steps`); an interval of 0
    or null means "never on the way" (the scripts still log and save at the end)."""
    return bool(interval) and step % int(interval) == 0


class WallClockBudget:
    """`--max_train_minutes M` of the training scripts, for machines lent for a fixed time: after `first_step + 30`
    optimizer steps, `max_train_steps` is lowered (never raised) to the steps that fit in M minutes from `start_time`
    at the speed of steps first + 10 .. first + 30 (the first ten warm up allocators and autotuning); 5% of M is kept
    for saving. Every process gets the smallest count any of them computed, so all stop at the same step. The
    cosine schedules built with `max_train_steps=lambda: max_steps` follow the lowered length."""

    def __init__(self, minutes: float | None, first_step: int, start_time: float, clock=time.time):
        if minutes is not None and not minutes > 0:
            raise ValueError(f"--max_train_minutes must be > 0, got {minutes}")
        self.minutes, self.first_step, self.start_time, self.clock = minutes, first_step, start_time, clock
        self.timing_start = None

    def before_step(self, step: int):
        """Call before each optimizer step's work (with gradient accumulation: before each micro-batch)."""
        if self.minutes and step == self.first_step + 10 and self.timing_start is None:
            self.timing_start = self.clock()

    def steps_that_fit(self, step: int, max_steps: int, accelerator) -> int:
        """`max_steps`, lowered once (right after optimizer step `first_step + 30`) to what fits."""
        if not self.minutes or step != self.first_step + 30:
            return max_steps
        now = self.clock()
        seconds_per_step = (now - self.timing_start) / 20
        fitting = step + int((0.95 * self.minutes * 60 - (now - self.start_time)) / max(seconds_per_step, 1e-9))
        fitting = int(accelerator.gather(torch.tensor([max(step, fitting)], device=accelerator.device)).min())
        if fitting >= max_steps:
            return max_steps
        accelerator.print(f"--max_train_minutes {self.minutes}: {seconds_per_step:.3f} s/step, max_train_steps "
                          f"lowered to {fitting}")
        return fitting


def held_then_warm_up(schedule, held_steps: int, warmup: int):
    """`schedule` at 0 for the first `held_steps` steps, then with its own linear warm-up over `warmup` steps (a frozen
    parameter group that starts later gets no full-size first Adam step)."""

    def lr_lambda(step):
        if step < held_steps:
            return 0.0
        return min(1.0, (step - held_steps + 1) / max(1, warmup)) * schedule(step)

    return lr_lambda


def model_card(body: str, library_name: str, pipeline_tag: str | None, tags: list[str]) -> str:
    """A Hub model card: metadata (huggingface_hub's `ModelCardData`, tags added with diffusers' `populate_model_card`,
    no network) over `body` (Markdown)."""
    from diffusers.utils.hub_utils import populate_model_card
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(library_name=library_name, pipeline_tag=pipeline_tag, license="apache-2.0")
    card = populate_model_card(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n"), tags=tags)
    return str(card)
