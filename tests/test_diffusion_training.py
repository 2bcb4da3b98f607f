"""training/train_diffusion.py end to end on tiny configs: `accelerate launch` pre-training (2 processes, gloo) and
LoRA post-training (1 process) that save loadable artifacts, resume from `latest` exactly and without unpickling,
LoRA on every bundled pipeline, and config errors."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cosmos_hf.data import write_video

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "train_diffusion.py"
CONFIGS = REPO / "training" / "configs"
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]


def load_script():
    spec = importlib.util.spec_from_file_location("train_diffusion", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """videos/*.mp4 + metas/*.txt: three 8-frame 32x32 clips of a red square falling."""
    root = tmp_path_factory.mktemp("clips")
    for index in range(3):
        frames = np.zeros((8, 32, 32, 3), np.uint8)
        for t in range(8):
            frames[t, 2 + 3 * t : 8 + 3 * t, 4 + 6 * index : 10 + 6 * index] = (220, 30, 30)
        write_video(root / "videos" / f"clip{index}.mp4", frames, fps=24)
        (root / "metas").mkdir(exist_ok=True)
        (root / "metas" / f"clip{index}.txt").write_text("a red cube falls")
    return root


def run(command, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def train_in_process(args):
    assert load_script().main([str(a) for a in args]) == 0


@pytest.fixture(scope="module")
def text2world_run(video_folder, tmp_path_factory):
    """2-step pre-training with `accelerate launch` in 2 processes (gloo on the CPU: the multi-process code path)."""
    output = tmp_path_factory.mktemp("t2w")
    result = run(ACCELERATE + ["--config_file", str(REPO / "training" / "accelerate" / "cpu_2proc.yaml"),
                               "--main_process_port", "29623", str(SCRIPT),
                               "--config", str(CONFIGS / "diffusion_tiny_t2w.yaml"), "--output_dir", str(output),
                               "--set", f"data.path={video_folder}"])
    return output, result.stdout + result.stderr


@pytest.mark.slow
def test_two_process_pretrain_via_accelerate_launch_saves_a_pipeline_that_loads_and_generates(text2world_run):
    from diffusers import DiffusionPipeline

    from cosmos_hf.pipelines.pipeline_cosmos_text2world import CosmosText2WorldPipeline

    text2world_run, output = text2world_run
    assert "processes: 2 (DistributedType.MULTI_CPU)" in output

    assert sorted(p.name for p in text2world_run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert (text2world_run / "validation" / "step-000002-0.mp4").is_file()
    pipe = DiffusionPipeline.from_pretrained(text2world_run / "pipeline", trust_remote_code=True)
    assert type(pipe) is CosmosText2WorldPipeline
    pipe.set_progress_bar_config(disable=True)
    frames = pipe("a red cube falls", num_inference_steps=2, output_type="np",
                  generator=torch.Generator().manual_seed(0)).frames
    assert frames.shape == (1, 5, 32, 32, 3) and np.isfinite(frames).all()
    log = [json.loads(line) for line in (text2world_run / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2] and all(np.isfinite(e["loss"]) for e in log)


def test_max_train_minutes_stops_at_what_fits_and_saves_the_pipeline(video_folder, tmp_path):
    """A 0.03-second budget: nothing fits after the 30 timing steps, so a 500-step run ends at step 30 with its
    pipeline saved (the budget itself, with a fake clock: tests/test_training_data_layer.py)."""
    train_in_process(["--config", CONFIGS / "diffusion_tiny_v2w.yaml", "--output_dir", tmp_path, "--max_train_steps",
                      500, "--max_train_minutes", 0.0005, "--set", f"data.path={video_folder}", "--set",
                      "training.checkpointing_steps=0", "--set", "training.lr_scheduler=cosine"])
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 30 and (tmp_path / "pipeline" / "model_index.json").is_file()


@pytest.mark.slow
def test_resume_from_latest_continues_the_step_count(text2world_run, video_folder):
    text2world_run, _ = text2world_run
    before = json.loads((text2world_run / "checkpoint-2" / "train_state.json").read_text())
    assert before["global_step"] == 2 and before["num_processes"] == 2
    train_in_process(["--config", CONFIGS / "diffusion_tiny_t2w.yaml", "--output_dir", text2world_run,
                      "--set", f"data.path={video_folder}", "--max_train_steps", 3,
                      "--resume_from_checkpoint", "latest", "--set", "validation.prompts=[]"])
    steps = [json.loads(line)["step"] for line in (text2world_run / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # step 3 only: training went on from 2, not from 0
    # checkpoints_total_limit=2 keeps the newest two
    assert sorted(p.name for p in text2world_run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]


@pytest.mark.slow
def test_lora_post_training_via_accelerate_launch_saves_loadable_lora_weights(video_folder, tmp_path):
    from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline

    base = tmp_path / "v2w"
    train_in_process(["--config", CONFIGS / "diffusion_tiny_v2w.yaml", "--output_dir", base,
                      "--set", f"data.path={video_folder}"])
    lora = tmp_path / "lora"
    run(ACCELERATE + ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend",
                      "no", str(SCRIPT), "--config", str(CONFIGS / "diffusion_tiny_v2w_lora.yaml"),
                      "--output_dir", str(lora), "--pretrained_pipeline", str(base / "pipeline"),
                      "--set", f"data.path={video_folder}", "--set", "data.height=16", "--set", "data.width=16",
                      "--set", "data.num_frames=4"])
    assert (lora / "pytorch_lora_weights.safetensors").is_file()
    pipe = CosmosVideo2WorldPipeline.from_pretrained(base / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    video = torch.rand(1, 3, 1, 16, 16) * 2 - 1
    args = dict(video=video, prompt="a red cube falls", num_inference_steps=2, guidance_scale=1.0, output_type="np")
    without = pipe(generator=torch.Generator().manual_seed(0), **args).frames
    pipe.load_lora_weights(lora)
    with_lora = pipe(generator=torch.Generator().manual_seed(0), **args).frames
    assert with_lora.shape == (1, 4, 16, 16, 3)
    assert np.abs(with_lora - without).max() > 1e-4  # the trained adapter changes the model


def test_config_errors_name_the_problem(tmp_path, video_folder):
    script = load_script()
    bad = tmp_path / "bad.yaml"
    bad.write_text("modle: {}\n")
    with pytest.raises(ValueError, match="unknown config key `modle`.*valid keys at the top level: data, model"):
        script.load_config(bad)
    with pytest.raises(ValueError, match="unknown config key `training.learnin_rate`.*learning_rate"):
        script.load_config(CONFIGS / "diffusion_tiny_t2w.yaml", ["training.learnin_rate=0.1"])
    bad.write_text("model: {pipeline: image2world}\n")
    with pytest.raises(ValueError, match="text2world or video2world"):
        script.load_config(bad)
    with pytest.raises(ValueError, match="num_frames must be"):
        script.main(["--config", str(CONFIGS / "diffusion_tiny_t2w.yaml"), "--output_dir", str(tmp_path / "o"),
                     "--set", f"data.path={video_folder}", "--set", "data.num_frames=6"])
    empty = tmp_path / "empty"
    (empty / "videos").mkdir(parents=True)
    with pytest.raises(ValueError, match="no videos found"):
        script.build_dataset({**script.DEFAULT_CONFIG["data"], "path": str(empty)})


# ------------------------------------------------------------------------------------- resume, data, post-training
RESUME_ARGS = ["--config", CONFIGS / "diffusion_tiny_t2w.yaml", "--max_train_steps", 4,
               "--set", "validation.prompts=[]", "--set", "training.log_every=1",
               "--set", "training.checkpoints_total_limit=10"]


class WritesAMarkerWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def uninterrupted_run(video_folder, tmp_path_factory):
    """4 steps straight with EMA (tiny t2w config), a checkpoint every step; 3 clips at batch 1 cross an epoch."""
    output = tmp_path_factory.mktemp("uninterrupted")
    train_in_process(RESUME_ARGS + ["--output_dir", output, "--set", f"data.path={video_folder}"])
    return output


def interrupted_copy(run, destination, last_checkpoint):
    """`run` as a crash after checkpoint `last_checkpoint` leaves it: no later checkpoint and no pipeline, but the
    log already holds the later steps."""
    shutil.copytree(run, destination)
    for path in destination.glob("checkpoint-*"):
        if int(path.name.split("-")[1]) > last_checkpoint:
            shutil.rmtree(path)
    shutil.rmtree(destination / "pipeline")
    return destination


def assert_same_weights(file_a, file_b):
    from safetensors.torch import load_file

    a, b = load_file(str(file_a)), load_file(str(file_b))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resumed_run_reproduces_the_uninterrupted_run_exactly(uninterrupted_run, video_folder, tmp_path):
    resumed = interrupted_copy(uninterrupted_run, tmp_path / "resumed", last_checkpoint=2)
    train_in_process(RESUME_ARGS + ["--output_dir", resumed, "--set", f"data.path={video_folder}",
                                    "--resume_from_checkpoint", "latest"])
    weights = Path("pipeline") / "transformer" / "diffusion_pytorch_model.safetensors"
    assert_same_weights(uninterrupted_run / weights, resumed / weights)  # the EMA weights (ema_decay 0.9)
    for name in ("model.safetensors", "ema.safetensors", "optimizer.safetensors"):
        assert_same_weights(uninterrupted_run / "checkpoint-4" / name, resumed / "checkpoint-4" / name)
    log = (resumed / "train_log.jsonl").read_text()
    assert [json.loads(line)["step"] for line in log.splitlines()] == [1, 2, 3, 4]  # each step once
    assert log == (uninterrupted_run / "train_log.jsonl").read_text()  # the same losses


@pytest.mark.slow
def test_resume_with_ema_never_unpickles_files_planted_in_the_checkpoint(uninterrupted_run, video_folder, tmp_path):
    resumed = interrupted_copy(uninterrupted_run, tmp_path / "resumed", last_checkpoint=3)
    marker = tmp_path / "code-ran"
    # accelerate's load_state unpickled the EMA from this file with weights_only=False: crafted, it ran code
    torch.save(WritesAMarkerWhenUnpickled(marker), resumed / "checkpoint-3" / "custom_checkpoint_0.pkl")
    train_in_process(RESUME_ARGS + ["--output_dir", resumed, "--set", f"data.path={video_folder}",
                                    "--resume_from_checkpoint", "latest"])
    assert not marker.exists()
    ema = Path("checkpoint-4") / "ema.safetensors"
    assert_same_weights(uninterrupted_run / ema, resumed / ema)


def test_a_corrupt_random_state_file_stops_the_resume_naming_it(uninterrupted_run, video_folder, tmp_path):
    resumed = interrupted_copy(uninterrupted_run, tmp_path / "resumed", last_checkpoint=1)
    (resumed / "checkpoint-1" / "random_states_0.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="random_states_0.safetensors is corrupt"):
        train_in_process(RESUME_ARGS + ["--output_dir", resumed, "--set", f"data.path={video_folder}",
                                        "--resume_from_checkpoint", "latest"])


def test_fewer_clips_than_the_batch_size_is_an_error_naming_both_numbers(video_folder, tmp_path):
    # used to loop forever: drop_last left no batch in an epoch
    with pytest.raises(ValueError, match="has 3 clips, fewer than one batch: training.batch_size 4"):
        train_in_process(["--config", CONFIGS / "diffusion_tiny_t2w.yaml", "--output_dir", tmp_path / "o",
                          "--set", f"data.path={video_folder}", "--set", "training.batch_size=4"])


def test_webdataset_shards_with_fewer_clips_than_the_batch_size_are_an_error(video_folder, tmp_path):
    import tarfile

    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w") as archive:  # one sample: clip0.mp4 + clip0.txt
        archive.add(video_folder / "videos" / "clip0.mp4", arcname="clip0.mp4")
        archive.add(video_folder / "metas" / "clip0.txt", arcname="clip0.txt")
    with pytest.raises(ValueError, match="gave no batch of training.batch_size 2"):
        train_in_process(["--config", CONFIGS / "diffusion_tiny_t2w.yaml", "--output_dir", tmp_path / "o",
                          "--set", "data.type=webdataset", "--set", f"data.path={shard}",
                          "--set", "training.batch_size=2"])


@pytest.mark.parametrize("name, config", [("cosmos-nano-video2world", "diffusion_tiny_v2w_lora.yaml"),
                                          ("cosmos-nano-text2world", "diffusion_tiny_t2w_lora.yaml")])
def test_lora_post_training_takes_the_architecture_from_each_bundled_pipeline(name, config, video_folder, tmp_path):
    import yaml

    pipeline = REPO / "pipelines" / name
    output = tmp_path / "lora"
    # issue #17: the Video2World run failed with a shape mismatch (32x18 vs 34x128): condition_frame_channels ignored
    train_in_process(["--config", CONFIGS / config, "--pretrained_pipeline", pipeline, "--output_dir", output,
                      "--set", f"data.path={video_folder}", "--max_train_steps", 1, "--set", "validation.prompts=[]"])
    assert (output / "pytorch_lora_weights.safetensors").is_file()
    index = json.loads((pipeline / "model_index.json").read_text())
    used = yaml.safe_load((output / "config.yaml").read_text())
    assert used["model"]["max_sequence_length"] == index["max_sequence_length"]
    assert used["objective"]["video2world"] == ("condition_frame_channels" in index)
    assert used["objective"].get("condition_frame_channels", False) == index.get("condition_frame_channels", False)


def test_lora_settings_are_checked_and_lora_needs_a_pretrained_pipeline(tmp_path):
    """`training.lora` keys were read with `.get`: peft's names (`r: 16`, `lora_alpha: 32`) or a typo trained the
    default rank 8 silently; LoRA without a pipeline to adapt saved only an adapter of a random DiT that was not
    saved. Both are refused when the config is read, naming the valid keys and ranges."""
    script = load_script()
    config = CONFIGS / "diffusion_tiny_t2w_lora.yaml"
    with pytest.raises(ValueError, match=r"unknown key\(s\) r in training.lora; valid keys: rank, alpha, dropout, "
                                         "target_modules"):
        script.load_config(config, ["training.lora.r=16"])
    with pytest.raises(ValueError, match=r"training.lora.rank must be an integer >= 1, got 0"):
        script.load_config(config, ["training.lora.rank=0"])
    with pytest.raises(ValueError, match=r"training.lora.dropout must be a number in \[0, 1\), got 1"):
        script.load_config(config, ["training.lora.dropout=1"])
    with pytest.raises(ValueError, match=r"training.lora must be a mapping"):
        script.load_config(config, ["training.lora=true"])
    lora = script.load_config(config, ["training.lora={rank: 16}"])["training"]["lora"]
    assert (lora["rank"], lora["alpha"]) == (16, 16)  # alpha defaults to the rank; config.yaml records both
    with pytest.raises(ValueError, match=r"training.lora trains an adapter on a trained pipeline: set "
                                         r"model.pretrained_pipeline"):
        script.resolve_config(script.parse_args(["--config", str(config), "--output_dir", str(tmp_path / "o")]))


def test_post_training_config_that_contradicts_the_pipeline_is_an_error(video_folder, tmp_path):
    with pytest.raises(ValueError, match=r"objective.condition_frame_channels=False but the pipeline has True"):
        train_in_process(["--config", CONFIGS / "diffusion_tiny_v2w_lora.yaml", "--output_dir", tmp_path / "o",
                          "--pretrained_pipeline", REPO / "pipelines" / "cosmos-nano-video2world",
                          "--set", f"data.path={video_folder}", "--set", "objective.condition_frame_channels=false"])


def test_a_cosmos_hf_cv_tokenizer_folder_becomes_a_plain_diffusers_vae(tmp_path):
    # the bundled nano CV tokenizer is saved as CosmosContinuousVideoTokenizer (with `legacy_mode`); loading it with
    # diffusers' AutoencoderKLCosmos warned and wrote the foreign key into every pipeline trained on it
    from diffusers import AutoencoderKLCosmos

    from cosmos_hf.tokenizers import load_tokenizer

    script = load_script()
    tokenizer_folder = REPO / "pipelines" / "cosmos-nano-tokenizer-cv4x8x8"
    config = script.load_config(CONFIGS / "diffusion_tiny_t2w.yaml", [f"model.vae={tokenizer_folder}"])
    pipe = script.build_pipeline(config)
    assert type(pipe.vae) is AutoencoderKLCosmos and "legacy_mode" not in pipe.vae.config
    pipe.vae.save_pretrained(tmp_path / "vae")
    assert "legacy_mode" not in json.loads((tmp_path / "vae" / "config.json").read_text())
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():  # same weights as the tokenizer
        expected = load_tokenizer(tokenizer_folder).encode(video).latent_dist.mode()
        torch.testing.assert_close(pipe.vae.encode(video).latent_dist.mode(), expected, rtol=0, atol=1e-5)


def test_clip_archive_is_read_whole_unless_num_clips_is_set(tmp_path):
    """The simulated-data default (1000 clips) once cut every clip archive to its first 1,000 clips silently."""
    script = load_script()
    archive = script.load_config(CONFIGS / "diffusion_nano_v2w_cv4x4x4.yaml")
    assert archive["data"]["type"] == "clips" and archive["data"]["num_clips"] is None  # ClipArchiveDataset: all
    assert script.load_config(CONFIGS / "diffusion_nano_v2w_cv4x4x4.yaml", ["data.num_clips=500"])["data"][
        "num_clips"] == 500
    simulated = tmp_path / "sim.yaml"
    simulated.write_text("data: {type: physics}\n")
    assert script.load_config(simulated)["data"]["num_clips"] == 1000


def test_scene_weights_reach_the_sampler_as_one_weight_per_clip(video_folder, tmp_path, monkeypatch):
    from cosmos_hf.data import simulate_clip_archive

    script = load_script()
    archive = simulate_clip_archive(tmp_path / "clips.npz", num_clips=4, num_frames=5, height=32, width=32, fps=24,
                                    views=[0], scenes=["free_fall", "dominoes"], progress=False)
    drawn = []

    def recording_loader(dataset, *args, sample_weights=None, **kwargs):
        drawn.append(sample_weights)
        return script.__dict__["_real_epoch_data_loader"](dataset, *args, sample_weights=sample_weights, **kwargs)

    monkeypatch.setitem(script.__dict__, "_real_epoch_data_loader", script.epoch_data_loader)
    monkeypatch.setattr(script, "epoch_data_loader", recording_loader)
    weights = ["--set", "data.type=clips", "--set", f"data.path={archive}", "--set", "data.cache_latents=true",
               "--set", "data.scene_weights={free_fall: 3, dominoes: 0.5}", "--set", "validation.prompts=[]"]
    assert script.main([str(a) for a in ["--config", CONFIGS / "diffusion_tiny_t2w.yaml", "--output_dir",
                                         tmp_path / "o", *weights]]) == 0
    assert drawn and drawn[0].tolist() == [3.0, 0.5, 3.0, 0.5]  # clip i: free_fall, dominoes, ... (cached too)
    assert "scenes drawn by weight free_fall 3, dominoes 0.5" in (tmp_path / "o" / "pipeline" / "README.md").read_text()
    with pytest.raises(ValueError, match="needs clips that record their scene .* not VideoFolderDataset"):
        script.main(["--config", str(CONFIGS / "diffusion_tiny_t2w.yaml"), "--output_dir", str(tmp_path / "f"),
                     "--set", f"data.path={video_folder}", "--set", "data.scene_weights={free_fall: 2}"])


def test_still_frame_reference_training_caches_the_pipelines_references_and_saves_the_option(video_folder, tmp_path):
    # objective.condition_reference=still_frame: the latent cache gains one still-frame reference per clip and
    # conditioning length, computed by the pipeline's own `encode_still_reference`; the saved pipeline samples so
    from safetensors.torch import load_file

    from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline

    script = load_script()
    still = ["--set", "objective.condition_frame_channels=true", "--set", "objective.condition_reference=still_frame"]
    cached = tmp_path / "cached"
    train_in_process(["--config", CONFIGS / "diffusion_tiny_v2w.yaml", "--output_dir", cached, *still,
                      "--set", f"data.path={video_folder}", "--set", "data.cache_latents=true"])
    pipe = CosmosVideo2WorldPipeline.from_pretrained(cached / "pipeline")
    assert pipe.config.condition_reference == "still_frame"
    references = load_file(str(cached / "latent_cache.safetensors"))["still_references"]
    assert references.shape == (3, 2, 3, 16, 16)  # clips x conditioning lengths (1, 2 latent frames) x C x h x w
    # a cache made for fewer conditioning lengths is extended by a later run that conditions on more
    shorter = tmp_path / "shorter"
    train_in_process(["--config", CONFIGS / "diffusion_tiny_v2w.yaml", "--output_dir", shorter, *still,
                      "--set", f"data.path={video_folder}", "--set", "data.cache_latents=true",
                      "--set", "objective.max_condition_frames=1"])
    assert load_file(str(shorter / "latent_cache.safetensors"))["still_references"].shape[1] == 1
    for checkpoint in shorter.glob("checkpoint-*"):  # a new run beside the last one's checkpoints is refused
        shutil.rmtree(checkpoint)
    train_in_process(["--config", CONFIGS / "diffusion_tiny_v2w.yaml", "--output_dir", shorter, *still,
                      "--set", f"data.path={video_folder}", "--set", "data.cache_latents=true"])
    torch.testing.assert_close(load_file(str(shorter / "latent_cache.safetensors"))["still_references"], references)
    clip = script.build_dataset(script.resolve_config(script.parse_args([
        "--config", str(CONFIGS / "diffusion_tiny_v2w.yaml"), "--set", f"data.path={video_folder}"]))["data"],
        training=True)
    clip.random_start = False
    first = script.collate([clip[0]])["video"]
    torch.testing.assert_close(references[0], script.still_frame_references(pipe, first, 2)[0])
    # without the cache the references are computed per batch; fine-tuning a default model onto the still-frame
    # reference (it changes no weight shape) saves the option with the weights
    base = tmp_path / "base"
    train_in_process(["--config", CONFIGS / "diffusion_tiny_v2w.yaml", "--output_dir", base,
                      "--set", "objective.condition_frame_channels=true", "--set", f"data.path={video_folder}"])
    default = CosmosVideo2WorldPipeline.from_pretrained(base / "pipeline")
    assert default.config.condition_reference == "last_latent_frame"
    tuned = tmp_path / "tuned"
    train_in_process(["--config", CONFIGS / "diffusion_tiny_v2w.yaml", "--output_dir", tuned,
                      "--pretrained_pipeline", base / "pipeline", "--set", "objective.condition_reference=still_frame",
                      "--set", f"data.path={video_folder}"])
    assert CosmosVideo2WorldPipeline.from_pretrained(tuned / "pipeline").config.condition_reference == "still_frame"
