"""cosmos_hf.training_utils: checkpoints that never unpickle, that restore every state exactly and name a corrupt file;
configs that refuse unknown keys and the old `train:` section; a data order that a resumed run can recompute."""

import json
import random

import numpy as np
import pytest
import torch

from cosmos_hf import training_utils


class WritesAMarkerWhenUnpickled:
    """A pickle whose loading creates `marker` (what a crafted checkpoint file could do with any code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_pickles(folder, marker):
    """The files accelerate's `save_state` writes (all unpickled by its `load_state`), each a code-running pickle."""
    names = ["optimizer.bin", "scheduler.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl", "pytorch_model.bin",
             "sampler.bin"]
    for name in names:
        torch.save(WritesAMarkerWhenUnpickled(marker), folder / name)  # the format torch.load unpickles


def tiny_training_state(seed=0):
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel

    torch.manual_seed(seed)
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    ema = EMAModel(list(model.parameters()), decay=0.9)
    return accelerator, model, optimizer, scheduler, ema


def train_steps(model, optimizer, scheduler, ema, steps):
    for _ in range(steps):
        loss = model(torch.randn(3, 4)).pow(2).mean()  # draws from the global RNG, like EDM noise
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        ema.step(list(model.parameters()))
    return loss.item()


def save(accelerator, model, optimizer, scheduler, ema, output_dir, step):
    return training_utils.save_checkpoint(accelerator, output_dir, step, None, models=[model], optimizers=[optimizer],
                                          schedulers=[scheduler], objects={"ema": ema},
                                          train_state={"epoch": 1, "batches_in_epoch": 3})


def resume(accelerator, model, optimizer, scheduler, ema, checkpoint):
    return training_utils.resume_training_state(accelerator, str(checkpoint), checkpoint.parent, models=[model],
                                                optimizers=[optimizer], schedulers=[scheduler], objects={"ema": ema})


def test_resume_restores_weights_optimizer_scheduler_ema_and_rng_then_continues_identically(tmp_path):
    state = tiny_training_state()
    train_steps(*state[1:], steps=2)
    checkpoint = save(*state, tmp_path, 2)
    assert {p.suffix for p in checkpoint.iterdir()} <= {".json", ".safetensors"}  # no pickle written
    uninterrupted = train_steps(*state[1:], steps=2)

    other = tiny_training_state(seed=1)  # different init and RNG: everything must come from the checkpoint
    info = resume(*other, checkpoint)
    assert info["global_step"] == 2 and (info["epoch"], info["batches_in_epoch"]) == (1, 3)
    assert train_steps(*other[1:], steps=2) == uninterrupted
    for a, b in zip(state[1].parameters(), other[1].parameters()):
        assert torch.equal(a, b)
    for a, b in zip(state[4].shadow_params, other[4].shadow_params):
        assert torch.equal(a, b)
    assert state[3].get_last_lr() == other[3].get_last_lr()


def test_resume_never_unpickles_files_planted_in_a_checkpoint(tmp_path):
    state = tiny_training_state()
    train_steps(*state[1:], steps=1)
    checkpoint = save(*state, tmp_path, 1)
    marker = tmp_path / "code-ran"
    plant_pickles(checkpoint, marker)
    assert resume(*tiny_training_state(), checkpoint)["global_step"] == 1
    assert not marker.exists()


def test_an_accelerate_pickle_checkpoint_is_refused_unopened(tmp_path):
    old = tmp_path / "checkpoint-5"
    old.mkdir()
    (old / "train_state.json").write_text(json.dumps({"global_step": 5}))  # what earlier versions wrote
    marker = tmp_path / "code-ran"
    plant_pickles(old, marker)
    with pytest.raises(ValueError, match="not a cosmos-hf-training-checkpoint/1 checkpoint.*unpickling runs code"):
        resume(*tiny_training_state(), old)
    assert not marker.exists()


def test_checkpoint_rotation_never_deletes_the_checkpoint_just_written(tmp_path):
    """A later checkpoint of another run (checkpoint-5) counted as newer: with checkpoints_total_limit 1, saving
    checkpoint-2 deleted checkpoint-2 at once. Rotation now keeps the newest of this run's line, and the other run's."""
    state = tiny_training_state()
    save(*state, tmp_path, 5)
    training_utils.save_checkpoint(state[0], tmp_path, 1, 1, models=[state[1]])
    training_utils.save_checkpoint(state[0], tmp_path, 2, 1, models=[state[1]])
    assert [step for step, _ in training_utils.list_checkpoints(tmp_path)] == [2, 5]


def test_a_run_is_refused_where_later_checkpoints_of_another_run_exist(tmp_path):
    """A fresh start (or a resume from an earlier checkpoint) in a folder holding later checkpoints would mix two runs:
    rotation deleted the new checkpoints and `latest` resumed the old run. Refused, naming them; `latest` passes."""
    state = tiny_training_state()
    for step in (2, 5):
        save(*state, tmp_path, step)
    with pytest.raises(ValueError, match=r"holds checkpoint-2, checkpoint-5, later than this run, which starts at step "
                                         r"0.*--resume_from_checkpoint latest"):
        training_utils.check_no_later_checkpoints(tmp_path)
    with pytest.raises(ValueError, match=r"holds checkpoint-5, later than this run, which resumes from step 2"):
        training_utils.check_no_later_checkpoints(tmp_path, str(tmp_path / "checkpoint-2"))
    training_utils.check_no_later_checkpoints(tmp_path, "latest")
    training_utils.check_no_later_checkpoints(tmp_path / "new")  # an empty or missing folder


@pytest.mark.parametrize("name", ["random_states_0.safetensors", "random_states_0.json", "optimizer.json",
                                  "ema.safetensors", "model.safetensors", "train_state.json"])
def test_a_corrupt_or_missing_state_file_is_an_error_naming_it(tmp_path, name):
    state = tiny_training_state()
    train_steps(*state[1:], steps=1)
    checkpoint = save(*state, tmp_path, 1)
    (checkpoint / name).write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=f"{name}.* corrupt"):
        resume(*tiny_training_state(), checkpoint)
    if name != "train_state.json":
        (checkpoint / name).unlink()
        with pytest.raises(ValueError, match=f"{name} is missing"):
            resume(*tiny_training_state(), checkpoint)


def test_a_random_state_file_with_the_wrong_content_is_an_error_naming_it(tmp_path):
    state = tiny_training_state()
    checkpoint = save(*state, tmp_path, 1)
    training_utils.save_state_files({"python": "not a state"}, checkpoint, "random_states_0")
    with pytest.raises(ValueError, match="random_states_0.json is corrupt"):
        resume(*tiny_training_state(), checkpoint)


def test_state_files_round_trip_nested_python_numpy_and_torch_values(tmp_path):
    value = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "by_int": {0: {"step": torch.tensor(3.0)}, 1: [1.5, float("inf"), None, True, "x"]}}
    training_utils.save_state_files(value, tmp_path, "state")
    back = training_utils.load_state_files(tmp_path, "state")
    assert back["python"] == value["python"] and isinstance(back["python"][1], tuple)
    assert back["numpy"][0] == "MT19937" and back["numpy"][1].dtype == np.uint32
    assert np.array_equal(back["numpy"][1], value["numpy"][1]) and back["numpy"][2:] == value["numpy"][2:]
    assert torch.equal(back["torch"], value["torch"]) and torch.equal(back["by_int"][0]["step"], torch.tensor(3.0))
    assert back["by_int"][1] == [1.5, float("inf"), None, True, "x"]
    with pytest.raises(TypeError, match="cannot store function at bad.f"):
        training_utils.save_state_files({"f": lambda: 0}, tmp_path, "bad")


def test_the_sampler_recomputes_an_epoch_and_skips_what_was_trained():
    full = list(training_utils.EpochShuffleSampler(10, 2, seed=3, epoch=4))
    assert len(full) == 10 and sorted(full) == list(range(10))
    assert list(training_utils.EpochShuffleSampler(10, 2, seed=3, epoch=4, skip_batches=2)) == full[4:]
    assert list(training_utils.EpochShuffleSampler(10, 2, seed=3, epoch=5)) != full
    shares = [list(training_utils.EpochShuffleSampler(10, 2, seed=3, epoch=4, num_processes=2, process_index=rank))
              for rank in (0, 1)]
    assert all(len(share) == 4 for share in shares) and not set(shares[0]) & set(shares[1])


def test_weighted_epochs_draw_by_weight_and_resume_to_the_same_draws():
    weights = torch.tensor([3.0, 1.0, 0.0, 1.0] * 250)  # 1,000 clips: weight 0 never drawn, 3 three times as often
    full = list(training_utils.EpochShuffleSampler(1000, 8, seed=3, epoch=4, weights=weights))
    counts = torch.bincount(torch.tensor(full) % 4, minlength=4)
    assert len(full) == 1000 and counts[2] == 0
    assert 2.5 < counts[0] / counts[1] < 3.6 and 2.5 < counts[0] / counts[3] < 3.6
    resumed = training_utils.EpochShuffleSampler(1000, 8, seed=3, epoch=4, skip_batches=5, weights=weights)
    assert list(resumed) == full[40:]
    assert list(training_utils.EpochShuffleSampler(1000, 8, seed=3, epoch=5, weights=weights)) != full
    shares = [list(training_utils.EpochShuffleSampler(1000, 8, seed=3, epoch=4, num_processes=2, process_index=rank,
                                                      weights=weights)) for rank in (0, 1)]
    assert shares[0] + shares[1] != [] and sorted(shares[0] + shares[1]) == sorted(full[:992])
    unweighted = list(training_utils.EpochShuffleSampler(1000, 8, seed=3, epoch=4))
    assert sorted(unweighted) == list(range(1000))  # without weights: still a permutation


@pytest.mark.parametrize("weights, match", [
    (torch.ones(5), "one per sample \\(10\\), got shape \\(5,\\)"),
    (torch.zeros(10), "positive sum"),
    (torch.tensor([-1.0] + [1.0] * 9), ">= 0"),
    (torch.tensor([float("nan")] + [1.0] * 9), "finite"),
])
def test_bad_sampling_weights_are_errors(weights, match):
    with pytest.raises(ValueError, match=match):
        training_utils.EpochShuffleSampler(10, 2, seed=0, weights=weights)


def test_fewer_samples_than_one_batch_is_an_error_naming_both_numbers():
    with pytest.raises(ValueError, match="has 3 clips, fewer than one batch: training.batch_size 4;"):
        training_utils.EpochShuffleSampler(3, 4, seed=0)
    with pytest.raises(ValueError, match="has 3 clips, .*batch_size 2 x 2 processes = 4"):
        training_utils.EpochShuffleSampler(3, 2, seed=0, num_processes=2)


def test_truncate_log_keeps_each_step_once(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": s}) + "\n" for s in (1, 2, 3, 4)) + '{"step": 5, "lo')
    training_utils.truncate_log(log, 2)  # the steps after the checkpoint and a line cut short by the crash go
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2]
    training_utils.truncate_log(log, 0)
    assert log.read_text() == ""


DEFAULTS = {"seed": 0, "model": {"name": "a", "free": {}}, "training": {"batch_size": 1, "learning_rate": 1e-3}}


def test_config_unknown_keys_in_yaml_or_set_are_errors_naming_the_valid_ones(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("training: {learnin_rate: 0.1}\n")
    with pytest.raises(ValueError, match=r"unknown config key `training.learnin_rate` in .*config.yaml; valid keys "
                                         r"at section `training`: batch_size, learning_rate"):
        training_utils.load_config(path, DEFAULTS)
    path.write_text("training: {learning_rate: 0.1}\nmodel: {free: {anything: 1}}\n")  # free-form sections pass
    config = training_utils.load_config(path, DEFAULTS, ["training.batch_size=4", "model.free.more=2"])
    assert config["training"] == {"batch_size": 4, "learning_rate": 0.1} and config["model"]["free"]["more"] == 2
    with pytest.raises(ValueError, match=r"unknown config key `training.batchsize` in --set training.batchsize; "
                                         "valid keys at section `training`: batch_size, learning_rate"):
        training_utils.load_config(path, DEFAULTS, ["training.batchsize=4"])
    with pytest.raises(ValueError, match="unknown config key `trainig` in --set trainig.batch_size; valid keys at "
                                         "the top level: model, seed, training"):
        training_utils.load_config(path, DEFAULTS, ["trainig.batch_size=4"])


def test_config_old_train_section_is_refused_naming_training(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("train: {batch_size: 2}\n")
    with pytest.raises(ValueError, match=r"section `train:` is now called `training:`.*rename it in .*config.yaml"):
        training_utils.load_config(path, DEFAULTS, renamed_sections={"train": "training"})
    path.write_text("seed: 1\n")
    with pytest.raises(ValueError, match=r"`train:` is now called `training:`.*--set train.batch_size=..."):
        training_utils.load_config(path, DEFAULTS, ["train.batch_size=2"], renamed_sections={"train": "training"})


def test_config_exponent_numbers_without_a_dot_are_floats_in_yaml_and_set(tmp_path):
    """PyYAML (YAML 1.1) alone reads `1e-3` as the string '1e-3', which reached AdamW as text (a TypeError deep in
    torch); configs and --set values read it as the float, and a non-number where a number belongs is refused."""
    path = tmp_path / "config.yaml"
    path.write_text("training: {learning_rate: 3e-4, batch_size: 2}\n")
    assert training_utils.load_config(path, DEFAULTS)["training"] == {"batch_size": 2, "learning_rate": 3e-4}
    config = training_utils.load_config(path, DEFAULTS, ["training.learning_rate=1e-3", "training.batch_size=8"])
    assert config["training"] == {"batch_size": 8, "learning_rate": 1e-3}
    assert type(config["training"]["batch_size"]) is int  # plain integers stay integers
    assert training_utils.load_yaml("[1e-3, -2E+4, .5, 1.0.2, abc]") == [0.001, -20000.0, 0.5, "1.0.2", "abc"]
    with pytest.raises(ValueError, match=r"config key `training.learning_rate` in --set training.learning_rate must "
                                         r"be a number \(default 0.001\), got 'fast'"):
        training_utils.load_config(path, DEFAULTS, ["training.learning_rate=fast"])
    path.write_text("training: {batch_size: yes}\n")
    with pytest.raises(ValueError, match=r"`training.batch_size` in .*config.yaml must be a number.*got True"):
        training_utils.load_config(path, DEFAULTS)


COUNT_DEFAULTS = {"training": {"max_train_steps": 100, "batch_size": 1, "checkpoints_total_limit": 3, "log_every": 10}}


@pytest.mark.parametrize("override, match", [
    ("training.batch_size=0", r"training.batch_size must be an integer >= 1 \(clips per process.*got 0"),
    ("training.max_train_steps=-5", r"training.max_train_steps must be an integer >= 1 \(optimizer steps\), got -5"),
    ("training.checkpoints_total_limit=-1", r"checkpoints_total_limit must be an integer >= 0 or null .*got -1"),
    ("training.log_every=2.5", r"training.log_every must be an integer >= 0 or null .*got 2.5"),
    ("training.max_train_steps=null", r"training.max_train_steps must be an integer >= 1 \(.*got None"),
])
def test_training_counts_out_of_range_are_errors_naming_the_key_and_range(tmp_path, override, match):
    """`batch_size: 0` and `log_every: 0` failed with a ZeroDivisionError after the data were prepared;
    `checkpoints_total_limit: -1` deleted every checkpoint as it was written. Refused when the config is read."""
    path = tmp_path / "config.yaml"
    path.write_text("training: {}\n")
    with pytest.raises(ValueError, match=match):
        training_utils.load_config(path, COUNT_DEFAULTS, [override])


def test_whole_float_training_counts_become_integers(tmp_path):
    """`max_train_steps: 1e4` is the float 10000.0 in YAML 1.2, which failed in `range()` after the data were
    prepared; a whole float is taken as the integer."""
    path = tmp_path / "config.yaml"
    path.write_text("training: {max_train_steps: 1e4, checkpoints_total_limit: null}\n")
    training = training_utils.load_config(path, COUNT_DEFAULTS)["training"]
    assert training["max_train_steps"] == 10000 and type(training["max_train_steps"]) is int
    assert training["checkpoints_total_limit"] is None


def test_every_bundled_training_config_loads_with_its_script():
    """Unknown keys are errors now: every config in training/configs must use only keys its script knows."""
    import importlib.util
    from pathlib import Path

    training = Path(__file__).resolve().parents[1] / "training"
    scripts = {}
    for config in sorted((training / "configs").glob("*.yaml")):
        if config.name.startswith("safety_head"):
            continue  # train_safety_head.py has its own loader
        name = ("train_tokenizer" if config.name.startswith("tokenizer_") else "train_autoregressive"
                if config.name.startswith("autoregressive_") and "diffusion_decoder" not in config.name
                else "train_diffusion")
        if name not in scripts:
            spec = importlib.util.spec_from_file_location(name, training / f"{name}.py")
            scripts[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(scripts[name])
        assert scripts[name].load_config(config)["training"], config.name


def test_fork_rng_state_leaves_every_generator_as_it_found_it():
    def seed_all():
        torch.manual_seed(0), random.seed(0), np.random.seed(0)

    seed_all()
    expected = (torch.rand(2), random.random(), np.random.rand())
    seed_all()
    with training_utils.fork_rng_state():  # e.g. validation sampling between two training steps
        torch.rand(5), random.random(), np.random.rand(3)
    got = (torch.rand(2), random.random(), np.random.rand())
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]
