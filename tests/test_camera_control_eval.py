"""Camera-control evaluation (`cosmos_hf.evaluation.camera`, `cosmos-hf eval camera`) on camera-task paths."""

import json
import math

import numpy as np
import pytest

from cosmos_hf.cli import main
from cosmos_hf.evaluation.camera import trajectory_errors
from cosmos_hf.sim.camera_task import camera_path


def _pan(num_frames=9):
    poses, _ = camera_path("pan", np.random.default_rng(3), num_frames)
    return poses


def test_pan_translation_error_is_undefined_not_rounding_noise():
    # A pan turns the camera about its fixed centre: the requested path has no translation, only rounding noise
    # (~1e-16) from expressing poses relative to the first frame. Normalising by that noise scored every recovered
    # path as "off by the whole path" (1.0); the error is undefined and the rotation error still counts.
    poses = _pan()
    assert 0 < np.linalg.norm((np.linalg.inv(poses[0]) @ poses[-1])[:3, 3]) < 1e-12  # the noise is there
    c, s = math.cos(math.radians(2)), math.sin(math.radians(2))
    roll = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    perturbed = poses.copy()
    perturbed[1:] = poses[1:] @ roll
    errors = trajectory_errors(perturbed, poses)
    assert errors["translation_error"] is None
    assert errors["translation_error_per_frame"] == [None] * len(poses)
    assert errors["rotation_error_deg"] == pytest.approx(2.0, abs=1e-6)


def test_moving_camera_still_gets_a_normalised_translation_error():
    poses, _ = camera_path("dolly", np.random.default_rng(0), 9)
    still = np.repeat(poses[:1], len(poses), 0)
    errors = trajectory_errors(still, poses)  # a still camera is off by the path's extent at the last frame
    assert errors["translation_error_per_frame"][-1] == pytest.approx(1.0)
    assert 0.4 < errors["translation_error"] < 0.6


def test_eval_camera_cli_reports_a_pan(tmp_path, capsys):
    poses = _pan()
    K = np.array([[40.0, 0, 31.5], [0, 40.0, 31.5], [0, 0, 1]])
    video = np.zeros((len(poses), 64, 64, 3), np.uint8)  # nothing to match: every pair fails, read as "no motion"
    np.save(tmp_path / "video.npy", video)
    np.savez(tmp_path / "poses.npz", cam_to_world=poses, intrinsics=K)
    out = tmp_path / "camera"
    assert main(["eval", "camera", "--video", str(tmp_path / "video.npy"), "--poses", str(tmp_path / "poses.npz"),
                 "--out", str(out)]) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["translation_error"] is None and result["pose_success_rate"] == 0.0
    assert result["rotation_error_deg"] > 5.0  # the still video misses the whole pan
    assert "n/a" in (out / "report.md").read_text()


def test_klt_recovers_a_64px_camera_task_orbit_that_sift_cannot_see():
    from cosmos_hf.evaluation.camera import camera_control_errors
    from cosmos_hf.sim.camera_task import simulate_camera

    clip = simulate_camera(seed=1, num_frames=17, height=64, width=64, fps=12.0, trajectory="orbit")
    still = np.repeat(clip.video[:1], len(clip.video), 0)  # the floor: a video that does not move
    floor = camera_control_errors(still, clip.cam_to_world, clip.intrinsics, matcher="klt")
    sift = camera_control_errors(clip.video, clip.cam_to_world, clip.intrinsics)
    klt = camera_control_errors(clip.video, clip.cam_to_world, clip.intrinsics, matcher="klt")
    # flat-coloured objects at 64x64: SIFT recovers no pair of the true rendering, so it scores like the floor
    assert sift["pose_success_rate"] == 0.0 and floor["pose_success_rate"] == 0.0
    assert sift["rotation_error_deg"] == pytest.approx(floor["rotation_error_deg"])
    assert klt["matcher"] == "klt" and klt["pose_success_rate"] >= 0.5
    assert klt["rotation_error_deg"] < 0.5 * floor["rotation_error_deg"]
    assert klt["translation_error"] < 0.7 * floor["translation_error"]


def test_unknown_matcher_is_refused():
    from cosmos_hf.evaluation.camera import camera_control_errors

    poses = _pan()
    with pytest.raises(ValueError, match="unknown matcher 'orb'; choose one of sift, klt"):
        camera_control_errors(np.zeros((len(poses), 16, 16, 3), np.uint8), poses, np.eye(3), matcher="orb")


def test_eval_camera_runs_on_a_video_generated_by_the_camera_pipeline(tiny_video2world_folder, tmp_path):
    import torch

    from cosmos_hf.diffusion.camera_control import CosmosCameraControlTransformer3DModel
    from cosmos_hf.diffusion.post_training import pipeline_from_video2world
    from cosmos_hf.pipelines import CosmosCameraControlPipeline, CosmosVideo2WorldPipeline
    from cosmos_hf.sim.camera_task import simulate_camera

    base = CosmosVideo2WorldPipeline.from_pretrained(tiny_video2world_folder, disable_safety_checker=True)
    transformer = CosmosCameraControlTransformer3DModel.from_video2world(base.transformer).eval()
    pipe = pipeline_from_video2world(CosmosCameraControlPipeline, base, transformer, disable_safety_checker=True)
    pipe.set_progress_bar_config(disable=True)
    clip = simulate_camera(seed=0, num_frames=9, height=32, width=32, fps=12.0, trajectory="dolly")
    condition = torch.from_numpy(clip.video[:1]).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
    frames = pipe(video=condition, prompt=clip.caption, cam_to_world=clip.cam_to_world, intrinsics=clip.intrinsics,
                  num_inference_steps=2, output_type="np", generator=torch.Generator().manual_seed(0)).frames[0]
    np.save(tmp_path / "generated.npy", np.clip(np.round(frames * 255), 0, 255).astype(np.uint8))
    np.savez(tmp_path / "requested.npz", cam_to_world=clip.cam_to_world, intrinsics=clip.intrinsics)
    for matcher in ("sift", "klt"):
        out = tmp_path / matcher
        assert main(["eval", "camera", "--video", str(tmp_path / "generated.npy"), "--poses",
                     str(tmp_path / "requested.npz"), "--matcher", matcher, "--out", str(out)]) == 0
        result = json.loads((out / "results.json").read_text())
        assert result["matcher"] == matcher and 0.0 <= result["pose_success_rate"] <= 1.0
        assert len(result["rotation_error_per_frame"]) == 9 and np.isfinite(result["rotation_error_deg"])
        assert result["translation_error"] >= 0.0  # a dolly moves the camera centre: defined
        assert (out / "report.md").is_file() and (out / "rotation_error_per_frame.png").is_file()


def test_camera_control_report_scores_the_bundled_model_against_ceiling_and_floor(tmp_path):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("report_camera_control",
                                                  root / "training" / "report_camera_control.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    out = tmp_path / "report.json"
    assert report.main(["--pipeline", str(root / "pipelines" / "cosmos-nano-camera-control"), "--base", "none",
                        "--clips_per_trajectory", "1", "--steps", "1", "--ceiling_sizes", "--device", "cpu",
                        "--captions", "scene", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["captions"] == "scene"  # prompts that do not name the camera motion
    for matcher in ("sift", "klt"):
        overall = result[matcher]["overall"]
        assert set(overall) == {"true_video", "copy_first_frame", "model", "model_still_camera"}
        assert all(row["clips"] == 3 for row in overall.values())
        assert result[matcher]["by_trajectory"]["pan"]["model"]["translation_error"] is None
        assert overall["copy_first_frame"]["failed_pair_rate"] == 1.0
    # what the metric can see at 64x64: nothing with SIFT, about half of the true pairs with KLT
    assert result["sift"]["overall"]["true_video"]["failed_pair_rate"] == 1.0
    assert result["klt"]["overall"]["true_video"]["failed_pair_rate"] < 0.8


def test_camera_control_report_refuses_clips_that_reach_the_training_seeds(tmp_path, capsys):
    """Clip i of each trajectory kind is simulator seed i; the nano camera config trains from seed 10000."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("report_camera_control",
                                                  root / "training" / "report_camera_control.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    with pytest.raises(SystemExit):
        report.main(["--pipeline", str(root / "pipelines" / "cosmos-nano-camera-control"),
                     "--clips_per_trajectory", "10001", "--out", str(tmp_path / "r.json")])
    assert "--clips_per_trajectory must be <= 10000" in capsys.readouterr().err
