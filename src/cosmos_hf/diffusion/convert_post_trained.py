"""Convert a post-trained Cosmos-Predict1 DiT checkpoint (camera, action or multi-view) to a cosmos-hf model folder.

The official checkpoint (`model.pt` / `.pth` read with `torch.load(weights_only=True)`, or `.safetensors`) holds the
reference `GeneralDIT` weights under a `net.` prefix. The base DiT keys are renamed as diffusers'
`scripts/convert_cosmos_to_diffusers.py` renames Cosmos-1.0 (Predict1) DiTs; the post-training keys map as follows:

* camera:    `x_embedder.proj.1.weight` reads ``[latent | condition mask | Plücker 6 | padding mask]`` — the same
             column order as `CosmosCameraControlTransformer3DModel`, copied as is;
* action:    `action_embedder_B_D.fc1/fc2`, `action_embedder_B_3D.fc1/fc2` (weights and biases), copied as is;
* multiview: `view_embeddings.weight`, `traj_embeddings.*` -> `trajectory_embedding.*`, `repeat_frame_embedding.*` ->
             `frame_repeat_embedding.*`; the patch embedding's padding-mask columns move from right after the input
             channels (reference order ``[input | padding | view | trajectory]``) to the end (ours ``[input | view |
             trajectory | padding]``).

Sizes (width, heads, layers, AdaLN-LoRA rank, text width, channels, position tables, action/view/trajectory sizes)
are read from the weight shapes. What the weights cannot tell — `patch_size` (default (1, 2, 2)), `rope_scale`
(default (2, 1, 1) for camera/action as the released 7B Video2World models, (1, 1, 1) for multi-view), the extra
position embedding of a multi-view model without learnable tables (default the released models' "sincos") — comes
from the defaults or `--config` (a JSON object of constructor arguments, which override everything). Every checkpoint
key must be consumed (unknown keys raise ValueError naming them).
"""

from __future__ import annotations

import json
import math
import re

import torch

POST_TRAINED_KINDS = ("camera", "action", "multiview")

# reference substring -> diffusers substring, applied in order (diffusers' Cosmos-1.0 DiT renames)
BASE_KEY_RENAMES = {
    "t_embedder.1": "time_embed.t_embedder",
    "affline_norm": "time_embed.norm",
    ".blocks.0.block.attn": ".attn1",
    ".blocks.1.block.attn": ".attn2",
    ".blocks.2.block": ".ff",
    ".blocks.0.adaLN_modulation.1": ".norm1.linear_1",
    ".blocks.0.adaLN_modulation.2": ".norm1.linear_2",
    ".blocks.1.adaLN_modulation.1": ".norm2.linear_1",
    ".blocks.1.adaLN_modulation.2": ".norm2.linear_2",
    ".blocks.2.adaLN_modulation.1": ".norm3.linear_1",
    ".blocks.2.adaLN_modulation.2": ".norm3.linear_2",
    "to_q.0": "to_q",
    "to_q.1": "norm_q",
    "to_k.0": "to_k",
    "to_k.1": "norm_k",
    "to_v.0": "to_v",
    "layer1": "net.0.proj",
    "layer2": "net.2",
    "proj.1": "proj",
    "x_embedder": "patch_embed",
    "extra_pos_embedder": "learnable_pos_embed",
    "final_layer.adaLN_modulation.1": "norm_out.linear_1",
    "final_layer.adaLN_modulation.2": "norm_out.linear_2",
    "final_layer.linear": "proj_out",
}
# training-only state and recomputed buffers of the reference network
DROPPED_KEY_PATTERNS = (
    re.compile(r"^logvar\."),
    re.compile(r"^pos_embedder\."),
    re.compile(r"^extra_pos_embedder\.(seq|dim_spatial_range|dim_temporal_range)$"),
    re.compile(r"^accum_"),
    re.compile(r"_extra_state$"),
)
_BLOCK_RE = re.compile(r"^blocks\.block(\d+)\.")
# post-training keys, per kind: reference prefix -> ours
NEW_KEY_PREFIXES = {
    "camera": {},
    "action": {"action_embedder_B_D.": "action_embedder_B_D.", "action_embedder_B_3D.": "action_embedder_B_3D."},
    "multiview": {
        "view_embeddings.": "view_embeddings.",
        "traj_embeddings.": "trajectory_embedding.",
        "repeat_frame_embedding.": "frame_repeat_embedding.",
    },
}
DEFAULT_ROPE_SCALE = {"camera": (2.0, 1.0, 1.0), "action": (2.0, 1.0, 1.0), "multiview": (1.0, 1.0, 1.0)}
DEFAULT_PATCH_SIZE = (1, 2, 2)
DEFAULT_MAX_SIZE = (128, 240, 240)


def _model_class(kind: str):
    if kind == "camera":
        from .camera_control import CosmosCameraControlTransformer3DModel

        return CosmosCameraControlTransformer3DModel
    if kind == "action":
        from .action_conditioning import CosmosActionConditionedTransformer3DModel

        return CosmosActionConditionedTransformer3DModel
    if kind == "multiview":
        from .multiview import CosmosMultiViewTransformer3DModel

        return CosmosMultiViewTransformer3DModel
    raise ValueError(f"kind must be one of {list(POST_TRAINED_KINDS)}, got {kind!r}")


def rename_reference_key(key: str, kind: str) -> str | None:
    """Our key for a reference key (`net.` prefix optional); None for keys that are dropped."""
    key = key.removeprefix("net.")
    for pattern in DROPPED_KEY_PATTERNS:
        if pattern.search(key):
            return None
    for reference_prefix, our_prefix in NEW_KEY_PREFIXES[kind].items():
        if key.startswith(reference_prefix):
            return our_prefix + key[len(reference_prefix):]
    for old, new in BASE_KEY_RENAMES.items():
        key = key.replace(old, new)
    return _BLOCK_RE.sub(lambda m: f"transformer_blocks.{m.group(1)}.", key)


def _require(state: dict, key: str) -> torch.Tensor:
    if key not in state:
        raise ValueError(f"checkpoint lacks {key!r}: not a Cosmos-Predict1 DiT state dict (keys like "
                         "net.x_embedder.proj.1.weight, net.blocks.block0....)")
    return state[key]


def infer_config(state_dict: dict, kind: str, overrides: dict | None = None) -> dict:
    """Constructor kwargs of our `kind` model for a (renamed) state dict; `overrides` win over everything."""
    overrides = dict(overrides or {})
    state = state_dict
    patch_size = tuple(overrides.get("patch_size", DEFAULT_PATCH_SIZE))
    patch_volume = math.prod(patch_size)
    patch_weight = _require(state, "patch_embed.proj.weight")
    hidden = patch_weight.shape[0]
    if patch_weight.shape[1] % patch_volume:
        raise ValueError(f"patch embedding width {patch_weight.shape[1]} is not a multiple of the patch volume "
                         f"{patch_volume} of patch_size {patch_size}; pass the right patch_size in --config")
    patch_channels = patch_weight.shape[1] // patch_volume
    head_dim = _require(state, "transformer_blocks.0.attn1.norm_q.weight").shape[0]
    layers = {int(m.group(1)) for k in state for m in [re.match(r"^transformer_blocks\.(\d+)\.", k)] if m}
    concat_padding_mask = overrides.get("concat_padding_mask", True)
    config = dict(
        out_channels=_require(state, "proj_out.weight").shape[0] // patch_volume,
        num_attention_heads=hidden // head_dim,
        attention_head_dim=head_dim,
        num_layers=len(layers),
        mlp_ratio=_require(state, "transformer_blocks.0.ff.net.0.proj.weight").shape[0] / hidden,
        text_embed_dim=_require(state, "transformer_blocks.0.attn2.to_k.weight").shape[1],
        adaln_lora_dim=_require(state, "transformer_blocks.0.norm1.linear_1.weight").shape[0],
        patch_size=patch_size,
        rope_scale=DEFAULT_ROPE_SCALE[kind],
        concat_padding_mask=concat_padding_mask,
    )
    if "learnable_pos_embed.pos_emb_t" in state:
        lengths = [state[f"learnable_pos_embed.pos_emb_{axis}"].shape[0] for axis in "thw"]
        config.update(max_size=tuple(n * p for n, p in zip(lengths, patch_size)), extra_pos_embed_type="learnable")
    else:
        config.update(max_size=DEFAULT_MAX_SIZE, extra_pos_embed_type="sincos" if kind == "multiview" else None)
    input_channels = patch_channels - (1 if concat_padding_mask else 0)
    if kind == "camera":
        camera_channels = overrides.get("camera_channels", 6)
        config.update(camera_channels=camera_channels, in_channels=input_channels - camera_channels)
    elif kind == "action":
        action_features = _require(state, "action_embedder_B_3D.fc1.weight").shape[1]
        num_action_frames = overrides.get("num_action_frames", 1)
        if action_features % num_action_frames:
            raise ValueError(f"the action embedder reads {action_features} features, not a multiple of "
                             f"num_action_frames {num_action_frames}")
        config.update(
            in_channels=input_channels,
            num_action_frames=num_action_frames,
            action_dim=action_features // num_action_frames,
            action_hidden_dim=state["action_embedder_B_3D.fc1.weight"].shape[0],
        )
    else:
        view_embeddings = _require(state, "view_embeddings.weight")
        num_views, view_dim = view_embeddings.shape
        trajectory = state.get("trajectory_embedding.weight")
        trajectory_dim, trajectory_embed_dim = (0, 0) if trajectory is None else (trajectory.shape[1],
                                                                                   trajectory.shape[0])
        config.update(
            in_channels=input_channels - view_dim - trajectory_embed_dim,
            num_views=num_views,
            view_embed_dim=view_dim,
            trajectory_dim=trajectory_dim,
            trajectory_embed_dim=trajectory_embed_dim or None,
            add_frame_repeat_embedding="frame_repeat_embedding.weight" in state,
        )
    config.update(overrides)
    if config["in_channels"] < 1:
        raise ValueError(f"the patch embedding reads {patch_channels} channels, too few for a {kind} model with "
                         f"this configuration")
    return config


def _move_padding_columns_to_the_end(weight: torch.Tensor, patch_volume: int, position: int) -> torch.Tensor:
    out_features = weight.shape[0]
    channels = weight.reshape(out_features, -1, patch_volume)
    order = [c for c in range(channels.shape[1]) if c != position] + [position]
    return channels[:, order].reshape(out_features, -1)


def convert_post_trained_state_dict(state_dict: dict, kind: str, config: dict | None = None):
    """Our `kind` model (camera / action / multiview) holding the weights of a reference state dict.

    `config` overrides the constructor arguments inferred from the weights (see the module docstring). Raises
    ValueError for keys that have no place in the model and for weights the model needs but the checkpoint lacks.
    """
    if kind not in POST_TRAINED_KINDS:
        raise ValueError(f"kind must be one of {list(POST_TRAINED_KINDS)}, got {kind!r}")
    renamed, sources = {}, {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        new_key = rename_reference_key(key, kind)
        if new_key is None:
            continue
        if new_key in renamed:
            raise ValueError(f"checkpoint keys {sources[new_key]!r} and {key!r} both map to {new_key!r}")
        renamed[new_key], sources[new_key] = value, key
    model_config = infer_config(renamed, kind, config)
    model = _model_class(kind)(**model_config)
    if kind == "multiview" and model.config.concat_padding_mask:
        patch_volume = math.prod(model.config.patch_size)
        renamed["patch_embed.proj.weight"] = _move_padding_columns_to_the_end(
            renamed["patch_embed.proj.weight"], patch_volume, model.config.in_channels)
    expected = model.state_dict()
    unexpected = sorted(set(renamed) - set(expected))
    if unexpected:
        raise ValueError(
            f"checkpoint keys with no place in {type(model).__name__}: {[sources[k] for k in unexpected][:20]}"
            f"{' ...' if len(unexpected) > 20 else ''}"
        )
    missing = sorted(set(expected) - set(renamed))
    if missing:
        raise ValueError(f"checkpoint lacks weights of {type(model).__name__}: {missing[:20]}"
                         f"{' ...' if len(missing) > 20 else ''}")
    for key, value in renamed.items():
        if value.shape != expected[key].shape:
            raise ValueError(f"checkpoint weight {sources[key]!r} has shape {tuple(value.shape)}, the model expects "
                             f"{tuple(expected[key].shape)} for {key!r}")
    model.load_state_dict(renamed, strict=True)
    return model.eval()


def convert_post_trained_checkpoint(
    checkpoint,
    out_dir,
    kind: str,
    config: dict | str | None = None,
    dtype: str | None = None,
    allow_pickle: bool = False,
    overwrite: bool = False,
):
    """Convert an official post-trained DiT checkpoint file into a `save_pretrained` folder at `out_dir`.

    `config`: dict, JSON text or a path to a JSON file of constructor overrides. The folder is written atomically; a
    non-empty `out_dir` is refused unless `overwrite=True`, and a folder holding the checkpoint always.
    """
    from pathlib import Path

    from ..utils import atomic_path, check_output_dir, load_state_dict_file

    if kind not in POST_TRAINED_KINDS:
        raise ValueError(f"kind must be one of {list(POST_TRAINED_KINDS)}, got {kind!r}")
    out_dir = check_output_dir(out_dir, overwrite=overwrite, inputs=[checkpoint])
    if isinstance(config, str):
        text = Path(config).read_text() if Path(config).is_file() else config
        try:
            config = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"--config must be a JSON object or a JSON file: {err}") from err
        if not isinstance(config, dict):
            raise ValueError(f"--config must be a JSON object, got {type(config).__name__}")
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype is not None and dtype not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}, got {dtype!r}")
    state_dict = load_state_dict_file(checkpoint, allow_pickle=allow_pickle)
    model = convert_post_trained_state_dict(state_dict, kind, config)
    if dtype is not None:
        model = model.to(dtypes[dtype])
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    return model


def add_arguments(parser):
    parser.add_argument("--kind", dest="post_trained_kind", required=True, choices=POST_TRAINED_KINDS,
                        help="which post-trained model the checkpoint is")
    parser.add_argument("--checkpoint", required=True, help="reference model.pt / .pth (weights only) or .safetensors")
    parser.add_argument("--out", required=True,
                        help="output folder (config.json + diffusion_pytorch_model.safetensors; written "
                             "atomically, new or empty)")
    parser.add_argument("--config", help="JSON object (or JSON file) of constructor overrides, e.g. "
                                         "'{\"rope_scale\": [2, 1, 1], \"num_action_frames\": 1}'")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --out (only once the new folder is complete; never one that holds "
                             "the checkpoint)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="cast weights (default: keep)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow full unpickling of a trusted .pt file (executes code)")


def run(args) -> int:
    model = convert_post_trained_checkpoint(
        args.checkpoint, args.out, args.post_trained_kind, config=args.config, dtype=args.dtype,
        allow_pickle=args.allow_pickle, overwrite=args.overwrite,
    )
    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: {type(model).__name__}, {n_params / 1e6:.2f}M parameters, dtype {model.dtype}")
    return 0


__all__ = [
    "POST_TRAINED_KINDS",
    "add_arguments",
    "convert_post_trained_checkpoint",
    "convert_post_trained_state_dict",
    "infer_config",
    "rename_reference_key",
    "run",
]
