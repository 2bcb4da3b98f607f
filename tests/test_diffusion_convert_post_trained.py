"""Post-trained DiT converter: reference-layout state dicts (built from tiny models by the inverse mapping) convert
back to the same models, every key is consumed, bad checkpoints are refused, the CLI keeps outputs safe."""

import re

import pytest
import torch
from safetensors.torch import save_file

from cosmos_hf.cli import main as cli_main
from cosmos_hf.diffusion import (
    CosmosActionConditionedTransformer3DModel,
    CosmosCameraControlTransformer3DModel,
    CosmosMultiViewTransformer3DModel,
    convert_post_trained_checkpoint,
    convert_post_trained_state_dict,
)
from cosmos_hf.diffusion.nano import tiny_transformer

# ours -> reference, written out independently of the converter's forward renames
_TOP = {
    "patch_embed.proj.weight": "x_embedder.proj.1.weight",
    "time_embed.t_embedder.linear_1.weight": "t_embedder.1.linear_1.weight",
    "time_embed.t_embedder.linear_2.weight": "t_embedder.1.linear_2.weight",
    "time_embed.norm.weight": "affline_norm.weight",
    "learnable_pos_embed.pos_emb_t": "extra_pos_embedder.pos_emb_t",
    "learnable_pos_embed.pos_emb_h": "extra_pos_embedder.pos_emb_h",
    "learnable_pos_embed.pos_emb_w": "extra_pos_embedder.pos_emb_w",
    "norm_out.linear_1.weight": "final_layer.adaLN_modulation.1.weight",
    "norm_out.linear_2.weight": "final_layer.adaLN_modulation.2.weight",
    "proj_out.weight": "final_layer.linear.weight",
}
_ATTENTION = {"to_q": "to_q.0", "norm_q": "to_q.1", "to_k": "to_k.0", "norm_k": "to_k.1", "to_v": "to_v.0",
              "to_out.0": "to_out.0"}
_NEW = {"trajectory_embedding.": "traj_embeddings.", "frame_repeat_embedding.": "repeat_frame_embedding."}


def _reference_key(key: str) -> str:
    if key in _TOP:
        return _TOP[key]
    for ours, theirs in _NEW.items():
        if key.startswith(ours):
            return theirs + key[len(ours):]
    if key.startswith(("action_embedder_", "view_embeddings.")):
        return key
    block, rest = re.match(r"^transformer_blocks\.(\d+)\.(.+)$", key).groups()
    prefix = f"blocks.block{block}.blocks."
    if m := re.match(r"^attn([12])\.(.+)\.weight$", rest):
        return f"{prefix}{int(m.group(1)) - 1}.block.attn.{_ATTENTION[m.group(2)]}.weight"
    if m := re.match(r"^norm([123])\.linear_([12])\.weight$", rest):
        return f"{prefix}{int(m.group(1)) - 1}.adaLN_modulation.{m.group(2)}.weight"
    return {"ff.net.0.proj.weight": f"{prefix}2.block.layer1.weight",
            "ff.net.2.weight": f"{prefix}2.block.layer2.weight"}[rest]


def reference_state_dict(model) -> dict:
    """The state dict the reference network would hold for `model`: `net.` keys, reference channel order, and the
    training-only entries a released checkpoint carries."""
    state = {}
    for key, value in model.state_dict().items():
        if key == "patch_embed.proj.weight" and isinstance(model, CosmosMultiViewTransformer3DModel):
            # reference patch-embed order: [input | padding | view | trajectory]; ours ends with the padding channel
            channels = value.reshape(value.shape[0], -1, 4)
            position = model.config.in_channels
            order = list(range(position)) + [channels.shape[1] - 1] + list(range(position, channels.shape[1] - 1))
            value = channels[:, order].reshape(value.shape[0], -1)
        state["net." + _reference_key(key)] = value.clone()
    state["net.pos_embedder.seq"] = torch.arange(16.0)
    state["net.logvar.0.freqs"] = torch.randn(128)
    state["net.logvar.1.weight"] = torch.randn(1, 128)
    return state


def _trained(model, seed=5):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def _inputs(frames=2, batch=2, text_tokens=5):
    g = torch.Generator().manual_seed(0)
    return dict(
        hidden_states=torch.randn(batch, 4, frames, 8, 8, generator=g),
        timestep=torch.rand(batch, generator=g),
        encoder_hidden_states=torch.randn(batch, text_tokens, 16, generator=g),
        fps=24,
        condition_mask=torch.zeros(batch, 1, frames, 8, 8),
        padding_mask=torch.zeros(1, 1, 8, 8),
        return_dict=False,
    )


def _models():
    base = tiny_transformer(video2world=True)
    return {
        "camera": (_trained(CosmosCameraControlTransformer3DModel.from_video2world(base)),
                   {"plucker": torch.randn(2, 6, 2, 8, 8)}, {}),
        "action": (_trained(CosmosActionConditionedTransformer3DModel.from_video2world(base, num_action_frames=1)),
                   {"action": torch.randn(2, 1, 7)}, {}),
        "multiview": (_trained(CosmosMultiViewTransformer3DModel.from_video2world(
            base, num_views=2, view_embed_dim=3, trajectory_dim=6, trajectory_embed_dim=2,
            add_frame_repeat_embedding=True)), {"trajectory": torch.randn(2, 6), "frame_repeat": torch.rand(2, 2)},
            {"frames": 4, "text_tokens": 10}),
    }


@pytest.mark.parametrize("kind", ["camera", "action", "multiview"])
def test_reference_state_dict_converts_to_the_same_model(kind):
    model, extra, sizes = _models()[kind]
    overrides = {"rope_scale": (1.0, 1.0, 1.0), "patch_size": (1, 2, 2)}
    converted = convert_post_trained_state_dict(reference_state_dict(model), kind, overrides)
    assert type(converted) is type(model)
    for key, value in model.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value), key
    inputs = _inputs(**sizes)
    assert torch.equal(converted(**inputs, **extra)[0], model(**inputs, **extra)[0])


def test_converter_infers_the_configuration_from_the_weights():
    model, _, _ = _models()["multiview"]
    converted = convert_post_trained_state_dict(reference_state_dict(model), "multiview")
    ours, theirs = dict(model.config), dict(converted.config)
    for key in ("in_channels", "out_channels", "num_attention_heads", "attention_head_dim", "num_layers", "mlp_ratio",
                "text_embed_dim", "adaln_lora_dim", "max_size", "num_views", "view_embed_dim", "trajectory_dim",
                "trajectory_embed_dim", "add_frame_repeat_embedding", "extra_pos_embed_type"):
        assert tuple(theirs[key]) == tuple(ours[key]) if isinstance(ours[key], (list, tuple)) else \
            theirs[key] == ours[key], key
    assert tuple(theirs["rope_scale"]) == (1.0, 1.0, 1.0)  # the released multi-view models' RoPE


def test_released_multiview_layout_without_learnable_tables_uses_sincos():
    model = CosmosMultiViewTransformer3DModel(**{**dict(tiny_transformer(video2world=True).config), "num_views": 2,
                                                 "view_embed_dim": 3, "extra_pos_embed_type": "sincos"})
    converted = convert_post_trained_state_dict(reference_state_dict(model), "multiview")
    assert converted.config.extra_pos_embed_type == "sincos"


def test_converter_consumes_every_key():
    model, _, _ = _models()["action"]
    state = reference_state_dict(model)
    state["net.action_embedder_B_D.fc3.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="no place in CosmosActionConditionedTransformer3DModel: "
                                         "\\['net.action_embedder_B_D.fc3.weight'\\]"):
        convert_post_trained_state_dict(state, "action")
    state = reference_state_dict(model)
    del state["net.action_embedder_B_3D.fc2.bias"]
    with pytest.raises(ValueError, match="lacks weights .*action_embedder_B_3D.fc2.bias"):
        convert_post_trained_state_dict(state, "action")
    with pytest.raises(ValueError, match="lacks 'view_embeddings.weight'"):
        convert_post_trained_state_dict(reference_state_dict(model), "multiview")
    with pytest.raises(ValueError, match="kind must be one of"):
        convert_post_trained_state_dict(reference_state_dict(model), "lidar")


def test_convert_checkpoint_file_and_cli(tmp_path, capsys):
    model, extra, _ = _models()["camera"]
    checkpoint = tmp_path / "model.pt"
    torch.save({"model": reference_state_dict(model)}, checkpoint)
    config = '{"rope_scale": [1.0, 1.0, 1.0]}'
    out = tmp_path / "converted"
    assert cli_main(["convert", "post-trained", "--kind", "camera", "--checkpoint", str(checkpoint), "--out", str(out),
                     "--config", config]) == 0
    loaded = CosmosCameraControlTransformer3DModel.from_pretrained(out)
    inputs = _inputs()
    assert torch.equal(loaded(**inputs, **extra)[0], model(**inputs, **extra)[0])
    assert (out / "diffusion_pytorch_model.safetensors").is_file()
    # a non-empty --out is refused without --overwrite, and left as it was
    before = sorted(p.name for p in out.iterdir())
    assert cli_main(["convert", "post-trained", "--kind", "camera", "--checkpoint", str(checkpoint), "--out",
                     str(out)]) != 0
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before
    # safetensors input works too
    safetensors_file = tmp_path / "model.safetensors"
    save_file(reference_state_dict(model), safetensors_file)
    convert_post_trained_checkpoint(safetensors_file, tmp_path / "from_st", "camera", config=config)
    assert (tmp_path / "from_st" / "config.json").is_file()


class _NotATensor:
    pass


def test_convert_refuses_pickled_objects(tmp_path):
    checkpoint = tmp_path / "evil.pt"
    torch.save({"net.x": _NotATensor()}, checkpoint)
    with pytest.raises(ValueError, match="only plain tensors are accepted"):
        convert_post_trained_checkpoint(checkpoint, tmp_path / "out", "camera")
    assert not (tmp_path / "out").exists()
