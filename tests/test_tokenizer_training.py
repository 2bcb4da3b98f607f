"""training/train_tokenizer.py: accelerate launch, resume, every loss term, NaN guard."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "train_tokenizer.py"
TINY = REPO / "training" / "configs" / "tokenizer_tiny_test.yaml"


def _launch(*args):
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT), *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def _metrics(output_dir):
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def test_accelerate_launch_trains_saves_and_resumes(tmp_path):
    from cosmos_hf.tokenizers import CosmosDiscreteVideoTokenizer, load_tokenizer

    out = tmp_path / "run"
    _launch("--config", str(TINY), "--output_dir", str(out))
    model = load_tokenizer(out / "model")
    assert isinstance(model, CosmosDiscreteVideoTokenizer)
    with torch.no_grad():
        assert model.tokenize(torch.zeros(1, 3, 5, 32, 32)).shape == (1, 2, 4, 4)
    steps = [m["step"] for m in _metrics(out)]
    assert steps == [1, 2]
    assert "val_psnr" in _metrics(out)[-1]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]

    result = _launch("--config", str(TINY), "--output_dir", str(out), "--max_train_steps", "3",
                     "--resume_from_checkpoint", "latest")
    assert "resumed from" in result.stdout + result.stderr and "at step 2" in result.stdout + result.stderr
    assert [m["step"] for m in _metrics(out)] == [1, 2, 3]


@pytest.fixture(scope="module")
def random_vgg_weights(tmp_path_factory):
    from safetensors.torch import save_file
    from torchvision.models import vgg16

    path = tmp_path_factory.mktemp("vgg") / "vgg16_features.safetensors"
    torch.manual_seed(0)
    save_file({f"features.{k}": v for k, v in vgg16(weights=None).features.state_dict().items()}, str(path))
    return path


def _write_config(tmp_path, **overrides):
    config = yaml.safe_load(TINY.read_text())
    for key, value in overrides.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_stage_two_exercises_every_loss_term(tmp_path, random_vgg_weights):
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    config = _write_config(
        tmp_path, output_dir=str(tmp_path / "stage2"),
        data={"image_every": 0}, training={"max_train_steps": 1, "validation_steps": 1},
        loss={"stage": 2, "vgg_weights": str(random_vgg_weights)},
    )
    train_tokenizer.main(["--config", str(config)])
    logged = _metrics(tmp_path / "stage2")[0]
    for term in ("l1", "perceptual", "gram", "flow", "adversarial", "discriminator"):
        assert term in logged and logged[term] == logged[term], term  # present and not NaN
    assert logged["flow"] > 0


def test_non_finite_loss_stops_without_saving(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    config = _write_config(tmp_path, output_dir=str(tmp_path / "nan"),
                           training={"learning_rate": 1e30, "max_grad_norm": 1e30, "max_train_steps": 4,
                                  "lr_warmup_steps": 0, "checkpointing_steps": 100})
    with pytest.raises(RuntimeError, match=r"loss is (nan|inf).*stopping without saving"):
        train_tokenizer.main(["--config", str(config)])
    assert not (tmp_path / "nan" / "model").exists()


def test_checkpoints_total_limit_null_keeps_every_checkpoint(tmp_path):
    """`training.checkpoints_total_limit: null` (keep all, as in the other scripts) was `int(None)`: a TypeError at the
    first checkpoint, after the steps before it had trained."""
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    output = tmp_path / "run"
    train_tokenizer.main(["--config", str(TINY), "--output_dir", str(output), "--max_train_steps", "3",
                          "--set", "training.checkpoints_total_limit=null", "--set", "training.checkpointing_steps=1"])
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]


def test_lucas_kanade_flow_recovers_a_known_shift():
    from cosmos_hf.tokenizers.losses import lucas_kanade_flow

    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    frame0 = torch.sin(x / 3) + torch.cos(y / 4)
    frame1 = torch.sin((x - 0.5) / 3) + torch.cos(y / 4)  # content moves +0.5 px along x
    flow = lucas_kanade_flow(frame0[None, None], frame1[None, None])
    inner = flow[0, :, 8:-8, 8:-8]
    assert abs(inner[0].mean().item() - 0.5) < 0.05 and abs(inner[1].mean().item()) < 0.05


def test_config_errors_are_clear(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    config = _write_config(tmp_path, data={"num_frames": 6})
    with pytest.raises(ValueError, match=r"1 \+ k\*4"):
        train_tokenizer.main(["--config", str(config)])


def test_options_that_build_a_new_tokenizer_are_refused_next_to_model_pretrained(tmp_path):
    """`model.pretrained` loads the saved tokenizer as it is: `model.overrides` (the tiny config's channels) and
    `model.colour_path_init` were silently ignored, and the model card listed the overrides as if applied."""
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    with pytest.raises(ValueError, match=r"model.pretrained loads the tokenizer some/folder as it was saved; "
                                         r"model.overrides, model.colour_path_init only apply to a new tokenizer"):
        train_tokenizer.load_config(TINY, ["model.pretrained=some/folder", "model.colour_path_init=true"])
    config = train_tokenizer.load_config(TINY, ["model.pretrained=some/folder", "model.overrides={}"])
    assert config["model"]["pretrained"] == "some/folder"


def test_zero_init_residual_branches_zeroes_only_the_last_layer_of_each_branch():
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    overrides = {"channels": 8, "channels_mult": [1, 2, 2], "num_res_blocks": 1, "attn_resolutions": [16],
                 "spatial_compression": 4}  # three levels, one downsampling (two would leave the decoder short)
    model = train_tokenizer.build_model({"config_name": "CV4x8x8", "overrides": overrides})
    zeroed = {name for name, p in model.named_parameters() if not p.abs().sum()}
    assert zeroed and all((".conv2.conv_t." in n) or ".to_out." in n or n.endswith("norm.bias") for n in zeroed)
    assert any(".to_out." in n for n in zeroed) and any(".conv2.conv_t." in n for n in zeroed)
    reference_init = train_tokenizer.build_model({"config_name": "CV4x8x8", "overrides": overrides,
                                                  "zero_init_residual": False})
    assert all(p.abs().sum() > 0 for n, p in reference_init.named_parameters() if ".conv2." in n)


def test_zero_initialised_residual_branches_still_learn():
    # Zeroing both convs of a factorised branch leaves it without gradient forever (an earlier bug): after a few
    # optimiser steps every branch's last conv must have moved off zero.
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    torch.manual_seed(0)
    overrides = {"channels": 8, "channels_mult": [1, 2, 4], "num_res_blocks": 1, "attn_resolutions": []}
    model = train_tokenizer.build_model({"config_name": "CV4x8x8", "overrides": overrides})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    video = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    for _ in range(2):
        loss = (train_tokenizer.reconstruct(model, video) - video).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    branch_outputs = {n: p for n, p in model.named_parameters() if n.endswith(".conv2.conv_t.weight")}
    assert branch_outputs and all(p.abs().sum() > 0 for p in branch_outputs.values())


def test_chroma_loss_ignores_grey_shifts_and_sees_colour_errors():
    from cosmos_hf.tokenizers.losses import chroma_l1_loss

    target = torch.rand(2, 3, 3, 8, 8) * 2 - 1
    assert chroma_l1_loss(target + 0.3, target).item() < 1e-6  # a luminance-only error costs nothing
    grey = target.mean(1, keepdim=True).expand_as(target)
    assert chroma_l1_loss(grey, target).item() > 0.1


def test_color_augmentation_is_a_seeded_per_clip_permutation_and_tint():
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    video = torch.stack([torch.full((2, 8, 8), (c + 1) / 4) for c in range(3)])[None].repeat(4, 1, 1, 1, 1)
    assert train_tokenizer.augment_colors(video, 0.0, torch.Generator().manual_seed(0)) is video
    out = train_tokenizer.augment_colors(video, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(out, train_tokenizer.augment_colors(video, 0.3, torch.Generator().manual_seed(0)))
    assert out.min() >= -1 and out.max() <= 1
    for clip in out:  # one affine map per channel: every pixel of a channel stays equal
        assert torch.equal(clip.flatten(1), clip.flatten(1)[:, :1].expand(3, clip[0].numel()))
    generator = torch.Generator().manual_seed(1)
    tints = torch.stack([train_tokenizer.augment_colors(video[:1], 0.3, generator)[0, :, 0, 0, 0] for _ in range(20)])
    assert len({tuple(t.argsort().tolist()) for t in tints}) > 1 and tints.std(0).min() > 0.05


def test_set_overrides_config_values(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    config = train_tokenizer.load_config(_write_config(tmp_path),
                                         ["training.learning_rate=0.0005", "model.zero_init_residual=false"])
    assert config["training"]["learning_rate"] == 5e-4 and config["model"]["zero_init_residual"] is False
    assert config["loss"]["l1"] == 1.0  # stage defaults still applied
    with pytest.raises(ValueError, match="key.path=value"):
        train_tokenizer.load_config(_write_config(tmp_path), ["training.learning_rate"])


def test_old_train_section_is_refused_naming_training_and_unknown_keys_name_the_valid_ones(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    old = tmp_path / "old.yaml"
    old.write_text(TINY.read_text().replace("training:", "train:"))
    with pytest.raises(ValueError, match="section `train:` is now called `training:`"):
        train_tokenizer.load_config(old)
    with pytest.raises(ValueError, match="unknown config key `training.learnin_rate`.*learning_rate"):
        train_tokenizer.load_config(TINY, ["training.learnin_rate=0.1"])
    with pytest.raises(ValueError, match="unknown config key `loss.l2`.*l1"):
        train_tokenizer.load_config(TINY, ["loss.l2=1.0"])


def test_resumed_run_reproduces_the_uninterrupted_run_exactly_without_unpickling(tmp_path):
    import shutil

    from safetensors.torch import load_file

    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    class WritesAMarkerWhenUnpickled:
        def __reduce__(self):
            return (open, (str(tmp_path / "code-ran"), "w"))

    args = ["--config", str(TINY), "--max_train_steps", "4", "--set", "training.checkpoints_total_limit=10"]
    straight = tmp_path / "straight"
    train_tokenizer.main(args + ["--output_dir", str(straight)])
    # a crash after checkpoint 2: later checkpoints and the model gone, metrics.jsonl already holding steps 3 and 4
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    for name in ("checkpoint-3", "checkpoint-4", "model"):
        shutil.rmtree(resumed / name)
    for name in ("random_states_0.pkl", "optimizer.bin", "scheduler.bin"):
        torch.save(WritesAMarkerWhenUnpickled(), resumed / "checkpoint-2" / name)  # a torch.load-able pickle
    train_tokenizer.main(args + ["--output_dir", str(resumed), "--resume_from_checkpoint", "latest"])
    assert not (tmp_path / "code-ran").exists()
    a, b = (load_file(str(run / "model" / "diffusion_pytorch_model.safetensors")) for run in (straight, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def without_time(run):
        return [{k: v for k, v in entry.items() if k != "seconds"} for entry in _metrics(run)]

    assert [m["step"] for m in _metrics(resumed)] == [1, 2, 3, 4] and without_time(resumed) == without_time(straight)


def test_colour_diagnostics_pooled_latent_carries_each_latent_frames_colour():
    sys.path.insert(0, str(SCRIPT.parent))
    import colour_diagnostics

    video = torch.zeros(1, 3, 9, 16, 16)
    video[:, 0, 5:] = 0.5  # red only in the last latent frame's 4 frames
    latent = colour_diagnostics.pooled_colour_latent(video)
    assert latent.shape == (1, 16, 3, 2, 2)
    assert torch.allclose(latent[0, 0, 2], torch.full((2, 2), 1.0)) and latent[0, 0, :2].abs().max() == 0
    with pytest.raises(ValueError, match="0..4"):
        colour_diagnostics.main(["--model", "plain", "--downsample", "5"])


def test_colour_path_init_carries_the_input_colour_to_the_latent():
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    torch.manual_seed(0)
    overrides = {"channels": 8, "channels_mult": [1, 2, 4], "num_res_blocks": 1, "attn_resolutions": []}
    model = train_tokenizer.build_model({"config_name": "CV4x8x8", "overrides": overrides, "colour_path_init": True})
    video = torch.full((3, 3, 9, 32, 32), -0.5)
    for c in range(3):
        video[c, c] = 0.8  # clip c is dominated by colour channel c
    with torch.no_grad():
        latent = model.encode(video).latent_dist.mode()
    _, red_minus_blue, green_minus_magenta = latent[:, :3].mean(dim=(2, 3, 4)).T  # clips: red, green, blue
    assert red_minus_blue[0] > red_minus_blue[1] > red_minus_blue[2], red_minus_blue
    assert green_minus_magenta[1] > max(green_minus_magenta[0], green_minus_magenta[2]), green_minus_magenta
    plain = train_tokenizer.build_model({"config_name": "CV4x8x8", "overrides": overrides})
    assert plain.state_dict().keys() == model.state_dict().keys()  # same architecture, only the init differs
    with pytest.raises(ValueError, match="CV/DV"):
        train_tokenizer.colour_path_init(torch.nn.Linear(2, 2))


def test_freeze_encoder_steps_trains_the_decoder_first_and_mse_is_a_loss_term(tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    config = _write_config(tmp_path, loss={"mse": 1.0},
                           training={"freeze_encoder_steps": 2, "checkpoints_total_limit": 3})
    _launch("--config", str(config), "--output_dir", str(out), "--max_train_steps", "3")
    weights = {step: load_file(str(out / f"checkpoint-{step}" / "model.safetensors")) for step in (1, 2, 3)}
    moved = {n for n in weights[1] if not torch.equal(weights[1][n], weights[2][n])}  # step 2, encoder frozen
    assert not {n for n in moved if n.startswith(("encoder.", "quant_conv."))}
    assert {"decoder.conv_out.conv_s.weight", "post_quant_conv.weight"} <= moved
    encoder_moved = [n for n in weights[2] if n.startswith("encoder.") and not torch.equal(weights[2][n], weights[3][n])]
    assert encoder_moved, "the encoder must train once freeze_encoder_steps have passed"
    assert all("mse" in m for m in _metrics(out))


def test_freeze_encoder_fine_tunes_only_the_decoder_and_keeps_the_latent_space(tmp_path):
    """training.freeze_encoder: a decoder fine-tune leaves the encoder byte-identical, so latents (and world models
    trained on them) stay valid; it needs model.pretrained."""
    from safetensors.torch import load_file

    from cosmos_hf.tokenizers import from_config_name, load_tokenizer

    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    torch.manual_seed(0)
    pretrained = from_config_name("CV4x8x8", channels=8, channels_mult=[1, 2, 2], num_res_blocks=1,
                                  attn_resolutions=[])
    pretrained.save_pretrained(tmp_path / "pretrained", safe_serialization=True)
    with pytest.raises(ValueError, match="model.pretrained"):
        train_tokenizer.freeze_encoder(pretrained, {"pretrained": None})

    out = tmp_path / "run"
    config = _write_config(tmp_path, model={"pretrained": str(tmp_path / "pretrained"), "overrides": {}},
                           training={"freeze_encoder": True}, loss={"mse": 1.0})  # overrides: for new tokenizers
    result = _launch("--config", str(config), "--output_dir", str(out))
    assert "encoder parameters frozen" in result.stdout + result.stderr
    before = load_file(str(tmp_path / "pretrained" / "diffusion_pytorch_model.safetensors"))
    after = load_file(str(out / "model" / "diffusion_pytorch_model.safetensors"))
    assert before.keys() == after.keys()
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    assert moved and all(name.startswith(("decoder.", "post_quant_conv.")) for name in moved)
    assert "decoder.conv_out.conv_s.weight" in moved
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():
        latent_before = pretrained.encode(video).latent_dist.mode()
        latent_after = load_tokenizer(out / "model").encode(video).latent_dist.mode()
    assert torch.equal(latent_before, latent_after)
    assert "frozen (`training.freeze_encoder`)" in (out / "model" / "README.md").read_text()


def test_max_train_minutes_stops_at_what_fits_and_saves_the_model(tmp_path):
    """A 0.03-second budget: nothing fits after the 30 timing steps, so a 500-step run ends at step 30 with its model
    saved (the budget itself, with a fake clock: tests/test_training_data_layer.py)."""
    sys.path.insert(0, str(SCRIPT.parent))
    import train_tokenizer

    config = _write_config(tmp_path, output_dir=str(tmp_path / "budget"),
                           training={"max_train_steps": 500, "validation_steps": 1000, "checkpointing_steps": 0})
    train_tokenizer.main(["--config", str(config), "--max_train_minutes", "0.0005"])
    assert _metrics(tmp_path / "budget")[-1]["step"] == 30
    assert (tmp_path / "budget" / "model" / "config.json").is_file()
