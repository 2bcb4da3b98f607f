"""Reference parity of the AR world model: logits of the public reference (shared/fixtures/reference ar_*) through the
converter path (reference ModelConfig JSON -> config, reference state dict -> key conversion -> strict load)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from cosmos_hf.autoregressive.convert import convert_ar_checkpoint
from cosmos_hf.autoregressive.modeling_cosmos_ar import abs_pos_3d_table, rope_3d_angles, rope_3d_inverse_frequencies

from conftest import FIXTURES  # ../shared/fixtures/reference; tests fail (not skip) without it

CASES = ["ar_base", "ar_video2world", "ar_yarn"]

def _fixture(case):
    folder = FIXTURES / case
    config = json.loads((folder / "config.json").read_text())
    return folder, config, load_file(str(folder / "io.safetensors"))


def _write_reference_config(tmp_path, config):
    path = tmp_path / "reference_config.json"
    path.write_text(json.dumps(config["constructor_kwargs"]))
    return path


def _forward(model, io):
    kwargs = {}
    if "context" in io:
        kwargs = dict(encoder_hidden_states=io["context"], encoder_attention_mask=io["context_mask"])
    with torch.no_grad():
        return model(io["tokens"], use_cache=False, **kwargs).logits


@pytest.mark.parametrize("case", CASES)
def test_logits_match_reference(case, tmp_path):
    folder, config, io = _fixture(case)
    model = convert_ar_checkpoint(
        folder / "state_dict.safetensors", reference_config=_write_reference_config(tmp_path, config)
    )
    # positions fed explicitly as the reference's input_pos, to pin the t-major indexing
    assert torch.equal(io["input_pos"], torch.arange(io["tokens"].shape[1]))
    torch.testing.assert_close(_forward(model, io), io["logits"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_rope_tables_match_reference(case):
    _, config, io = _fixture(case)
    from cosmos_hf.autoregressive.convert import build_config

    ours = rope_3d_angles(build_config(reference_config=config["constructor_kwargs"]))
    torch.testing.assert_close(ours.cos(), io["rope_cos"][0, :, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.sin(), io["rope_sin"][0, :, 0], rtol=0, atol=1e-6)


def test_rope_split_and_yarn_frequencies_match_reference_checks():
    """The fixture notes list the reference's inverse frequencies (head_dim 32 -> t/h/w = 12/10/10 channels)."""
    from cosmos_hf.autoregressive.convert import build_config

    for case in ("ar_base", "ar_yarn"):
        _, config, _ = _fixture(case)
        checks = json.loads(config["notes"].split("Checks: ", 1)[1])
        temporal, spatial = rope_3d_inverse_frequencies(build_config(reference_config=config["constructor_kwargs"]))
        assert [2 * len(temporal), 2 * len(spatial), 2 * len(spatial)] == checks["rope_head_dim_split_t_h_w"]
        torch.testing.assert_close(temporal, torch.tensor(checks["rope_temporal_inv_freq"]), rtol=1e-6, atol=0)
        torch.testing.assert_close(spatial, torch.tensor(checks["rope_spatial_inv_freq"]), rtol=1e-6, atol=0)


def test_video2world_abs_pos_table_and_embedding_rows():
    folder, config, io = _fixture("ar_video2world")
    model = convert_ar_checkpoint(folder / "state_dict.safetensors", reference_config=config["constructor_kwargs"])
    assert model.config.use_bov_token and model.config.bov_token_id == 1024
    assert model.model.embed_tokens.weight.shape[0] == 1088  # vocab + 1 rounded up to 64
    assert model.lm_head.weight.shape[0] == 1024
    table = abs_pos_3d_table(model.config).float()
    torch.testing.assert_close(table, io["abs_pos_emb"][0], rtol=0, atol=1e-6)
    assert table[0].abs().max() == 0  # <bov> row


def test_bf16_abs_pos_flag_reproduces_reference_quirk():
    """The unmodified reference adds a bf16-rounded absolute table; the fixture notes give the logit shift."""
    folder, config, io = _fixture("ar_video2world")
    checks = json.loads(config["notes"].split("Checks: ", 1)[1])
    model = convert_ar_checkpoint(
        folder / "state_dict.safetensors", reference_config=config["constructor_kwargs"], abs_pos_emb_dtype="bfloat16"
    )
    shift = (_forward(model, io) - io["logits"]).abs().max().item()
    assert shift == pytest.approx(checks["logits_maxabs_diff_if_abs_pos_table_were_bf16"], abs=2e-5)


def test_cli_convert_then_auto_load_matches_reference(tmp_path):
    from transformers import AutoModelForCausalLM

    import cosmos_hf  # noqa: F401  (registers cosmos_ar)
    from cosmos_hf.cli import main

    folder, config, io = _fixture("ar_yarn")
    out = tmp_path / "converted"
    argv = ["convert", "ar", "--checkpoint", str(folder / "state_dict.safetensors")]
    argv += ["--reference-config", str(_write_reference_config(tmp_path, config)), "--out", str(out)]
    assert main(argv) == 0
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(model).__name__ == "CosmosARForCausalLM"
    torch.testing.assert_close(_forward(model, io), io["logits"], rtol=1e-4, atol=1e-4)
