"""training/train_autoregressive.py on tiny configs: an `accelerate launch` run that saves a loadable model (next-token
+ z-loss on DV tokens of physics clips), Medusa training with only heads + last two layers + unembedding trainable,
resume from `latest` (bit-identical to an uninterrupted run, no pickle), and config errors."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import cosmos_hf  # noqa: F401  (registers cosmos_ar with the Auto classes)

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "train_autoregressive.py"
CONFIG = REPO / "training" / "configs" / "autoregressive_tiny_test.yaml"


def load_script():
    spec = importlib.util.spec_from_file_location("train_autoregressive", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """2 steps through `accelerate launch` (1 process): the script's real entry point."""
    output = tmp_path_factory.mktemp("ar_base")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT), "--config", str(CONFIG),
               "--output_dir", str(output)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output


def test_accelerate_run_saves_a_loadable_model_trained_with_ce_plus_z_loss(base_run):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_run / "model")
    assert type(model).__name__ == "CosmosARForCausalLM"
    # 5 frames of 32x32 through DV4x8x8 -> a [2, 4, 4] token grid; vocabulary = the tokenizer's 64,000 codes
    assert model.config.latent_shape == [2, 4, 4] and model.config.vocab_size == 64000
    tokens = load_file(str(base_run / "token_cache.safetensors"))["tokens"]
    assert tokens.shape == (2, 2, 4, 4) and tokens.dtype == torch.int64 and int(tokens.max()) < 64000
    log = [json.loads(line) for line in (base_run / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2]
    for entry in log:
        assert entry["z_loss"] > 0 and entry["loss"] == pytest.approx(entry["ce_loss"] + entry["z_loss"], rel=1e-5)
    assert (base_run / "checkpoint-2" / "train_state.json").is_file()
    assert "CosmosARForCausalLM" in (base_run / "model" / "README.md").read_text()
    # the saved model reproduces the logged loss on a training clip (same weights as trained)
    ids = tokens[:1].reshape(1, -1)
    with torch.no_grad():
        out = model(ids, labels=ids)
    assert torch.isfinite(out.loss) and out.ce_loss < 12.0  # ln(64000) = 11.07: an untrained model sits near it


def test_medusa_trains_heads_last_two_layers_and_unembedding_only(base_run, tmp_path):
    from cosmos_hf.autoregressive.modeling_cosmos_ar import CosmosARForCausalLM

    script = load_script()
    output = tmp_path / "medusa"
    assert script.main(["--config", str(CONFIG), "--output_dir", str(output), "--medusa",
                        "--pretrained_model", str(base_run / "model")]) == 0
    base = CosmosARForCausalLM.from_pretrained(base_run / "model")
    tuned = CosmosARForCausalLM.from_pretrained(output / "model")
    assert tuned.config.medusa_num_heads == 2 and len(tuned.medusa_heads) == 2
    base_state, tuned_state = base.state_dict(), tuned.state_dict()
    num_layers = base.config.num_hidden_layers
    trainable_prefixes = ("lm_head.", *(f"model.layers.{i}." for i in range(num_layers - 2, num_layers)))
    for name, value in base_state.items():
        changed = not torch.equal(value, tuned_state[name])
        if name.startswith(trainable_prefixes) and name.endswith("weight") and "norm" not in name:
            assert changed, f"{name} should have been trained"
        elif not name.startswith(trainable_prefixes):
            assert not changed, f"{name} should be frozen"
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert all(entry["medusa_loss"] > 0 for entry in log)

    # resume: one more step from the latest checkpoint continues the step count
    assert script.main(["--config", str(CONFIG), "--output_dir", str(output), "--medusa", "--pretrained_model",
                        str(base_run / "model"), "--max_train_steps", "3", "--resume_from_checkpoint", "latest"]) == 0
    log = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3


def test_freeze_for_medusa_selects_heads_last_layers_and_lm_head():
    from cosmos_hf import CosmosARConfig
    from cosmos_hf.autoregressive.modeling_cosmos_ar import CosmosARForCausalLM

    script = load_script()
    config = CosmosARConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
                            num_attention_heads=2, num_key_value_heads=1, latent_shape=[2, 2, 2])
    model = script.add_medusa_heads(CosmosARForCausalLM(config), num_heads=3, num_layers=1, init_from_lm_head=True)
    assert torch.equal(model.medusa_heads[0].proj.weight, model.lm_head.weight)
    groups = script.freeze_for_medusa(model, 2)
    assert groups == ["medusa_heads", "lm_head", "model.layers.2", "model.layers.3"]
    trainable = {n.split(".")[0] if not n.startswith("model.layers") else ".".join(n.split(".")[:3])
                 for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"medusa_heads", "lm_head", "model.layers.2", "model.layers.3"}
    with pytest.raises(ValueError, match="unfreeze_last_layers"):
        script.freeze_for_medusa(model, 5)


def test_config_errors_are_clear(tmp_path):
    script = load_script()
    with pytest.raises(ValueError, match="pre-trained model"):
        script.main(["--config", str(CONFIG), "--output_dir", str(tmp_path / "a"), "--medusa"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {}\n")
    with pytest.raises(ValueError, match="tokenizer"):
        script.load_config(bad)
    bad.write_text("tokenizer: tiny\nmodels: {}\n")
    with pytest.raises(ValueError, match="unknown config key `models`.*valid keys at the top level: data, medusa"):
        script.load_config(bad)
    with pytest.raises(ValueError, match="unknown config key `training.batchsize`.*batch_size"):
        script.load_config(CONFIG, ["training.batchsize=4"])
    with pytest.raises(ValueError, match="has 2 clips, fewer than one batch: training.batch_size 4"):
        script.main(["--config", str(CONFIG), "--output_dir", str(tmp_path / "b"), "--set", "training.batch_size=4"])


def test_a_fresh_run_in_a_folder_with_another_runs_checkpoints_is_refused_before_writing(tmp_path):
    """Rerun without --resume_from_checkpoint into a used output_dir: config.yaml was overwritten, rotation deleted the
    new checkpoints (older than the old run's) and `latest` later resumed the old run. Refused before any work."""
    script = load_script()
    old = tmp_path / "run" / "checkpoint-40"
    old.mkdir(parents=True)
    (old / "train_state.json").write_text(json.dumps({"format": "cosmos-hf-training-checkpoint/1", "global_step": 40}))
    (tmp_path / "run" / "config.yaml").write_text("the old run's config\n")
    with pytest.raises(ValueError, match="holds checkpoint-40, later than this run, which starts at step 0"):
        script.main(["--config", str(CONFIG), "--output_dir", str(tmp_path / "run")])
    assert (tmp_path / "run" / "config.yaml").read_text() == "the old run's config\n"
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["checkpoint-40", "config.yaml"]


def test_log_every_0_logs_the_first_and_last_step_and_bad_counts_are_refused_before_any_work(tmp_path):
    """`training.log_every: 0` was a ZeroDivisionError after the first step (after the clips were tokenized), and a
    negative `checkpoints_total_limit` deleted every checkpoint as it was written."""
    script = load_script()
    output = tmp_path / "run"
    assert script.main(["--config", str(CONFIG), "--output_dir", str(output), "--max_train_steps", "3",
                        "--set", "training.batch_size=1", "--set", "training.log_every=0"]) == 0
    assert [json.loads(line)["step"] for line in (output / "train_log.jsonl").open()] == [1, 3]
    with pytest.raises(ValueError, match=r"training.checkpoints_total_limit must be an integer >= 0 or null"):
        script.main(["--config", str(CONFIG), "--output_dir", str(tmp_path / "bad"),
                     "--set", "training.checkpoints_total_limit=-1"])
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    with pytest.raises(SystemExit):  # argparse: "--max_train_steps: must be a positive integer (>= 1), got 0"
        script.main(["--config", str(CONFIG), "--output_dir", str(tmp_path / "bad"), "--max_train_steps", "0"])


def test_model_config_keys_are_checked_and_must_agree_with_a_pretrained_model(tmp_path):
    """`model.config` went to CosmosARConfig, which keeps unknown keywords: `num_hidden_layer: 8` trained the default
    16 layers. With `--pretrained_model` the section was ignored: `z_loss_coeff=0` trained with the model's 1e-4."""
    import yaml

    from cosmos_hf.autoregressive import CosmosARConfig
    from cosmos_hf.autoregressive.modeling_cosmos_ar import CosmosARForCausalLM

    script = load_script()
    with pytest.raises(ValueError, match=r"unknown key\(s\) num_hidden_layer in model.config; valid keys "
                                         r"\(CosmosARConfig\): vocab_size, hidden_size"):
        script.load_config(CONFIG, ["model.config.num_hidden_layer=8"])
    kwargs = yaml.safe_load(CONFIG.read_text())["model"]["config"]
    folder = tmp_path / "pretrained"
    CosmosARForCausalLM(CosmosARConfig(vocab_size=512, latent_shape=[2, 4, 4], **kwargs)).save_pretrained(folder)
    args = ["--config", str(CONFIG), "--output_dir", str(tmp_path / "o"), "--pretrained_model", str(folder)]
    assert script.resolve_config(script.parse_args(args))["model"]["pretrained_model"] == str(folder)  # same values
    with pytest.raises(ValueError, match=r"--set contradicts the pre-trained model .*: model.config."
                                         r"num_hidden_layers=5 but the model has 3; model.config.z_loss_coeff=0 but "
                                         r"the model has 0.0001"):
        script.resolve_config(script.parse_args(args + ["--set", "model.config.z_loss_coeff=0",
                                                        "--set", "model.config.num_hidden_layers=5"]))
    # A YAML that differs from the model (continuing a grown model with the YAML it started from) warns, and the
    # recorded config holds what is trained.
    grown = tmp_path / "grown"
    CosmosARForCausalLM(CosmosARConfig(vocab_size=512, latent_shape=[2, 4, 4], **{**kwargs, "num_hidden_layers": 4})
                        ).save_pretrained(grown)
    with pytest.warns(UserWarning, match=r"keeps its own config: num_hidden_layers=4 \(the YAML's model.config "
                                         r"says 3\)"):
        config = script.resolve_config(script.parse_args(args[:-1] + [str(grown)]))
    assert config["model"]["config"]["num_hidden_layers"] == 4


def assert_training_option_refused(script, tmp_path, key, bad_values, match, medusa_model, medusa_match):
    """`training.<key>` refuses each bad value with `match`, and any value other than its default with --medusa."""
    for bad in bad_values:
        with pytest.raises(ValueError, match=match):
            script.main(["--config", str(CONFIG), "--output_dir", str(tmp_path / "bad"), "--set",
                         f"training.{key}={bad}"])
    with pytest.raises(ValueError, match=medusa_match):
        script.main(["--config", str(CONFIG), "--output_dir", str(tmp_path / "bad"), "--medusa", "--pretrained_model",
                     str(medusa_model), "--set", f"training.{key}=0.5"])


def test_changed_token_loss_weight_weights_what_changes_from_the_previous_latent_frame(tmp_path):
    script = load_script()
    torch.manual_seed(0)
    # <bov> then 3 latent frames of 2 tokens: only frames 1 and 2 have a previous frame to differ from
    ids = torch.tensor([[99, 5, 6, 5, 7, 8, 7]])
    logits = torch.randn(1, 7, 100)
    ce = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="none")
    # targets at sequence positions 1..6; changed from two positions earlier: 4 (7 vs 6) and 5 (8 vs 5)
    weights = torch.tensor([1.0, 1.0, 1.0, 3.0, 3.0, 1.0])
    got = script.changed_token_weighted_cross_entropy(logits, ids, tokens_per_frame=2, video_start=1, weight=3.0)
    torch.testing.assert_close(got, (ce * weights).sum() / weights.sum())
    plain = script.changed_token_weighted_cross_entropy(logits, ids, tokens_per_frame=2, video_start=1, weight=1.0)
    torch.testing.assert_close(plain, ce.mean())  # weight 1 is the reference's cross-entropy
    # a 2-step run with the weight trains and logs the weighted loss next to the plain cross-entropy
    output = tmp_path / "weighted"
    assert script.main(["--config", str(CONFIG), "--output_dir", str(output), "--max_train_steps", "1",
                        "--set", "training.changed_token_loss_weight=4"]) == 0
    entry = json.loads((output / "train_log.jsonl").read_text().splitlines()[0])
    assert entry["loss"] != pytest.approx(entry["ce_loss"] + entry["z_loss"], rel=1e-5)
    assert_training_option_refused(script, tmp_path, "changed_token_loss_weight", ("0", "-1", ".nan"),
                                   "changed_token_loss_weight must be a finite number > 0",
                                   medusa_model=output / "model", medusa_match="base next-token loss only")


def test_scheduled_sampling_feeds_back_the_models_argmax_from_the_second_latent_frame(tmp_path):
    script = load_script()
    ids = torch.tensor([[99, 5, 6, 5, 7, 8, 7]])  # <bov> then 3 latent frames of 2 tokens
    logits = torch.full((1, 7, 100), -1.0)
    for i, token in enumerate([11, 12, 13, 14, 15, 16, 17]):  # the logits at i predict the token at i + 1
        logits[0, i, token] = 5.0
    torch.manual_seed(0)
    assert torch.equal(script.mix_in_model_predictions(ids, logits, 0.0, start=3), ids)
    every = script.mix_in_model_predictions(ids, logits, 1.0, start=3)  # from the second latent frame on
    assert every.tolist() == [[99, 5, 6, 13, 14, 15, 16]]
    torch.manual_seed(0)
    half = script.mix_in_model_predictions(torch.zeros(1, 4000, dtype=torch.long), torch.zeros(1, 4000, 3).index_fill_(
        2, torch.tensor([2]), 1.0), 0.5, start=1000)
    assert not half[:, :1000].any() and 0.45 < (half[:, 1000:] == 2).float().mean() < 0.55
    # a 1-step run trains on the mixed inputs against the true tokens; bad rates and Medusa are refused
    output = tmp_path / "scheduled"
    assert script.main(["--config", str(CONFIG), "--output_dir", str(output), "--max_train_steps", "1",
                        "--set", "training.scheduled_sampling_rate=0.5"]) == 0
    assert "scheduled_sampling_rate 0.5" in (output / "model" / "README.md").read_text()
    assert_training_option_refused(script, tmp_path, "scheduled_sampling_rate", ("1", "-0.1", ".nan"),
                                   r"scheduled_sampling_rate must be a number in \[0, 1\)",
                                   medusa_model=output / "model", medusa_match="applies to the base model")


def test_grow_layers_deepens_a_model_without_changing_its_outputs(tmp_path):
    from cosmos_hf import CosmosARConfig
    from cosmos_hf.autoregressive.modeling_cosmos_ar import CosmosARForCausalLM

    script = load_script()
    torch.manual_seed(0)
    config = CosmosARConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                            num_attention_heads=2, num_key_value_heads=1, latent_shape=[2, 2, 2])
    model = CosmosARForCausalLM(config).eval()
    grown = script.grow_layers(model, 5).eval()
    assert grown.config.num_hidden_layers == 5 and model.config.num_hidden_layers == 3
    ids = torch.randint(0, 64, (2, 8))
    torch.testing.assert_close(grown(input_ids=ids).logits, model(input_ids=ids).logits)
    # old layers 0, 1, 2 at 0, 2, 3; the new ones (1, 4) follow old 0 and 2 as copies with zeroed output projections
    for new_index, old_index in ((0, 0), (1, 0), (2, 1), (3, 2), (4, 2)):
        torch.testing.assert_close(grown.model.layers[new_index].self_attn.q_proj.weight,
                                   model.model.layers[old_index].self_attn.q_proj.weight)
    for new_index in (1, 4):
        assert not grown.model.layers[new_index].self_attn.o_proj.weight.any()
        assert not grown.model.layers[new_index].mlp.down_proj.weight.any()
    assert grown.model.layers[2].self_attn.o_proj.weight.any()
    assert script.grow_layers(model, 3) is model
    for bad in (2, 4.5, "6"):
        with pytest.raises(ValueError, match="grow_num_hidden_layers must be an integer >= the model's 3 layers"):
            script.grow_layers(model, bad)
    interleaved = CosmosARForCausalLM(CosmosARConfig(**{**config.to_dict(), "insert_cross_attention": True,
                                                        "cross_attention_every_k_layers": 2,
                                                        "cross_attention_dim": 8}))
    with pytest.raises(ValueError, match="cross-attention in every layer or in none"):
        script.grow_layers(interleaved, 4)
    # the training script grows a pre-trained model and trains it; without one it refuses
    output = tmp_path / "first"
    assert script.main(["--config", str(CONFIG), "--output_dir", str(output), "--max_train_steps", "1"]) == 0
    depth = json.loads((output / "model" / "config.json").read_text())["num_hidden_layers"]
    assert script.main(["--config", str(CONFIG), "--output_dir", str(tmp_path / "grown"), "--max_train_steps", "1",
                        "--pretrained_model", str(output / "model"),
                        "--set", f"model.grow_num_hidden_layers={depth + 2}"]) == 0
    assert json.loads((tmp_path / "grown" / "model" / "config.json").read_text())["num_hidden_layers"] == depth + 2
    with pytest.raises(ValueError, match="grow_num_hidden_layers deepens a pre-trained model"):
        script.main(["--config", str(CONFIG), "--output_dir", str(tmp_path / "bad"), "--set",
                     "model.grow_num_hidden_layers=8"])


def test_token_cache_cycles_views_and_refuses_a_cache_of_other_clips(tmp_path):
    from cosmos_hf.data import physics_token_cache

    script = load_script()
    tokenizer = script.load_dv_tokenizer("tiny")
    data = {"num_clips": 2, "seed_offset": 5, "scenes": ["free_fall"], "num_frames": 5, "height": 32, "width": 32,
            "fps": 12, "views": [0, 1]}
    cache = tmp_path / "token_cache.safetensors"
    tokens, captions = physics_token_cache(data, tokenizer, cache, write=True)
    assert tokens.shape == (2, 2, 4, 4) and len(captions) == 2
    # clip 1 is the same scene seen from view 1
    from cosmos_hf.sim import simulate

    video = simulate("free_fall", seed=6, num_frames=5, height=32, width=32, fps=12, view=1).video
    expected = tokenizer.tokenize(torch.from_numpy(video).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0)[0]
    assert torch.equal(tokens[1], expected)
    again, _ = physics_token_cache(data, tokenizer, cache, write=True)  # read back from the cache
    assert torch.equal(again, tokens)
    with pytest.raises(ValueError, match=r"made for other clips \(views: cache \[0, 1\] vs config \[0\]\)"):
        physics_token_cache({**data, "views": [0]}, tokenizer, cache, write=True)
    # another tokenizer with the same grid (here: other weights) used to get this tokenizer's tokens back
    other = script.load_dv_tokenizer("tiny")
    with torch.no_grad():
        next(other.parameters()).add_(0.5)
    with pytest.raises(ValueError, match=r"made for other clips \(tokenizer: cache"):
        physics_token_cache(data, other, cache, write=True)
    # captions that are not the ones written with the tokens (same length) are refused, not paired with them
    captions_path = cache.with_suffix(".captions.json")
    captions_path.write_text(json.dumps(["another caption"] * 2))
    with pytest.raises(ValueError, match=r"made for other clips \(captions_sha1: cache"):
        physics_token_cache(data, tokenizer, cache, write=True)


class WritesAMarkerWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resumed_run_reproduces_the_uninterrupted_run_exactly_without_unpickling(tmp_path):
    script = load_script()
    # 3 clips at batch 1: 4 steps cross an epoch boundary; a checkpoint and a log line every step
    args = ["--config", str(CONFIG), "--max_train_steps", "4", "--set", "data.num_clips=3", "--set",
            "training.batch_size=1", "--set", "training.checkpoints_total_limit=10"]
    straight = tmp_path / "straight"
    assert script.main(args + ["--output_dir", str(straight)]) == 0
    # a crash after checkpoint 2: later checkpoints and the model gone, the log already holding steps 3 and 4
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    for name in ("checkpoint-3", "checkpoint-4", "model"):
        shutil.rmtree(resumed / name)
    marker = tmp_path / "code-ran"
    for name in ("random_states_0.pkl", "optimizer.bin", "scheduler.bin", "custom_checkpoint_0.pkl"):
        torch.save(WritesAMarkerWhenUnpickled(marker), resumed / "checkpoint-2" / name)  # a torch.load-able pickle
    assert script.main(args + ["--output_dir", str(resumed), "--resume_from_checkpoint", "latest"]) == 0
    assert not marker.exists()
    a, b = (load_file(str(run / "model" / "model.safetensors")) for run in (straight, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def losses(run):
        return [(entry["step"], entry["loss"]) for entry in map(json.loads, (run / "train_log.jsonl").open())]

    assert [step for step, _ in losses(resumed)] == [1, 2, 3, 4] and losses(resumed) == losses(straight)


def test_max_train_minutes_stops_at_what_fits_and_saves_the_model(tmp_path):
    """A 0.03-second budget: after the 30 timing steps nothing more fits, so a 500-step run ends at step 30 (the
    budget logic itself, with a fake clock: tests/test_training_data_layer.py)."""
    script = load_script()
    args = ["--config", str(CONFIG), "--max_train_steps", "500", "--max_train_minutes", "0.0005", "--set",
            "data.num_clips=3", "--set", "training.batch_size=1", "--set", "training.checkpointing_steps=0",
            "--output_dir", str(tmp_path)]
    assert script.main(args) == 0
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 30 and (tmp_path / "model" / "model.safetensors").is_file()


def test_assemble_ar_pipeline_saves_the_trained_model_with_its_call_defaults(base_run, tmp_path):
    spec = importlib.util.spec_from_file_location("assemble_ar_pipeline", REPO / "training" / "assemble_ar_pipeline.py")
    assemble = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assemble)
    load_script().load_dv_tokenizer("tiny").save_pretrained(tmp_path / "dv")  # the run's tokenizer, as a folder
    out = tmp_path / "pipeline"
    assert assemble.main(["--ar-model", str(base_run / "model"), "--dv-tokenizer", str(tmp_path / "dv"),
                          "--condition-keep-threshold", "0.1", "--condition-detail-gate", "0.25",
                          "--previous-frame-logit-bias", "2", "--out", str(out)]) == 0
    from cosmos_hf import CosmosARVideo2WorldPipeline

    config = CosmosARVideo2WorldPipeline.load_config(out)
    assert config["default_condition_keep_threshold"] == 0.1 and config["default_condition_detail_gate"] == 0.25
    assert config["default_previous_frame_logit_bias"] == 2.0
    pipe = CosmosARVideo2WorldPipeline.from_pretrained(out)
    assert pipe.ar_model.config.latent_shape == [2, 4, 4] and not pipe.has_diffusion_decoder
    with pytest.raises(SystemExit):  # an RGB distance outside (0, 1] is refused before anything is written
        assemble.main(["--ar-model", str(base_run / "model"), "--dv-tokenizer", str(tmp_path / "dv"),
                       "--condition-detail-gate", "2", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit):
        assemble.main(["--ar-model", str(base_run / "model"), "--dv-tokenizer", str(tmp_path / "dv"),
                       "--previous-frame-logit-bias", "nan", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()


def test_assemble_ar_pipeline_refuses_an_out_folder_it_would_delete(base_run, tmp_path):
    """--out is replaced as a whole: a folder of other files needs --overwrite, and the training run that holds
    --ar-model is refused even with it (both used to be deleted without a word)."""
    spec = importlib.util.spec_from_file_location("assemble_ar_pipeline", REPO / "training" / "assemble_ar_pipeline.py")
    assemble = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assemble)
    load_script().load_dv_tokenizer("tiny").save_pretrained(tmp_path / "dv")
    run = tmp_path / "run"
    shutil.copytree(base_run / "model", run / "model")
    (run / "notes.txt").write_text("keep me")
    common = ["--ar-model", str(run / "model"), "--dv-tokenizer", str(tmp_path / "dv")]
    with pytest.raises(SystemExit):
        assemble.main([*common, "--out", str(run)])
    with pytest.raises(SystemExit):
        assemble.main([*common, "--out", str(run), "--overwrite"])
    assert (run / "notes.txt").read_text() == "keep me" and (run / "model" / "model.safetensors").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        assemble.main([*common, "--out", str(other)])
    assert (other / "notes.txt").read_text() == "keep me"
    assert assemble.main([*common, "--out", str(other), "--overwrite"]) == 0
    assert (other / "model_index.json").is_file() and not (other / "notes.txt").exists()


def test_next_token_report_scores_the_biased_argmax_between_the_model_and_copying(base_run, tmp_path, capsys):
    """training/report_nano_ar.py: bias 0 is the model's own top-1; a huge bias always picks the previous latent
    frame's token, so it scores exactly the copy predictor."""
    spec = importlib.util.spec_from_file_location("report_nano_ar", REPO / "training" / "report_nano_ar.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    load_script().load_dv_tokenizer("tiny").save_pretrained(tmp_path / "dv")  # the run's tokenizer, as a folder
    assert report.main(["--model", str(base_run / "model"), "--tokenizer", str(tmp_path / "dv"), "--clips", "2",
                        "--previous-frame-logit-bias", "0", "1e4"]) == 0
    scores = json.loads(capsys.readouterr().out)["all"]
    assert scores["model_top1_bias_0"] == scores["model_top1"]
    assert scores["model_top1_bias_10000"] == scores["previous_frame_top1"]
    assert scores["model_top1"] != scores["previous_frame_top1"]  # the two ends differ: the bias has room to act
    # the changed / unchanged split recombines into the overall top-1, and copying is right exactly where unchanged
    assert scores["changed_fraction"] == pytest.approx(1 - scores["previous_frame_top1"], abs=2e-4)
    changed = scores["changed_fraction"]
    assert (changed * scores["model_top1_changed"] + (1 - changed) * scores["model_top1_unchanged"]
            == pytest.approx(scores["model_top1"], abs=1e-3))


def test_next_token_report_refuses_a_bias_given_twice_and_clips_past_the_held_out_seeds(base_run, tmp_path, capsys):
    """training/report_nano_ar.py: a bias given twice (`1 1.0`) was counted twice into one counter, so its top-1 came
    out doubled (above 1); `--clips 1001` scored training seed 1000 as held out. Both are refused up front."""
    spec = importlib.util.spec_from_file_location("report_nano_ar", REPO / "training" / "report_nano_ar.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    load_script().load_dv_tokenizer("tiny").save_pretrained(tmp_path / "dv")
    common = ["--model", str(base_run / "model"), "--tokenizer", str(tmp_path / "dv")]
    for bad in (["--clips", "2", "--previous-frame-logit-bias", "1", "1.0"], ["--clips", "1001"], ["--clips", "0"]):
        with pytest.raises(SystemExit):
            report.main([*common, *bad])
        assert "--" in capsys.readouterr().err  # the parser names the option
