"""The training scripts' shared layer: `cosmos_hf.data.training_data` (datasets, the tokenizer's clip stream, caches
and their key checks) and the set-up pieces of `cosmos_hf.training_utils` (the jsonl tracker behind
`accelerator.log`, `training.lr_scheduler`, `training.log_with`, the same keys in every script)."""

import importlib.util
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from cosmos_hf import training_utils
from cosmos_hf.data import ClipSource, PhysicsWorldDataset, build_dataset, load_tensor_cache, save_tensor_cache

TRAINING = Path(__file__).resolve().parents[1] / "training"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, TRAINING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------------- data
def test_physics_dataset_cycles_camera_views_over_every_scene():
    from cosmos_hf.sim import SCENES, simulate

    dataset = PhysicsWorldDataset(2 * len(SCENES), 5, 32, 32, fps=12, seed_offset=7, views=[0, 2])
    same_scene_next_view = len(SCENES)  # clip i uses scene i % 8 and view (i // 8) % len(views)
    for index, view in [(0, 0), (same_scene_next_view, 2)]:
        expected = simulate(SCENES[0], seed=7 + index, num_frames=5, height=32, width=32, fps=12, view=view).video
        np.testing.assert_allclose(dataset[index]["video"].numpy(), expected.transpose(3, 0, 1, 2) / 127.5 - 1,
                                   atol=1e-6)
    with pytest.raises(ValueError, match="views must be a non-empty list of camera views in 0..3"):
        PhysicsWorldDataset(4, 5, 32, 32, fps=12, views=[4])


def physics_data_and_its_archive(tmp_path, num_clips: int):
    """A `physics` data config (free_fall, dominoes; 5 frames at 32x32) and a clip archive of the same clips."""
    from cosmos_hf.data import simulate_clip_archive

    data = {"type": "physics", "num_clips": num_clips, "num_frames": 5, "height": 32, "width": 32, "fps": 12,
            "scenes": ["free_fall", "dominoes"], "views": [1], "seed_offset": 3, "frame_stride": 1}
    archive = simulate_clip_archive(tmp_path / "clips.npz", num_clips=num_clips, num_frames=5, height=32, width=32,
                                    fps=12, seed_offset=3, views=[1], scenes=["free_fall", "dominoes"], progress=False)
    return data, archive


def test_clip_archive_dataset_holds_the_clips_the_physics_dataset_simulates(tmp_path):
    data, archive = physics_data_and_its_archive(tmp_path, 2)
    physics, clips = build_dataset(data), build_dataset({**data, "type": "clips", "path": str(archive)})
    assert len(clips) == len(physics) == 2
    for index in range(2):
        assert torch.equal(clips[index]["video"], physics[index]["video"])
        assert clips[index]["caption"] == physics[index]["caption"]
    first = build_dataset({**data, "type": "clips", "path": str(archive), "num_clips": 1})
    assert len(first) == 1 and torch.equal(first[0]["video"], physics[0]["video"])
    with pytest.raises(ValueError, match=r"data.num_clips must be in \[1, 2\]"):
        build_dataset({**data, "type": "clips", "path": str(archive), "num_clips": 3})
    with pytest.raises(ValueError, match="12.0 fps; the config asks for 24 fps"):
        build_dataset({**data, "type": "clips", "path": str(archive), "fps": 24})
    with pytest.raises(ValueError, match="data.path .* is required for data.type=clips"):
        build_dataset({**data, "type": "clips"})
    with pytest.raises(ValueError, match="data.type must be one of folder, webdataset, physics, clips"):
        build_dataset({**data, "type": "images"})


def test_folder_and_webdataset_videos_must_play_at_the_configured_fps(tmp_path):
    """data.fps is what the model is conditioned on; a 30 fps video in a folder trained with fps 24 used to train it
    on the wrong fps without a word."""
    import tarfile

    from cosmos_hf.data import write_video

    frames = np.zeros((8, 16, 16, 3), np.uint8)
    for name, rate in (("a", 24), ("b", 30), ("c", 48)):
        write_video(tmp_path / "videos" / f"{name}.mp4", frames, fps=rate)
        (tmp_path / "metas").mkdir(exist_ok=True)
        (tmp_path / "metas" / f"{name}.txt").write_text("a still")
    data = {"type": "folder", "path": str(tmp_path), "num_frames": 4, "height": 16, "width": 16, "fps": 24,
            "frame_stride": 1}
    with pytest.raises(ValueError, match=r"b.mp4 plays at 30 fps, so its clips \(data.frame_stride 1\) are 30 fps, "
                                         r"but data.fps is 24 .*set data.fps to 30"):
        build_dataset(data)
    (tmp_path / "videos" / "b.mp4").unlink()
    with pytest.raises(ValueError, match="c.mp4 plays at 48 fps"):
        build_dataset(data)
    (tmp_path / "videos" / "a.mp4").unlink()
    assert len(build_dataset({**data, "frame_stride": 2})) == 1  # every 2nd frame of 48 fps: 24 fps
    assert len(build_dataset({**data, "fps": None, "frame_stride": 1})) == 1  # no fps given: nothing to check
    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w") as archive:
        archive.add(tmp_path / "videos" / "c.mp4", arcname="c.mp4")
        archive.add(tmp_path / "metas" / "c.txt", arcname="c.txt")
    with pytest.raises(ValueError, match="webdataset sample c plays at 48 fps"):
        next(iter(build_dataset({**data, "type": "webdataset", "path": str(shard)})))
    assert next(iter(build_dataset({**data, "type": "webdataset", "path": str(shard), "frame_stride": 2})))


def test_scene_weights_give_each_clip_its_scenes_weight(tmp_path):
    from cosmos_hf.data import clip_sampling_weights

    data, archive = physics_data_and_its_archive(tmp_path, 4)
    physics, clips = build_dataset(data), build_dataset({**data, "type": "clips", "path": str(archive)})
    assert physics.clip_scenes() == clips.clip_scenes() == ["free_fall", "dominoes"] * 2
    weights = clip_sampling_weights(clips, {"free_fall": 3})  # a scene left out weighs 1
    assert weights.tolist() == [3.0, 1.0, 3.0, 1.0]
    assert clip_sampling_weights(physics, None) is None and clip_sampling_weights(physics, {}) is None
    with pytest.raises(ValueError, match=r"names scenes with no clip in the data: \['gyroscope'\]; the data has "
                                         r"\['dominoes', 'free_fall'\]"):
        clip_sampling_weights(physics, {"gyroscope": 2})
    with pytest.raises(ValueError, match=r"scene_weights\['dominoes'\] must be a finite number >= 0, got -1"):
        clip_sampling_weights(physics, {"dominoes": -1})
    with pytest.raises(ValueError, match="every clip weight 0"):
        clip_sampling_weights(physics, {"dominoes": 0, "free_fall": 0.0})
    with pytest.raises(ValueError, match="needs clips that record their scene .* not TensorDataset"):
        clip_sampling_weights(torch.utils.data.TensorDataset(torch.zeros(4)), {"free_fall": 2})


def test_clip_source_addresses_physics_clips_by_key_and_checks_its_scenes():
    data = {"source": "physics", "height": 32, "width": 32, "scenes": ["free_fall", "dominoes"]}
    source = ClipSource(data, num_frames=5)
    key = 12345
    from cosmos_hf.sim import NUM_VIEWS, simulate

    view = random.Random(key).randrange(NUM_VIEWS)  # the stream's view rule: drawn from the key
    expected = simulate(["free_fall", "dominoes"][key % 2], seed=key, num_frames=5, height=32, width=32, view=view)
    np.testing.assert_array_equal(source.clip(key), expected.video)
    # with data.views, the physics datasets' rule (scenes cycle fastest, then views) instead of a drawn view
    from cosmos_hf.sim import physics_scene_and_view

    ruled = ClipSource({**data, "views": [1, 3]}, num_frames=5)
    scene, view = physics_scene_and_view(key, ["free_fall", "dominoes"], [1, 3])
    np.testing.assert_array_equal(ruled.clip(key), simulate(scene, seed=key, num_frames=5, height=32, width=32,
                                                            view=view).video)
    batch = source.batch([key, key], num_frames=1)
    assert batch.shape == (2, 3, 1, 32, 32) and batch.min() >= -1 and batch.max() <= 1
    with pytest.raises(ValueError, match=r"unknown physics scenes \['free_fal'\]"):  # was a KeyError mid-training
        ClipSource({**data, "scenes": ["free_fal"]}, num_frames=5)
    with pytest.raises(ValueError, match="data.source must be one of physics, folder, clips, webdataset"):
        ClipSource({**data, "source": "images"}, num_frames=5)


def test_tensor_cache_is_refused_for_other_data_naming_the_differences(tmp_path):
    path = tmp_path / "cache.safetensors"
    assert load_tensor_cache(path, {"height": "32"}) is None
    save_tensor_cache(path, {"latents": torch.arange(4.0)}, {"height": "32", "vae": '"tiny"'})
    assert torch.equal(load_tensor_cache(path, {"height": "32", "vae": '"tiny"'})["latents"], torch.arange(4.0))
    with pytest.raises(ValueError, match=r"made for other clips \(height: cache 32 vs config 64\)"):
        load_tensor_cache(path, {"height": "64", "vae": '"tiny"'}, what="clips")
    from safetensors.torch import save_file

    save_file({"latents": torch.ones(2)}, str(path))  # written before caches recorded their key: trusted
    assert torch.equal(load_tensor_cache(path, {"height": "64"})["latents"], torch.ones(2))


# ---------------------------------------------------------------------------------------------------------- set-up
def test_jsonl_tracker_writes_train_log_lines_through_accelerator_log(tmp_path):
    from accelerate import Accelerator

    log = tmp_path / "train_log.jsonl"
    accelerator = Accelerator(cpu=True, log_with=[training_utils.JSONLinesTracker(log)])
    accelerator.init_trackers("test", config=training_utils.flat_config({"training": {"lr": 1e-3, "betas": [0.9]}}))
    accelerator.log({"loss": 0.5, "mse": 0.25}, step=1)
    accelerator.log({"loss": 0.25, "mse": 0.125}, step=2)
    accelerator.end_training()
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"step": 1, "loss": 0.5, "mse": 0.25}, {"step": 2, "loss": 0.25, "mse": 0.125}]
    assert training_utils.read_log(log, up_to_step=1) == [{"step": 1, "loss": 0.5, "mse": 0.25}]


def test_flat_config_gives_trackers_scalars_only():
    flat = training_utils.flat_config({"seed": 0, "training": {"adam_betas": [0.9, 0.99], "lora": None,
                                                               "objective": {}}})
    assert flat == {"seed": 0, "training.adam_betas": "[0.9, 0.99]", "training.lora": "null",
                    "training.objective": "{}"}


def _lr_factors(scheduler, steps):
    factors = []
    for _ in range(steps):
        factors.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return factors


def test_lr_scheduler_defaults_keep_each_scripts_schedule():
    def optimizer():
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)

    # train_autoregressive.py / train_diffusion.py: diffusers' constant_with_warmup, as before the key existed
    constant = training_utils.build_lr_scheduler(optimizer(), {"lr_scheduler": "constant_with_warmup",
                                                               "lr_warmup_steps": 2, "max_train_steps": 6})
    assert _lr_factors(constant, 4) == [0.0, 0.5, 1.0, 1.0]
    # train_tokenizer.py: warm-up counting the first step, then cosine down to 10%
    cosine = training_utils.build_lr_scheduler(optimizer(), {"lr_scheduler": "cosine_to_10_percent",
                                                             "lr_warmup_steps": 2, "max_train_steps": 6})
    factors = _lr_factors(cosine, 8)
    assert factors[:3] == [0.5, 1.0, 1.0] and factors[-1] == pytest.approx(0.1)
    assert factors[4] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    # scaled by the number of processes (accelerate steps a prepared scheduler once per process)
    two = training_utils.build_lr_scheduler(optimizer(), {"lr_scheduler": "linear", "lr_warmup_steps": 1,
                                                          "max_train_steps": 2}, num_processes=2)
    assert _lr_factors(two, 4) == pytest.approx([0.0, 0.5, 1.0, 0.5])
    with pytest.raises(ValueError, match="training.lr_scheduler must be one of linear, cosine.*got 'cosin'"):
        training_utils.build_lr_scheduler(optimizer(), {"lr_scheduler": "cosin", "max_train_steps": 2})


def test_cosine_with_a_callable_length_is_diffusers_cosine_and_follows_a_shortened_run():
    def optimizer():
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)

    config = {"lr_scheduler": "cosine", "lr_warmup_steps": 3, "max_train_steps": 20}
    diffusers_cosine = _lr_factors(training_utils.build_lr_scheduler(optimizer(), config), 20)
    length = 20
    ours = training_utils.build_lr_scheduler(optimizer(), config, max_train_steps=lambda: length)
    assert _lr_factors(ours, 20) == diffusers_cosine  # bit for bit over the whole run
    shortened = training_utils.build_lr_scheduler(optimizer(), config, max_train_steps=lambda: length)
    early = _lr_factors(shortened, 5)
    length = 10  # what WallClockBudget does after its timing steps
    late = _lr_factors(shortened, 7)  # steps 5..11; step 5's factor was computed before the cut
    assert early == diffusers_cosine[:5] and late[0] == diffusers_cosine[5] and late[-2:] == [0.0, 0.0]
    assert late[1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 7))) and late[1] < diffusers_cosine[6]


class _FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _OneProcess:
    device = torch.device("cpu")

    def __init__(self):
        self.printed = []

    def gather(self, tensor):
        return tensor

    def print(self, *args):
        self.printed.append(" ".join(map(str, args)))


def _run_budget(minutes, seconds_per_step, first_step=0, max_steps=10_000, warm_up_seconds=5.0):
    clock, accelerator = _FakeClock(), _OneProcess()
    budget = training_utils.WallClockBudget(minutes, first_step, start_time=0.0, clock=clock)
    step = first_step
    while step < max_steps:
        budget.before_step(step)
        clock.now += warm_up_seconds if step < first_step + 10 else seconds_per_step
        step += 1
        max_steps = budget.steps_that_fit(step, max_steps, accelerator)
    return step, clock.now, accelerator.printed


def test_wall_clock_budget_stops_within_the_minutes_at_the_measured_speed():
    # 10 slow warm-up steps (50 s), then 2 s a step: 60 minutes less 5% fit 30 + (3420 - 90) / 2 = 1695 steps
    steps, seconds, printed = _run_budget(60, 2.0)
    assert steps == 1695 and seconds <= 0.95 * 3600 and printed == [
        "--max_train_minutes 60: 2.000 s/step, max_train_steps lowered to 1695"]
    assert _run_budget(60, 2.0, max_steps=500)[0] == 500  # never raised
    assert _run_budget(60, 2.0, first_step=400)[0] == 400 + 1695  # a resumed run times its own steps
    assert _run_budget(None, 2.0, max_steps=50)[0] == 50  # no budget: untouched
    with pytest.raises(ValueError, match="--max_train_minutes must be > 0, got 0"):
        training_utils.WallClockBudget(0, 0, 0.0)


@pytest.mark.parametrize("script", ["train_autoregressive", "train_diffusion", "train_tokenizer"])
def test_every_script_takes_the_same_set_up_keys(script):
    module = load_script(script)
    training = module.DEFAULT_CONFIG["training"]
    shared = {"max_train_steps", "batch_size", "gradient_accumulation_steps", "learning_rate", "lr_scheduler",
              "lr_warmup_steps", "max_grad_norm", "mixed_precision", "checkpointing_steps", "checkpoints_total_limit",
              "log_with"}
    assert shared <= set(training), sorted(shared - set(training))
    assert training["lr_scheduler"] in training_utils.LR_SCHEDULERS
    assert {"output_dir", "seed", "model", "data", "training"} <= set(module.DEFAULT_CONFIG)


def test_tokenizer_keys_renamed_to_the_shared_names_are_refused_naming_the_new_ones(tmp_path):
    script = load_script("train_tokenizer")
    path = tmp_path / "old.yaml"
    path.write_text("training: {weight_decay: 0.1}\n")
    with pytest.raises(ValueError, match=r"`training.weight_decay` is now `training.adam_weight_decay`.*old.yaml"):
        script.load_config(path)
    path.write_text("seed: 0\n")
    with pytest.raises(ValueError, match=r"`training.adam_beta1` is now `training.adam_betas: \[beta1, beta2\]`"
                                         r".*--set training.adam_beta1=\.\.\."):
        script.load_config(path, ["training.adam_beta1=0.5"])
    config = script.load_config(path, ["training.adam_betas=[0.5, 0.9]", "training.lr_scheduler=cosine"])
    assert config["training"]["adam_betas"] == [0.5, 0.9] and config["training"]["lr_scheduler"] == "cosine"


def test_clip_source_reads_a_clip_archive_and_holds_out_its_last_clips(tmp_path):
    from cosmos_hf.data import ClipArchive, simulate_clip_archive

    path = simulate_clip_archive(tmp_path / "clips.npz", num_clips=3, num_frames=5, height=32, width=32, fps=12,
                                 progress=False)
    archive = ClipArchive(path)
    data = {"source": "clips", "path": str(path), "height": 32, "width": 32, "validation_clips": 1}
    source = ClipSource(data, num_frames=5)
    for key in range(4):  # training keys cycle over the first 2 clips only
        np.testing.assert_array_equal(source.clip(key), archive.video(key % 2))
    held_out = source.validation_batch(first_key=0, count=1)
    np.testing.assert_allclose(held_out[0].numpy(), archive.video(2).transpose(3, 0, 1, 2) / 127.5 - 1, atol=1e-6)
    with pytest.raises(ValueError, match="holds 3 clips: not more than data.validation_clips=3"):
        ClipSource({**data, "validation_clips": 3}, num_frames=5)
