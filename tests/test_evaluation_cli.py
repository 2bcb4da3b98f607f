"""`cosmos-hf eval ...` end to end on tiny inputs: files written, numbers right, bad input exits 2."""

import json

import numpy as np
import pytest

from cosmos_hf.cli import main
from cosmos_hf.evaluation.synthetic import intrinsics_from_fov, orbit_path, render_room


def _npy_folder(folder, videos):
    folder.mkdir()
    for name, video in videos.items():
        np.save(folder / f"{name}.npy", video)
    return folder


def test_eval_tokenizer_on_folders(tmp_path):
    rng = np.random.default_rng(0)
    reference = {f"clip{i}": rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8) for i in range(2)}
    noisy = {
        k: np.clip(v.astype(int) + rng.integers(-3, 4, v.shape), 0, 255).astype(np.uint8) for k, v in reference.items()
    }
    ref_dir = _npy_folder(tmp_path / "ref", reference)
    rec_dir = _npy_folder(tmp_path / "rec", noisy)
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "tokenizer",
                "--reference",
                str(ref_dir),
                "--reconstructed",
                str(rec_dir),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    result = json.loads((out / "results.json").read_text())
    mse = np.mean([np.mean((reference[k].astype(float) - noisy[k]) ** 2) for k in sorted(reference)])
    assert result["num_videos"] == 2 and result["rfvd"] is None
    assert result["psnr"] == pytest.approx(
        np.mean(
            [
                20 * np.log10(255 / np.sqrt(np.mean((reference[k].astype(float) - noisy[k]) ** 2)))
                for k in sorted(reference)
            ]
        )
    )
    assert 35 < result["psnr"] < 20 * np.log10(255 / np.sqrt(mse)) + 1
    assert (out / "report.md").is_file() and (out / "psnr_per_video.png").is_file()
    # Mismatched file names are refused with a message, exit code 2.
    (rec_dir / "clip1.npy").rename(rec_dir / "other.npy")
    assert (
        main(["eval", "tokenizer", "--reference", str(ref_dir), "--reconstructed", str(rec_dir), "--out", str(out)])
        == 2
    )


def test_eval_geometry_and_camera_on_a_synthetic_path(tmp_path, capsys):
    height, width = 240, 320
    K = intrinsics_from_fov(height, width)
    poses = orbit_path(6, -15, 15, radius=2.0)
    video = render_room(poses, K, height, width)
    np.save(tmp_path / "room.npy", video)
    np.savez(tmp_path / "poses.npz", cam_to_world=poses, intrinsics=K)
    out = tmp_path / "camera"
    assert (
        main(
            [
                "eval",
                "camera",
                "--video",
                str(tmp_path / "room.npy"),
                "--poses",
                str(tmp_path / "poses.npz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads((out / "results.json").read_text())
    assert result["rotation_error_deg"] < 0.5 and result["translation_error"] < 0.05
    assert (out / "rotation_error_per_frame.png").is_file()
    out = tmp_path / "geometry"
    assert (
        main(
            [
                "eval",
                "geometry",
                "--video",
                str(tmp_path / "room.npy"),
                "--poses",
                str(tmp_path / "poses.npz"),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    result = json.loads((out / "results.json").read_text())
    assert result["pose_success_rate_videos"] == 1.0 and result["sampson_error_px"] < 0.5
    assert (
        main(
            [
                "eval",
                "camera",
                "--video",
                str(tmp_path / "room.npy"),
                "--poses",
                str(tmp_path / "missing.npz"),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "camera file not found" in capsys.readouterr().err


COPY_PIPELINE = """
from dataclasses import dataclass

import numpy as np
from diffusers import DiffusionPipeline


@dataclass
class CopyOutput:
    frames: np.ndarray


class RepeatLastPipeline(DiffusionPipeline):
    def __init__(self):
        super().__init__()

    def __call__(self, video, prompt, num_frames, output_type="np", generator=None):
        frames = np.stack([np.asarray(image) for image in video]).astype(np.float32) / 255.0
        future = np.repeat(frames[-1:], num_frames - len(frames), axis=0)
        return CopyOutput(frames=np.concatenate([frames, future])[None])
"""


def test_eval_physics_command_on_the_builtin_world(tmp_path):
    sim = pytest.importorskip("cosmos_hf.sim")
    if not hasattr(sim, "SCENES"):
        pytest.skip("cosmos_hf.sim does not export SCENES yet")
    pipeline = tmp_path / "repeat_last"
    pipeline.mkdir()
    (pipeline / "pipeline.py").write_text(COPY_PIPELINE)
    (pipeline / "model_index.json").write_text(json.dumps({"_class_name": ["pipeline", "RepeatLastPipeline"]}))
    out = tmp_path / "physics"
    argv = ["eval", "physics", "--scenes", "free_fall", "--views", "1", "--seeds", "1", "--cond-frames", "1", "2",
            "--num-frames", "6", "--height", "32", "--width", "32", "--pipeline", str(pipeline), "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((out / "results.json").read_text())
    assert set(result["results"]) == {"cond1", "cond2"}
    by_predictor = result["results"]["cond2"]
    assert set(by_predictor) == {"copy-last", "constant-velocity", "ground-truth", "pipeline:repeat_last"}
    # A pipeline that repeats the last frame must score exactly like the copy-last baseline.
    assert by_predictor["pipeline:repeat_last"]["overall"] == by_predictor["copy-last"]["overall"]
    assert (out / "cond2_fg_iou_per_scene.png").is_file() and (out / "cond2_psnr_per_frame.png").is_file()
    assert main(argv[:3] + ["no_such_scene"] + argv[4:]) == 2
    # --seed-offset scores other simulator seeds (held out from both the benchmark and training, to pick options on)
    assert main([*argv[:-3], "--out", str(tmp_path / "offset"), "--seed-offset", "100", "--no-progress"]) == 0
    offset = json.loads((tmp_path / "offset" / "results.json").read_text())
    assert offset["config"]["seeds"] == [100] and result["config"]["seeds"] == [0]
    assert offset["results"]["cond2"]["copy-last"]["overall"] != by_predictor["copy-last"]["overall"]
    with pytest.raises(SystemExit):
        main([*argv, "--seed-offset", "-1"])


def test_eval_tokenizer_reconstructs_with_a_saved_autoencoder(tmp_path):
    import torch
    from diffusers import AutoencoderKLCosmos

    from cosmos_hf.evaluation.tokenizer_metrics import load_autoencoder, reconstruct_with_autoencoder
    from cosmos_hf.evaluation.video_metrics import psnr

    torch.manual_seed(0)
    AutoencoderKLCosmos(
        latent_channels=4,
        encoder_block_out_channels=(8, 8, 8),
        decode_block_out_channels=(8, 8, 8),
        attention_resolutions=(),
        resolution=16,
        num_layers=1,
        patch_size=4,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
        latents_mean=None,
        latents_std=None,
    ).save_pretrained(tmp_path / "tiny_tokenizer")
    video = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    ref_dir = _npy_folder(tmp_path / "ref", {"clip": video})
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "tokenizer",
                "--reference",
                str(ref_dir),
                "--tokenizer",
                str(tmp_path / "tiny_tokenizer"),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    result = json.loads((out / "results.json").read_text())
    reconstruction = reconstruct_with_autoencoder(load_autoencoder(tmp_path / "tiny_tokenizer"), video)
    assert reconstruction.shape == video.shape
    assert result["psnr"] == pytest.approx(psnr(video, reconstruction))
    assert main(["eval", "tokenizer", "--reference", str(ref_dir), "--out", str(out)]) == 2  # no reconstruction source


def test_tokenizer_command_psnr_is_the_evaluation_psnr():
    # the tokenizers package keeps its own PSNR (it may not import evaluation, which builds on it): same definition
    from cosmos_hf.evaluation.video_metrics import psnr
    from cosmos_hf.tokenizers.commands import video_psnr

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    assert abs(video_psnr(a, b) - psnr(a, b)) < 1e-9
    assert video_psnr(a, a) == psnr(a, a) == float("inf")


def test_eval_physics_refuses_repeated_scenes_and_more_views_than_the_simulator_has(tmp_path, capsys):
    """`--scenes free_fall,free_fall` weighed free_fall double in the overall mean; `--views 5` failed only after every
    earlier view of the first scene was simulated and predicted. Both are refused before any work."""
    sim = pytest.importorskip("cosmos_hf.sim")
    if not hasattr(sim, "SCENES"):
        pytest.skip("cosmos_hf.sim does not export SCENES yet")
    base = ["eval", "physics", "--predictors", "copy-last", "--seeds", "1", "--cond-frames", "1", "--num-frames", "3",
            "--height", "16", "--width", "16", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main([*base, "--scenes", "free_fall,free_fall", "--views", "1"]) == 2
    assert "scenes lists ['free_fall'] more than once" in capsys.readouterr().err
    assert main([*base, "--scenes", "free_fall", "--views", "5"]) == 2
    assert f"--views must be in 1..{sim.NUM_VIEWS} (the simulator renders views 0..{sim.NUM_VIEWS - 1}), got 5" \
        in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
