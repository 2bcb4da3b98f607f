"""Strict `from_pretrained` for the tokenizers: the weights file must match the model that config.json describes.

diffusers' `ModelMixin.from_pretrained` only warns about missing or unexpected weights (a missing one is left
randomly initialised, or on the meta device with `low_cpu_mem_usage`), so a damaged folder loads and reconstructs
garbage. `StrictLoadingMixin` compares the checkpoint's keys and shapes (read from the safetensors header, no tensor
data) with the freshly built model before anything is loaded, and raises a ValueError naming the keys. When the
mismatch is explained by one config value (FSQ `levels`, `legacy_mode`, a compression factor, a channel count), the
error names that config key and the value the weights fit.

`ignore_mismatched_sizes=True` (diffusers' own opt-out; with `low_cpu_mem_usage=False`, so that unmatched weights
are randomly initialised rather than left on the meta device) restores diffusers' lenient loading with warnings.
"""

import torch

# weight-shaping config keys and the values worth trying when a checkpoint does not fit (only on the error path)
_POWERS_OF_TWO = (1, 2, 4, 8, 16, 32, 64)
_SIZES_IN_CHECKPOINT = "every dimension size that occurs in the checkpoint's shapes"  # for channel counts
_CANDIDATE_VALUES = {
    "legacy_mode": (False, True),
    "temporal_compression": _POWERS_OF_TWO,
    "spatial_compression": _POWERS_OF_TWO,
    "temporal_compression_ratio": _POWERS_OF_TWO,
    "spatial_compression_ratio": _POWERS_OF_TWO,
    "patch_size": (1, 2, 4, 8),
    "channels": _SIZES_IN_CHECKPOINT,
    "z_channels": _SIZES_IN_CHECKPOINT,
    "latent_channels": _SIZES_IN_CHECKPOINT,
    "num_res_blocks": (1, 2, 3, 4),
    "num_layers": (1, 2, 3, 4),
}


def checkpoint_shapes(state_dict, resolved_model_files) -> dict:
    """{key: shape} of a loaded state dict, or of safetensors files read from their headers only."""
    if state_dict is not None:
        return {key: tuple(tensor.shape) for key, tensor in state_dict.items()}
    from safetensors import safe_open

    shapes = {}
    for path in resolved_model_files:
        if not str(path).endswith(".safetensors"):  # a sharded .bin checkpoint: tensors only, memory-mapped
            shard = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            shapes.update({key: tuple(tensor.shape) for key, tensor in shard.items()})
            continue
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


def weight_mismatches(expected: dict, found: dict):
    """(missing, unexpected, wrong_shape) between two {key: shape} maps; wrong_shape = [(key, found, expected)]."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong_shape = [(key, found[key], expected[key]) for key in expected if key in found and found[key] != expected[key]]
    return missing, unexpected, wrong_shape


def _expected_shapes(model) -> dict:
    return {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}


def _levels_hint(config, found):
    """FSQ levels: the quantizer's dimension is the output channel count of `quant_conv`."""
    levels = config.get("levels")
    for key in ("quant_conv.conv.weight", "quant_conv.weight"):
        if levels is not None and key in found and found[key][0] != len(levels):
            return (f"config key 'levels' = {list(levels)} ({len(levels)} FSQ levels) contradicts the weights: "
                    f"{key} has {found[key][0]} output channels, one per level")
    return None


def explain_mismatch(model_class, config: dict, found: dict):
    """A sentence naming the config key whose value contradicts the weights, or None when no single key explains it.

    Tries each weight-shaping key of `config` with other values (models built on the meta device: no memory, ~0.1 s
    each); channel counts are tried only among the sizes that occur in the checkpoint's shapes.
    """
    from diffusers.models.modeling_utils import no_init_weights

    hint = _levels_hint(config, found)
    if hint:
        return hint
    sizes_in_checkpoint = {size for shape in found.values() for size in shape}
    for key, values in _CANDIDATE_VALUES.items():
        if key not in config:
            continue
        if values is _SIZES_IN_CHECKPOINT:
            values = sorted(sizes_in_checkpoint)
        for value in values:
            if value == config[key]:
                continue
            try:
                with torch.device("meta"), no_init_weights():
                    candidate = model_class.from_config({**config, key: value})
            except Exception:  # an impossible combination: not the explanation
                continue
            if _expected_shapes(candidate) == found:
                return f"config key '{key}' = {config[key]!r} contradicts the weights, which fit {key} = {value!r}"
    return None


def check_weights_match_model(model, found: dict, source) -> None:
    """Raise a ValueError naming every missing, unexpected or wrong-shaped key (and the config key at fault)."""
    expected = _expected_shapes(model)
    missing, unexpected, wrong_shape = weight_mismatches(expected, found)
    if not (missing or unexpected or wrong_shape):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {_listing(unexpected)}")
    if wrong_shape:
        shown = [f"{key} {found_shape} in the file, {expected_shape} from config.json"
                 for key, found_shape, expected_shape in wrong_shape]
        problems.append(f"{len(wrong_shape)} of wrong shape: {_listing(shown)}")
    # A config value that contradicts the weights changes several keys (a whole upsampler, a conv and its bias);
    # one bad key is a damaged file, and trying other configs would only cost time.
    hint = None
    if len(missing) + len(unexpected) + len(wrong_shape) > 1:
        config = {k: v for k, v in model.config.items() if not k.startswith("_")}
        hint = explain_mismatch(type(model), config, found)
    raise ValueError(
        f"weights of {source} do not match the {type(model).__name__} its config.json describes ("
        + "; ".join(problems) + "). "
        + (f"{hint}." if hint else "The weights file is damaged or belongs to another configuration.")
        + " Nothing was loaded; pass ignore_mismatched_sizes=True, low_cpu_mem_usage=False to load anyway with "
        "diffusers' warnings (unmatched weights stay randomly initialised)."
    )


def _listing(items, limit: int = 6):
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


class StrictLoadingMixin:
    """Put before `ModelMixin` in the bases: `from_pretrained` then refuses weights that do not fit the config."""

    @classmethod
    def _load_pretrained_model(cls, model, state_dict, resolved_model_file, pretrained_model_name_or_path,
                               loaded_keys, *args, **kwargs):
        # diffusers' hook between building the model from config.json and copying the weights in: the model's
        # expected keys and shapes and the checkpoint are both known here, nothing is loaded yet.
        if not kwargs.get("ignore_mismatched_sizes", False):
            found = checkpoint_shapes(state_dict, resolved_model_file)
            check_weights_match_model(model, found, pretrained_model_name_or_path)
        return super()._load_pretrained_model(model, state_dict, resolved_model_file, pretrained_model_name_or_path,
                                              loaded_keys, *args, **kwargs)
