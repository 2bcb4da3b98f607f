"""`cosmos-hf convert ar` / convert_ar_checkpoint: released variants (config-only, meta device), checkpoint formats
(model.pt read weights-only, fused QKV, "model." prefix), and clear errors on bad input."""

import json

import pytest
import torch
from safetensors.torch import load_file

from cosmos_hf import CosmosARConfig, CosmosARForCausalLM, convert_ar_checkpoint
from cosmos_hf.autoregressive.convert import build_config
from cosmos_hf.autoregressive.modeling_cosmos_ar import rope_3d_inverse_frequencies

from conftest import FIXTURES  # ../shared/fixtures/reference; tests fail (not skip) without it


@pytest.mark.parametrize(
    "variant, billions, layers, hidden, embed_rows, positions, yarn, cross",
    [
        ("4B", 4, 16, 4096, 64000, 12800, False, False),
        ("5B-Video2World", 5, 16, 4096, 64064, 12864, False, True),
        ("12B", 12, 40, 5120, 64000, 12800, True, False),
        ("13B-Video2World", 13, 40, 5120, 64064, 12864, True, True),
    ],
)
def test_released_variants_on_meta_device(variant, billions, layers, hidden, embed_rows, positions, yarn, cross):
    config = CosmosARConfig.from_variant(variant)
    with torch.device("meta"):
        model = CosmosARForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    assert round(n_params / 1e9) == billions
    assert (config.num_hidden_layers, config.hidden_size, config.head_dim) == (layers, hidden, 128)
    assert (config.num_attention_heads, config.num_key_value_heads, config.intermediate_size) == (32, 8, 14336)
    assert config.vocab_size == 64000 and config.latent_shape == [5, 40, 64] and config.rope_theta == 500000
    assert model.model.embed_tokens.weight.shape == (embed_rows, hidden)
    assert model.lm_head.weight.shape == (64000, hidden)
    assert model.model.position_tables.table_size == positions
    assert config.use_yarn == yarn and config.use_abs_pos_emb == cross and config.use_bov_token == cross
    assert all((layer.cross_attn is not None) == cross for layer in model.model.layers)
    if cross:
        assert model.model.layers[0].cross_attn.k_proj.weight.shape == (8 * 128, 1024)  # T5-XXL context
    if yarn:
        assert config.yarn_original_latent_shape == [3, 40, 64] and config.yarn_scale == 2


def test_head_dim_128_splits_rope_44_42_42_and_yarn_scales_per_axis():
    plain_t, plain_s = rope_3d_inverse_frequencies(CosmosARConfig.from_variant("4B"))
    yarn_t, yarn_s = rope_3d_inverse_frequencies(CosmosARConfig.from_variant("12B"))
    assert [2 * len(plain_t), 2 * len(plain_s), 2 * len(plain_s)] == [44, 42, 42]
    # H/W against the original H = 40: the fastest frequencies are kept, the slowest divided by 2, a ramp between.
    ratio = yarn_s / plain_s
    assert ratio[0] == 1 and torch.isclose(ratio[-1], torch.tensor(0.5))
    assert ((ratio > 0.5 + 1e-4) & (ratio < 1 - 1e-4)).any()
    # T against the original T = 3: even the fastest temporal frequency (1 rad/frame) lies below
    # 2*pi*beta_slow/3, so the reference divides *every* temporal frequency by the scale.
    torch.testing.assert_close(yarn_t / plain_t, torch.full_like(plain_t, 0.5))


def _reference_state(case="ar_base"):
    return load_file(str(FIXTURES / case / "state_dict.safetensors")), json.loads(
        (FIXTURES / case / "config.json").read_text()
    )


def _logits(model, case="ar_base"):
    io = load_file(str(FIXTURES / case / "io.safetensors"))
    with torch.no_grad():
        return model(io["tokens"], use_cache=False).logits, io["logits"]


def test_model_pt_with_prefix_is_read_weights_only_and_matches(tmp_path):
    state, config = _reference_state()
    path = tmp_path / "model.pt"
    torch.save({"model": {f"model.{k}": v for k, v in state.items()}}, path)
    out = tmp_path / "out"
    model = convert_ar_checkpoint(path, out, reference_config=config["constructor_kwargs"], dtype="float32")
    got, expected = _logits(model)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    reloaded = CosmosARForCausalLM.from_pretrained(out)
    assert reloaded.config.dtype == torch.float32
    torch.testing.assert_close(_logits(reloaded)[0], got, rtol=0, atol=0)


def test_fused_qkv_checkpoint_is_split():
    state, config = _reference_state()
    fused = {}
    for key, value in state.items():
        if key.endswith("attention.wq.weight") and "cross" not in key:
            prefix = key[: -len("wq.weight")]
            fused[prefix + "wqkv.weight"] = torch.cat(
                [state[prefix + "wq.weight"], state[prefix + "wk.weight"], state[prefix + "wv.weight"]]
            )
        elif not (key.endswith("attention.wk.weight") or key.endswith("attention.wv.weight")):
            fused[key] = value
    model = convert_ar_checkpoint(fused, reference_config=config["constructor_kwargs"])
    got, expected = _logits(model)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


class _NotATensor:
    pass


def test_pickled_objects_are_refused_by_default(tmp_path):
    state, config = _reference_state()
    path = tmp_path / "model.pt"
    torch.save({"model": state, "extra": _NotATensor()}, path)
    with pytest.raises(ValueError, match="only plain tensors are accepted"):
        convert_ar_checkpoint(path, reference_config=config["constructor_kwargs"])


def test_mismatched_checkpoint_errors_and_leaves_no_output(tmp_path):
    state, config = _reference_state()
    out = tmp_path / "out"
    # the 4B architecture does not fit a tiny checkpoint
    with pytest.raises(ValueError, match=r"does not match the configured architecture.*wrong --variant"):
        convert_ar_checkpoint(state, out, variant="4B")
    wider = json.loads(json.dumps(config["constructor_kwargs"]))
    wider["params"]["ffn_hidden_size"] = 256
    with pytest.raises(ValueError, match=r"shape mismatch for model.layers.0.mlp.gate_proj.weight"):
        convert_ar_checkpoint(state, out, reference_config=wider)
    # Video2World config on a base checkpoint: cross-attention weights are missing
    v2w = json.loads((FIXTURES / "ar_video2world" / "config.json").read_text())["constructor_kwargs"]
    with pytest.raises(ValueError, match="missing"):
        convert_ar_checkpoint(state, out, reference_config=v2w)
    with pytest.raises(ValueError, match="not part of the Cosmos AR network: vision_encoder.x"):
        convert_ar_checkpoint({**state, "vision_encoder.x": torch.zeros(1)}, out, reference_config=config)
    assert not out.exists()


def test_build_config_requires_exactly_one_source_and_valid_variant():
    with pytest.raises(ValueError, match="exactly one"):
        build_config()
    with pytest.raises(ValueError, match="unknown variant '7B'"):
        build_config(variant="7B")
    with pytest.raises(ValueError, match="lacks ModelConfig fields"):
        build_config(reference_config={"dim": 8})


def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    from cosmos_hf.cli import main

    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    code = main(["convert", "ar", "--checkpoint", str(bad), "--variant", "4B", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "cannot read checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
