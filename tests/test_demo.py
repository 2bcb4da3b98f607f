"""`make demo` (cosmos_hf.demo): with tiny random world-model pipelines saved in Hub layout and the bundled nano
tokenizers, one held-out clip at 32x32: the videos have the documented layout, metrics.json holds finite scores of the
predicted frames only, a missing pipeline folder is skipped with a note, and bad arguments are refused."""

import json
import logging
import warnings

import numpy as np
import pytest
import torch
from diffusers import EDMEulerScheduler

from cosmos_hf import CosmosARConfig, CosmosARForCausalLM, demo
from cosmos_hf.autoregressive.medusa import init_medusa_heads_from_lm_head
from cosmos_hf.data import read_video
from cosmos_hf.diffusion.nano import tiny_cosmos_vae, tiny_t5_text_encoder, tiny_transformer
from cosmos_hf.evaluation.video_metrics import psnr, ssim_per_frame
from cosmos_hf.pipelines.pipeline_cosmos_ar_video2world import CosmosARVideo2WorldPipeline
from cosmos_hf.pipelines.pipeline_cosmos_text2world import CosmosText2WorldPipeline
from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline
from cosmos_hf.tokenizers.configs import from_config_name

SIZE, FRAMES = 32, 17


def scheduler():
    return EDMEulerScheduler(sigma_max=80.0, sigma_min=0.002, sigma_data=0.5, final_sigmas_type="sigma_min")


@pytest.fixture(scope="module")
def pipeline_folders(tmp_path_factory, tiny_video2world_folder):
    """Tiny random Video2World, Text2World and AR Video2World (with Medusa heads) pipelines, saved like the nano ones,
    and camera-control, action-conditioned and 2-camera multi-view pipelines post-trained (untrained) from conftest's
    tiny Video2World (32x32, 9 frames)."""
    from test_pipelines_action_conditioned import action_pipeline
    from test_pipelines_camera_control import camera_pipeline
    from test_pipelines_multiview import multiview_pipeline

    root = tmp_path_factory.mktemp("pipelines")
    for name, build in (("camera", camera_pipeline), ("action", action_pipeline), ("multiview", multiview_pipeline)):
        build(tiny_video2world_folder)[0].save_pretrained(root / name)
    tokenizer, encoder = tiny_t5_text_encoder()
    common = dict(default_height=SIZE, default_width=SIZE, default_num_frames=FRAMES, default_fps=12,
                  max_sequence_length=8, default_guidance_scale=1.0)
    CosmosVideo2WorldPipeline(encoder, tokenizer, tiny_transformer(4, 16, video2world=True), tiny_cosmos_vae(4),
                              scheduler(), default_condition_detail_transfer=True, **common
                              ).save_pretrained(root / "v2w")
    CosmosText2WorldPipeline(encoder, tokenizer, tiny_transformer(4, 16), tiny_cosmos_vae(4), scheduler(), **common
                             ).save_pretrained(root / "t2w")
    torch.manual_seed(0)
    dv = from_config_name("DV4x8x8", channels=8, channels_mult=[1, 2, 2], num_res_blocks=1, z_channels=16).eval()
    # a 5 x 4 x 4 token grid: 17 frames of 32x32 through DV4x8x8
    ar = CosmosARForCausalLM(CosmosARConfig(vocab_size=64000, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                            num_attention_heads=2, num_key_value_heads=1, latent_shape=[5, 4, 4],
                                            pad_to_multiple_of=8, medusa_num_heads=2)).eval()
    init_medusa_heads_from_lm_head(ar)
    CosmosARVideo2WorldPipeline(ar, dv).save_pretrained(root / "ar")
    # the same model with saved call defaults, in the second AR slot (the nano DV4x4x4 AR pipeline's)
    CosmosARVideo2WorldPipeline(ar, dv, default_previous_frame_logit_bias=2.0, default_condition_keep_threshold=0.1
                                ).save_pretrained(root / "ar_saved")
    return root


def run_demo(out, folders, *extra):
    args = ["--out", str(out), "--clips", "1", "--size", str(SIZE), "--frames", str(FRAMES), "--steps", "2",
            *[f"--{name.replace('_', '-')}={folder}" for name, folder in folders.items()], *extra]
    assert demo.main(args) == 0
    return json.loads((out / "metrics.json").read_text())


def test_demo_writes_world_model_videos_and_scores_predicted_frames(pipeline_folders, tmp_path, capsys):
    folders = {"video2world": pipeline_folders / "v2w", "text2world": pipeline_folders / "t2w",
               "ar_video2world": pipeline_folders / "ar", "ar_video2world_dv4x4x4": pipeline_folders / "ar_saved",
               "camera_control": pipeline_folders / "camera",
               "action_conditioned": pipeline_folders / "action", "multiview": pipeline_folders / "multiview"}
    metrics = run_demo(tmp_path / "demo", folders)

    # layouts: tokenizers have 4 columns, Video2World-style videos 3, Text2World 2; one row per clip, each under a
    # label strip, panels enlarged PANEL_SCALE times
    panel = SIZE * demo.PANEL_SCALE
    for name, columns in [("tokenizers", 5), ("video2world", 3), ("text2world", 2), ("ar_video2world", 3),
                          ("ar_video2world_dv4x4x4", 3)]:
        video, _ = read_video(tmp_path / "demo" / f"{name}.mp4")
        assert video.shape == (FRAMES, demo.LABEL_HEIGHT + panel, columns * panel, 3), name
    # the first column of video2world.mp4 is the simulator's clip, enlarged
    scene, seed = demo.DEMO_CLIPS[0]
    truth = demo.simulate_clips([(scene, seed)], FRAMES, SIZE)[0]["video"]
    video, _ = read_video(tmp_path / "demo" / "video2world.mp4")
    enlarged = truth.repeat(demo.PANEL_SCALE, axis=1).repeat(demo.PANEL_SCALE, axis=2)
    assert psnr(video[:, demo.LABEL_HEIGHT:, :panel], enlarged) > 30  # H.264 only
    for name in ("video2world", "copy_last", "ar_video2world", "ar_video2world_dv4x4x4"):
        assert set(metrics[name]) >= {"psnr_db", "ssim", "exact_clips"}
        assert np.isfinite(metrics[name]["psnr_db"]) and 0 < metrics[name]["ssim"] <= 1, (name, metrics[name])
    assert "text2world" not in metrics  # no pixel truth for a caption: no metric
    assert metrics["ar_video2world"]["use_medusa"] is True  # the tiny AR model has Medusa heads
    assert metrics["ar_video2world"]["use_diffusion_decoder"] is False  # ... and no diffusion decoder
    # the second AR folder's saved defaults shape its output and are recorded; the first has none
    saved = metrics["ar_video2world_dv4x4x4"]
    assert saved["previous_frame_logit_bias"] == 2.0 and saved["condition_keep_threshold"] == 0.1
    assert "previous_frame_logit_bias" not in metrics["ar_video2world"]
    assert saved["psnr_db"] != metrics["ar_video2world"]["psnr_db"]
    assert set(metrics["section_seconds"]) == {"tokenizers", *folders}
    assert "skipped" not in metrics and metrics["clips"] == ["dominoes/seed900000"]
    # metrics.json says what it scores, before the scores
    about = metrics["about"]
    assert list(metrics)[0] == "about"
    world_models = about["video2world, ar_video2world, ar_video2world_dv4x4x4"]
    assert "frames 1..16" in about["copy_last"] and "frames 1..16" in world_models
    assert "the first frame" in world_models and "12 fps" in about["what"]
    assert "psnr_db and ssim" in about["higher_is_better"]
    assert about["videos"]["video2world.mp4"] == "ground truth | copy-last | Video2World"
    assert set(about["videos"]) >= {f"{name}.mp4" for name in ("tokenizers", "video2world", "text2world",
                                                                    "ar_video2world")}

    # copy-last is scored on the predicted frames 1..16 only, with the physics benchmark's PSNR / SSIM
    held = np.repeat(truth[:1], FRAMES - 1, axis=0)
    assert metrics["copy_last"]["psnr_db"] == pytest.approx(psnr(held, truth[1:]), abs=1e-3)
    assert metrics["copy_last"]["ssim"] == pytest.approx(np.mean(ssim_per_frame(held, truth[1:])), abs=1e-4)
    # frame 0 (the conditioning frame, exact for copy-last) is not in the score: with it PSNR would be higher
    assert psnr(np.concatenate([truth[:1], held]), truth) > metrics["copy_last"]["psnr_db"] + 0.1

    printed = capsys.readouterr().out
    assert "(ground truth | copy-last | Video2World; one clip per row)" in printed and "note: skipping" not in printed

    # the post-trained models, on their own task at their own size and frame count (the tiny base: 32x32, 9 frames):
    # simulator | copy-last | model; the multi-view panels hold both cameras side by side
    small_panel = 32 * demo.PANEL_SCALE
    for name, cameras in (("camera_control", 1), ("action_conditioned", 1), ("multiview", 2)):
        video, _ = read_video(tmp_path / "demo" / f"{name}.mp4")
        assert video.shape == (9, demo.LABEL_HEIGHT + small_panel, 3 * cameras * small_panel, 3), name
        entry = metrics[name]
        assert (entry["frames"], entry["size"], entry["clips"]) == (9, 32, ["seed900000"]), entry
        for scores in (entry, entry["copy_last"]):  # an untrained model's SSIM can be just below 0
            assert np.isfinite(scores["psnr_db"]) and -1 <= scores["ssim"] <= 1, (name, entry)
    assert metrics["action_conditioned"]["fps"] == 12.0  # the tiny base's default_fps, the clip was simulated at
    # the camera task's copy-last baseline is the clip's own first frame held, scored on frames 1..8
    from cosmos_hf.data.post_training_datasets import simulate_clips

    camera_clip = simulate_clips("camera", [demo.HELD_OUT_SEED_OFFSET], 9, 32, 32, 12.0, workers=1)[0]["video"]
    held = np.repeat(camera_clip[:1], 8, axis=0)
    assert metrics["camera_control"]["copy_last"]["psnr_db"] == pytest.approx(psnr(held, camera_clip[1:]), abs=1e-3)
    assert "(simulator | copy-last | camera model; one clip per row)" in printed

    # --skip-world-models: the tokenizer section alone
    tokenizers_only = run_demo(tmp_path / "tokenizers_only", folders, "--skip-world-models")
    assert tokenizers_only["CV4x8x8"] == metrics["CV4x8x8"] and "copy_last" not in tokenizers_only
    assert sorted(p.name for p in (tmp_path / "tokenizers_only").glob("*.mp4")) == ["tokenizers.mp4"]


def test_missing_pipeline_folders_are_skipped_with_a_note(pipeline_folders, tmp_path, capsys):
    missing = tmp_path / "no-such-pipeline"
    folders = {"video2world": pipeline_folders / "v2w", "text2world": missing, "ar_video2world": missing,
               "ar_video2world_dv4x4x4": missing, "camera_control": missing, "action_conditioned": missing,
               "multiview": missing}
    metrics = run_demo(tmp_path / "demo", folders)
    printed = capsys.readouterr().out
    assert f"note: skipping text2world: {missing} not found" in printed
    assert f"note: skipping ar_video2world: {missing} not found" in printed
    assert f"note: skipping multiview: {missing} not found" in printed
    assert set(metrics["skipped"]) == {"text2world", "ar_video2world", "ar_video2world_dv4x4x4", "camera_control",
                                       "action_conditioned", "multiview"}
    assert "ar_video2world" not in metrics and np.isfinite(metrics["video2world"]["psnr_db"])
    assert not (tmp_path / "demo" / "text2world.mp4").exists() and (tmp_path / "demo" / "video2world.mp4").exists()


def test_demo_refuses_bad_arguments_and_wrong_pipeline_kinds(pipeline_folders, tmp_path, capsys):
    for bad, message in [(["--clips", "5"], "--clips must be in [1, 4]"), (["--clips", "0"], "must be a positive integer (>= 1)"),
                         (["--frames", "16"], "--frames must be 1 + 4k"), (["--size", "30"], "multiple of 8")]:
        with pytest.raises(SystemExit):
            demo.main(["--out", str(tmp_path / "bad"), *bad])
        assert message in capsys.readouterr().err
    # a Video2World folder given as the Text2World model (Video2World subclasses Text2World)
    with pytest.raises(ValueError, match="holds a CosmosVideo2WorldPipeline, not a text2world pipeline"):
        demo.load_world_model(pipeline_folders / "v2w", "text2world")
    with pytest.raises(ValueError, match="not a ar_video2world pipeline"):
        demo.load_world_model(pipeline_folders / "t2w", "ar_video2world")
    # the post-trained pipelines subclass Video2World but need their condition: not accepted as the Video2World model
    with pytest.raises(ValueError, match="holds a CosmosCameraControlPipeline, not a video2world pipeline"):
        demo.load_world_model(pipeline_folders / "camera", "video2world")
    with pytest.raises(ValueError, match="holds a CosmosMultiViewPipeline, not a action_conditioned pipeline"):
        demo.load_world_model(pipeline_folders / "multiview", "action_conditioned")


def test_demo_clips_move_as_fast_as_the_training_clips():
    # the nano world models were trained on 12 fps clips: the demo simulates at that rate, not the simulator's 24
    from cosmos_hf import sim

    clip = demo.simulate_clips([("free_fall", 2)], FRAMES, SIZE)[0]["video"]
    at_12 = sim.simulate("free_fall", seed=demo.HELD_OUT_SEED_OFFSET + 2, num_frames=FRAMES, height=SIZE, width=SIZE,
                         fps=12).video
    np.testing.assert_array_equal(clip, at_12)
    assert demo.DEMO_FPS == 12


def test_labelled_grid_draws_each_label_above_its_own_panel():
    black = np.zeros((2, 8, 8, 3), np.uint8)
    grid = demo.labelled_grid([[black, black], [black, black]], ("ground truth", "model"))
    panel = 8 * demo.PANEL_SCALE
    assert grid.shape == (2, 2 * (demo.LABEL_HEIGHT + panel), 2 * panel, 3)
    strip = grid[0, : demo.LABEL_HEIGHT]
    for column in range(2):  # white text on the dark strip, inside each panel's own width
        assert strip[:, column * panel : (column + 1) * panel].max() > 200
    assert (grid[:, demo.LABEL_HEIGHT : demo.LABEL_HEIGHT + panel] == 0).all()  # the panels themselves untouched
    with pytest.raises(ValueError, match="2 panels for 3 labels"):
        demo.labelled_grid([[black, black]], ("a", "b", "c"))


class RecordWarnings(logging.Handler):
    """Collects WARNING+ records of the libraries' own loggers (diffusers and transformers do not propagate to root)."""

    LOGGERS = ("diffusers", "transformers", "cosmos_hf", "py.warnings")

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.name}: {record.getMessage()}")

    def __enter__(self):
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc):
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)


def test_bundled_pipelines_and_tokenizers_load_without_warnings():
    # a first impression: `make demo` and the Space load these; diffusers used to warn that the vae config's
    # `legacy_mode` "will be ignored" (written there by loading a cosmos-hf tokenizer folder with diffusers' class)
    from cosmos_hf.tokenizers import load_tokenizer

    for kind, folder in {**demo.NANO_WORLD_MODELS, **demo.NANO_POST_TRAINED}.items():
        with RecordWarnings() as records, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            demo.load_world_model(folder, kind)
        assert not records.messages and not [str(w.message) for w in caught], (kind, records.messages, caught)
    for name, folder in demo.NANO_TOKENIZERS.items():
        with RecordWarnings() as records, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_tokenizer(folder)
        assert not records.messages and not [str(w.message) for w in caught], (name, records.messages, caught)
