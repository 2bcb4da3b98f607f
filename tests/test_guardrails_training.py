"""training/train_safety_head.py: learns separable embeddings, resumes from checkpoints, writes a loadable head."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from cosmos_hf.guardrails import VideoSafetyHead

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "train_safety_head.py"


def load_script():
    spec = importlib.util.spec_from_file_location("train_safety_head", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_config(tmp_path, **train):
    # 7 Gaussian clusters in 16-d: a head that learns anything separates them
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(7, 16, generator=g) * 3
    labels = torch.arange(7).repeat_interleave(40)
    embeddings = centers[labels] + 0.5 * torch.randn(len(labels), 16, generator=g)
    save_file({"embeddings": embeddings, "labels": labels}, str(tmp_path / "emb.safetensors"))
    config = dict(output_dir=str(tmp_path / "out"), model=dict(hidden_sizes=[32, 16]),
                  data=dict(embeddings_file=str(tmp_path / "emb.safetensors"), val_fraction=0.2),
                  train=dict(batch_size=32, learning_rate=0.01, max_train_steps=60, checkpointing_steps=30,
                             validation_steps=30, **train))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "config.yaml"


def test_trains_a_head_that_separates_classes_and_resumes(tmp_path):
    script = load_script()
    config = make_config(tmp_path)
    script.main(["--config", str(config), "--max_train_steps", "30"])
    assert (tmp_path / "out" / "checkpoint-30").is_dir()
    record = script.main(["--config", str(config), "--resume_from_checkpoint", "latest"])
    steps = [json.loads(line)["step"] for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 61))  # the second run continued at 31, it did not start over
    assert record["val_accuracy"] > 0.9
    head = VideoSafetyHead.from_pretrained(tmp_path / "out" / "head")
    assert head.num_classes == 7 and head.config.input_size == 16


def test_bad_data_is_named(tmp_path):
    script = load_script()
    config = make_config(tmp_path)
    bad = {"embeddings": torch.zeros(4, 16), "labels": torch.tensor([0, 1, 2, 9])}
    save_file(bad, str(tmp_path / "emb.safetensors"))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 6\]"):
        script.main(["--config", str(config)])
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"data": {}}))
    with pytest.raises(ValueError, match="exactly one of"):
        script.main(["--config", str(tmp_path / "bad.yaml")])
