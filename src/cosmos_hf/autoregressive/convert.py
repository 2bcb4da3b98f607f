"""Convert a Cosmos-Predict1 autoregressive checkpoint (model.pt / .safetensors) to a CosmosARForCausalLM folder.

The reference checkpoint (e.g. Cosmos-Predict1-4B/model.pt) is read with `torch.load(weights_only=True)` (no
pickled code runs) or with safetensors; the output is a transformers folder (config.json + model.safetensors) that
`AutoModelForCausalLM.from_pretrained(folder)` loads after `import cosmos_hf`. The architecture comes from a
released variant (`--variant`) or from the reference `ModelConfig` fields as JSON (`--reference-config`).
"""

import json
import re
from pathlib import Path

from .configuration_cosmos_ar import VARIANTS, CosmosARConfig

# reference sub-key (inside layers.N.) -> ours (inside model.layers.N.)
_LAYER_KEYS = {
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "cross_attention_norm.weight": "cross_attn_layernorm.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
}
_ATTENTION_KEYS = {
    "wq": "q_proj", "wk": "k_proj", "wv": "v_proj", "wo": "o_proj", "q_norm": "q_norm", "k_norm": "k_norm"
}
_TOP_KEYS = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_RE = re.compile(r"^layers\.(\d+)\.(.+)$")
_ATTN_RE = re.compile(r"^(attention|cross_attention)\.(wq|wk|wv|wo|q_norm|k_norm)\.weight$")


def convert_reference_state_dict(state_dict: dict, config: CosmosARConfig) -> dict:
    """Rename reference keys (`layers.N.attention.wq.weight`, ...) to ours; split fused `wqkv`; drop
    TransformerEngine `_extra_state` entries and a leading `model.` prefix. Unknown keys raise ValueError."""
    converted, unknown = {}, []
    q_size = config.num_attention_heads * config.head_dim
    kv_size = config.num_key_value_heads * config.head_dim
    for key, value in state_dict.items():
        if "_extra_state" in key:
            continue
        if key.startswith("model."):
            key = key[len("model.") :]
        if "self_attention.layernorm_qkv" in key or "layernorm_mlp" in key:
            raise ValueError(
                f"checkpoint key {key!r} is in TransformerEngine layout; convert it to the PyTorch layout first "
                "(the released Cosmos-Predict1 model.pt files already use the PyTorch layout)"
            )
        if key in _TOP_KEYS:
            converted[_TOP_KEYS[key]] = value
            continue
        match = _LAYER_RE.match(key)
        if not match:
            unknown.append(key)
            continue
        layer, rest = match.groups()
        prefix = f"model.layers.{layer}."
        if rest in _LAYER_KEYS:
            converted[prefix + _LAYER_KEYS[rest]] = value
        elif rest == "attention.wqkv.weight":  # fuse_qkv=True checkpoints: [q; k; v] stacked on dim 0
            q, k, v = value.split([q_size, kv_size, kv_size], dim=0)
            for name, part in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                converted[f"{prefix}self_attn.{name}.weight"] = part
        elif attn := _ATTN_RE.match(rest):
            module = "self_attn" if attn.group(1) == "attention" else "cross_attn"
            converted[f"{prefix}{module}.{_ATTENTION_KEYS[attn.group(2)]}.weight"] = value
        else:
            unknown.append(key)
    if unknown:
        shown = ", ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else "")
        raise ValueError(f"{len(unknown)} checkpoint keys are not part of the Cosmos AR network: {shown}")
    return converted


def _load_reference_config(reference_config) -> tuple[dict, str | None]:
    """Accept a path or dict: a fixture config.json (`constructor_kwargs`), `{"params", "tokenizer_config"}`, or
    bare `ModelConfig` params (optionally with `training_type`). Returns (params, training_type)."""
    if isinstance(reference_config, (str, Path)):
        path = Path(reference_config)
        if not path.is_file():
            raise FileNotFoundError(f"reference config not found: {path}")
        try:
            reference_config = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"reference config {path} is not valid JSON: {err}") from err
    if not isinstance(reference_config, dict):
        raise ValueError("reference config must be a JSON object")
    data = reference_config.get("constructor_kwargs", reference_config)
    if "params" in data:
        params = data["params"]
        training_type = (data.get("tokenizer_config") or {}).get("training_type")
    else:
        params = data
        training_type = data.get("training_type")
    missing = [k for k in ("dim", "n_layers", "n_heads", "vocab_size", "ffn_hidden_size") if k not in params]
    if missing:
        raise ValueError(f"reference config lacks ModelConfig fields: {', '.join(missing)}")
    return params, training_type


def build_config(variant: str | None = None, reference_config=None, **overrides) -> CosmosARConfig:
    """Config from a released variant name or a reference ModelConfig (exactly one of them)."""
    if (variant is None) == (reference_config is None):
        raise ValueError("pass exactly one of variant or reference_config")
    if variant is not None:
        return CosmosARConfig.from_variant(variant, **overrides)
    params, training_type = _load_reference_config(reference_config)
    return CosmosARConfig.from_reference_params(params, training_type=training_type, **overrides)


def convert_ar_checkpoint(
    checkpoint,
    out_dir=None,
    *,
    variant: str | None = None,
    reference_config=None,
    dtype=None,
    abs_pos_emb_dtype: str = "float32",
    allow_pickle: bool = False,
    overwrite: bool = False,
):
    """Load a reference AR checkpoint into a `CosmosARForCausalLM` and optionally save it as safetensors.

    Args:
        checkpoint: path to `model.pt` / `.pth` (read with `weights_only=True` unless `allow_pickle`) or
            `.safetensors`, or an in-memory state dict with the reference key names.
        out_dir: folder to write (`save_pretrained`, atomically); None = only return the model. Must be new or
            empty unless `overwrite=True` (then replaced once the new folder is complete); never one holding an input.
        variant: `4B`, `5B-Video2World`, `12B` or `13B-Video2World`.
        reference_config: the reference ModelConfig as dict or JSON path (see `_load_reference_config`).
        dtype: `torch.dtype` or name to cast the weights to (default: keep the checkpoint's dtype).
        abs_pos_emb_dtype: `"float32"` (default) or `"bfloat16"` to reproduce the reference's bf16 absolute table.
    Returns:
        the loaded model (eval mode).
    """
    import torch

    from ..utils import atomic_path, check_output_dir, load_state_dict_file
    from .modeling_cosmos_ar import CosmosARForCausalLM

    if out_dir is not None:  # before reading a multi-GB checkpoint
        inputs = [p for p in (checkpoint, reference_config) if isinstance(p, (str, Path))]
        out_dir = check_output_dir(out_dir, overwrite=overwrite, inputs=inputs)
    config = build_config(variant, reference_config, abs_pos_emb_dtype=abs_pos_emb_dtype)
    state = checkpoint if isinstance(checkpoint, dict) else load_state_dict_file(checkpoint, allow_pickle=allow_pickle)
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    converted = convert_reference_state_dict(state, config)
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        dtype = getattr(torch, dtype)
    if dtype is not None:
        converted = {k: v.to(dtype) for k, v in converted.items()}

    # Build on the meta device and adopt the checkpoint tensors: no second copy of a 4B/12B model in memory.
    with torch.device("meta"):
        model = CosmosARForCausalLM(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not match the configured architecture: missing {missing[:6]}, unexpected "
            f"{unexpected[:6]} (wrong --variant / --reference-config?)"
        )
    for key, tensor in converted.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"shape mismatch for {key}: checkpoint {tuple(tensor.shape)}, config expects "
                f"{tuple(expected[key].shape)} (wrong --variant / --reference-config?)"
            )
    model.load_state_dict({k: v.contiguous() for k, v in converted.items()}, strict=True, assign=True)
    model.config.dtype = next(iter(converted.values())).dtype
    model.eval()
    if out_dir is not None:
        with atomic_path(out_dir, is_dir=True) as tmp:
            model.save_pretrained(tmp)
    return model


def add_arguments(parser):
    parser.add_argument("--checkpoint", required=True, help="reference model.pt / .pth (weights only) or .safetensors")
    arch = parser.add_mutually_exclusive_group(required=True)
    arch.add_argument("--variant", choices=sorted(VARIANTS), help="released model the checkpoint belongs to")
    arch.add_argument(
        "--reference-config",
        help="JSON with the reference ModelConfig fields (dim, n_layers, ...; optional training_type / "
        "tokenizer_config.training_type = text_to_video for Video2World)",
    )
    parser.add_argument(
        "--out", required=True, help="output folder (config.json + model.safetensors; written atomically, new or empty)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --out (only once the new folder is complete; never one that holds an input)",
    )
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="cast weights (default: keep)")
    parser.add_argument(
        "--abs-pos-emb-dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="Video2World absolute table precision; bfloat16 reproduces the unmodified reference's rounding",
    )
    parser.add_argument(
        "--allow-pickle", action="store_true", help="allow full unpickling of a trusted .pt file (executes code)"
    )


def run(args) -> int:
    model = convert_ar_checkpoint(
        args.checkpoint,
        args.out,
        variant=args.variant,
        reference_config=args.reference_config,
        dtype=args.dtype,
        abs_pos_emb_dtype=args.abs_pos_emb_dtype,
        allow_pickle=args.allow_pickle,
        overwrite=args.overwrite,
    )
    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: CosmosARForCausalLM, {n_params / 1e6:.2f}M parameters, dtype {model.dtype}")
    return 0


__all__ = ["convert_ar_checkpoint", "convert_reference_state_dict", "build_config", "add_arguments", "run"]
