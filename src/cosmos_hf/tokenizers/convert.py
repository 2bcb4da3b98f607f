"""Convert official Cosmos-Tokenize1 checkpoints (encoder.jit / decoder.jit / autoencoder.jit / state dicts) to folders.

Inputs, any combination that covers encoder and decoder:
  * TorchScript `.jit` files as released by NVIDIA (`encoder.jit`, `decoder.jit`, `autoencoder.jit`). TorchScript is
    the official format; it is loaded with `torch.jit.load` for `.jit` files only.
  * plain state dicts: `.safetensors`, or `.pt` / `.pth` read with `torch.load(weights_only=True)` (no pickled code).
  * `mean_std.pt` (CV8x8x8's latent statistics), read with weights_only.
Output: a folder with config.json + diffusion_pytorch_model.safetensors loadable with `from_pretrained`: diffusers'
`AutoencoderKLCosmos` for CV (mirrored decoder), else a cosmos_hf class. The folder is written atomically.
"""

import json
import re
from pathlib import Path

import torch

from ..utils import atomic_path, check_output_dir, load_state_dict_file
from .configs import REFERENCE_CONFIGS, model_from_reference_kwargs, tokenizer_kind

# buffers the reference stores that our modules derive from the config
_DERIVED_BUFFERS = ("wavelets", "_arange", "patch_size_buffer", "_levels", "_basis", "implicit_codebook")

_RENAMES_3D = [
    (".block.", ".resnets."), ("downsample.", "downsamplers.0."), ("upsample.", "upsamplers.0."),
    ("mid.block_1.", "mid_block.resnets.0."), ("mid.attn_1.0.", "mid_block.attentions.0."),
    ("mid.attn_1.1.", "mid_block.temp_attentions.0."), ("mid.block_2.", "mid_block.resnets.1."),
    (".q.conv3d.", ".to_q."), (".k.conv3d.", ".to_k."), (".v.conv3d.", ".to_v."), (".proj_out.conv3d.", ".to_out.0."),
    (".0.conv3d.", ".conv_s."), (".1.conv3d.", ".conv_t."), ("nin_shortcut.conv3d.", "conv_shortcut."),
    (".conv3d.", "."),
]
_RENAMES_2D = [
    (".block.", ".resnets."), ("mid.block_1.", "mid_block.resnets.0."), ("mid.attn_1.", "mid_block.attention."),
    ("mid.block_2.", "mid_block.resnets.1."), ("nin_shortcut.", "conv_shortcut."), (".q.", ".to_q."),
    (".k.", ".to_k."), (".v.", ".to_v."), (".proj_out.", ".to_out."), ("downsample.", "resampler."),
    ("upsample.", "resampler."),
]


def _attention_in_level(key):
    # 2D attention blocks of a level live at down.{i}.attn.{j} -> down_blocks.{i}.attentions.{j}
    return re.sub(r"\.attn\.(\d+)\.", r".attentions.\1.", key)


def rename_reference_keys(state_dict: dict, kind: str, num_levels: int) -> dict:
    """Reference key names -> cosmos-hf / diffusers key names (drops buffers derived from the config)."""
    renames = _RENAMES_3D if kind in ("CV", "DV") else _RENAMES_2D
    out = {}
    for key, value in state_dict.items():
        if key.startswith("inv_quant.") or key.split(".")[-1] in _DERIVED_BUFFERS:
            continue
        new = re.sub(r"^encoder\.down\.(\d+)\.", r"encoder.down_blocks.\1.", key)
        new = re.sub(r"^decoder\.up\.(\d+)\.", lambda m: f"decoder.up_blocks.{num_levels - 1 - int(m.group(1))}.", new)
        if kind in ("CI", "DI"):
            new = _attention_in_level(new)
        else:
            new = re.sub(r"\.attn\.(\d+)\.0\.", r".attentions.\1.", new)
            new = re.sub(r"\.attn\.(\d+)\.1\.", r".temp_attentions.\1.", new)
        for old_part, new_part in renames:
            new = new.replace(old_part, new_part)
        if new in out:
            raise ValueError(f"two checkpoint keys map to {new!r} (second: {key!r}); is this a Cosmos tokenizer?")
        out[new] = value
    return out


def read_checkpoint(path, allow_pickle: bool = False) -> dict:
    """State dict of one file: `.jit` through TorchScript (the official format), else a plain state dict."""
    path = Path(path)
    if path.suffix == ".jit":
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint file not found: {path}")
        try:
            return {k: v.detach().clone() for k, v in torch.jit.load(str(path), map_location="cpu").state_dict().items()}
        except Exception as err:
            raise ValueError(f"cannot read TorchScript checkpoint {path} (corrupt or truncated?): {err}") from err
    return load_state_dict_file(path, allow_pickle=allow_pickle)


def read_mean_std(path):
    """`mean_std.pt` -> (mean list, std list), flattened channel-major as diffusers' config stores them."""
    try:
        mean, std = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot read latent statistics {path} (expected a (mean, std) tensor pair): {err}") from err
    return mean.flatten().float().tolist(), std.flatten().float().tolist()


def _build_and_load(reference_kwargs, state_dict, mean_std):
    kind = tokenizer_kind(reference_kwargs)
    num_levels = len(reference_kwargs["channels_mult"])
    converted = rename_reference_keys(state_dict, kind, num_levels)
    mean, std = mean_std if mean_std is not None else (None, None)
    model = model_from_reference_kwargs(reference_kwargs, latents_mean=mean, latents_std=std)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    if missing or unexpected:
        return model, converted, missing, unexpected
    for key in expected:  # model order, so the first mismatch reported is the first layer's
        tensor = converted[key]
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"shape mismatch for {key!r}: checkpoint has {tuple(tensor.shape)}, the {kind} config expects "
                f"{tuple(expected[key].shape)}; check --variant / --reference-config"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in converted.items()}, strict=True)
    return model, converted, [], []


def convert_tokenizer_checkpoint(checkpoints, variant: str | None = None, reference_config: dict | None = None,
                                 mean_std=None, allow_pickle: bool = False):
    """Official tokenizer checkpoint file(s) -> a loaded model (eval mode).

    `checkpoints`: one path or several (e.g. encoder.jit and decoder.jit). Exactly one of `variant` (a name in
    `REFERENCE_CONFIGS`, e.g. "DV8x16x16") and `reference_config` (the reference constructor kwargs) is required.
    A decoder whose keys match the legacy layout is detected and converted as such.
    """
    if (variant is None) == (reference_config is None):
        raise ValueError("give exactly one of variant=... or reference_config=...")
    if variant is not None:
        if variant not in REFERENCE_CONFIGS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(REFERENCE_CONFIGS)}")
        reference_config = dict(REFERENCE_CONFIGS[variant])
    reference_config = dict(reference_config)
    paths = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    if not paths:
        raise ValueError("no checkpoint files given")
    state_dict, source = {}, {}
    for path in paths:
        for key, tensor in read_checkpoint(path, allow_pickle=allow_pickle).items():
            # the released encoder.jit / decoder.jit hold disjoint keys; a key in two files with other values (e.g.
            # two releases' decoders given by mistake) would otherwise be whichever file came last, silently
            same = key in state_dict and state_dict[key].shape == tensor.shape and torch.equal(state_dict[key], tensor)
            if key in state_dict and not same:
                raise ValueError(f"{key!r} is in {source[key]} and in {path} with other values: give each weight once "
                                 "(one release's encoder + decoder files)")
            state_dict[key], source[key] = tensor, path
    mean_std_values = read_mean_std(mean_std) if mean_std is not None else None

    # Legacy vs mirrored decoder: the layouts differ in which up levels own upsampling convs; try the declared one,
    # then the other, and keep the one whose keys match.
    declared = bool(reference_config.get("legacy_mode", False))
    attempts = []
    for legacy in (declared, not declared):
        if tokenizer_kind(reference_config) in ("CI", "DI") and legacy != declared:
            break
        reference_config["legacy_mode"] = legacy
        model, converted, missing, unexpected = _build_and_load(reference_config, state_dict, mean_std_values)
        if not missing and not unexpected:
            return model.eval()
        attempts.append((missing, unexpected))
    missing, unexpected = attempts[0]
    raise ValueError(
        "checkpoint keys do not match the tokenizer config: "
        f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); "
        "is the checkpoint complete (encoder and decoder) and the variant right?"
    )


def save_converted(model, out_dir, overwrite: bool = False, inputs=()) -> Path:
    """`save_pretrained` into `out_dir` atomically. Mirrored CV models are saved as diffusers' AutoencoderKLCosmos.

    A non-empty `out_dir` is refused unless `overwrite=True`; then it is replaced only once the new folder is
    complete. An `out_dir` that is or holds one of `inputs` (the checkpoint files) is always refused.
    """
    from .modeling_continuous_video import CosmosContinuousVideoTokenizer

    out_dir = check_output_dir(out_dir, overwrite=overwrite, inputs=inputs)
    with atomic_path(out_dir, is_dir=True) as tmp:
        if isinstance(model, CosmosContinuousVideoTokenizer) and not model.config.legacy_mode:
            to_diffusers_autoencoder(model).save_pretrained(tmp, safe_serialization=True)
        else:
            model.save_pretrained(tmp, safe_serialization=True)
    return out_dir


def to_diffusers_autoencoder(model):
    """A mirrored `CosmosContinuousVideoTokenizer` as diffusers' own `AutoencoderKLCosmos` (same weights).

    Pipelines and converted folders store the CV tokenizer as diffusers' class, which has no `legacy_mode`: loading a
    cosmos-hf tokenizer folder with `AutoencoderKLCosmos.from_pretrained` would warn that the key is ignored and
    write it into every pipeline saved afterwards. Legacy-layout decoders have no diffusers equivalent.
    """
    from diffusers import AutoencoderKLCosmos

    if model.config.get("legacy_mode", False):
        raise ValueError("a legacy-layout CV tokenizer (legacy_mode=True) has no diffusers AutoencoderKLCosmos "
                         "equivalent; use it as a CosmosContinuousVideoTokenizer")
    config = {k: v for k, v in model.config.items() if not k.startswith("_") and k != "legacy_mode"}
    plain = AutoencoderKLCosmos(**config)
    plain.load_state_dict(model.state_dict())
    return plain.to(model.dtype)


def load_tokenizer(folder, **kwargs):
    """Load any tokenizer folder written by the converter or `save_pretrained`, as a cosmos-hf class.

    CV folders (whether saved as `AutoencoderKLCosmos` or `CosmosContinuousVideoTokenizer`) load as
    `CosmosContinuousVideoTokenizer`, which adds streaming and bf16-on-CPU to diffusers' model. Loading is strict:
    missing, unexpected or wrong-shaped weights, or config values that contradict them, raise a ValueError naming
    the keys (see `strict_loading.py`).
    """
    from .modeling_continuous_video import CosmosContinuousVideoTokenizer
    from .modeling_discrete_video import CosmosDiscreteVideoTokenizer
    from .modeling_image import CosmosDiscreteImageTokenizer, CosmosImageTokenizer

    config_path = Path(folder) / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"no config.json in {folder}")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{config_path} is not valid JSON (damaged or not a tokenizer folder): {err}") from err
    if not isinstance(config, dict):
        raise ValueError(f"{config_path} must hold a JSON object, got {type(config).__name__}")
    class_name = config.get("_class_name")
    classes = {
        "AutoencoderKLCosmos": CosmosContinuousVideoTokenizer,
        "CosmosContinuousVideoTokenizer": CosmosContinuousVideoTokenizer,
        "CosmosDiscreteVideoTokenizer": CosmosDiscreteVideoTokenizer,
        "CosmosImageTokenizer": CosmosImageTokenizer,
        "CosmosDiscreteImageTokenizer": CosmosDiscreteImageTokenizer,
    }
    if class_name not in classes:
        raise ValueError(f"{config_path} names {class_name!r}, not a Cosmos tokenizer class ({sorted(classes)})")
    return classes[class_name].from_pretrained(folder, **kwargs)


# -- CLI: `cosmos-hf convert tokenizer` ---------------------------------------------------------------------------
def add_arguments(parser):
    parser.add_argument("--checkpoint", action="append", required=True, metavar="FILE",
                        help="encoder.jit / decoder.jit / autoencoder.jit (TorchScript, the official format: loaded "
                             "with torch.jit.load only for .jit files) or a state dict (.safetensors, or .pt read "
                             "with weights_only). Repeat for several files.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--variant", choices=sorted(REFERENCE_CONFIGS), help="a released tokenizer configuration")
    group.add_argument("--reference-config", metavar="JSON",
                       help="JSON file with the reference constructor kwargs (or {'constructor_kwargs': {...}})")
    parser.add_argument("--mean-std", metavar="FILE", help="mean_std.pt of a CV tokenizer (read with weights_only)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow unpickling .pt files that hold more than tensors (executes code: trusted files only)")
    parser.add_argument("--out", required=True, help="output folder (written atomically; must be new or empty)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --out (only once the new folder is complete; never one that holds "
                             "an input)")


def run(args) -> int:
    inputs = [*args.checkpoint, *(p for p in (args.reference_config, args.mean_std) if p)]
    check_output_dir(args.out, overwrite=args.overwrite, inputs=inputs)  # before the (slow) conversion
    reference_config = None
    if args.reference_config:
        try:
            reference_config = json.loads(Path(args.reference_config).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"reference config {args.reference_config} is not valid JSON: {err}") from err
        reference_config = reference_config.get("constructor_kwargs", reference_config)
    model = convert_tokenizer_checkpoint(args.checkpoint, variant=args.variant, reference_config=reference_config,
                                         mean_std=args.mean_std, allow_pickle=args.allow_pickle)
    out = save_converted(model, args.out, overwrite=args.overwrite, inputs=inputs)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"out": str(out), "class": json.loads((out / "config.json").read_text())["_class_name"],
                      "parameters": params}))
    return 0
