"""training/report_condition_sensitivity.py: the denoising error with the true, an uninformative and another clip's
condition — the direct test of whether a post-trained model uses its camera / actions / trajectory."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
VIDEO2WORLD = REPO_ROOT / "pipelines" / "cosmos-nano-video2world"


def load_report():
    spec = importlib.util.spec_from_file_location("report_condition_sensitivity",
                                                  REPO_ROOT / "training" / "report_condition_sensitivity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def untrained_pipeline(condition: str, out: Path) -> Path:
    """The nano config's conditioned pipeline before any training step: new inputs zero-initialised."""
    from cosmos_hf.diffusion.post_training import build_post_training_pipeline

    config = yaml.safe_load((REPO_ROOT / "training" / "configs" / f"diffusion_nano_{condition}.yaml").read_text())
    config["model"]["pretrained_pipeline"] = str(VIDEO2WORLD)
    build_post_training_pipeline(config).save_pretrained(out)
    return out


@pytest.mark.parametrize("condition", ["camera", "multiview"])
def test_a_model_whose_condition_columns_are_zero_scores_the_same_with_any_condition(tmp_path, condition):
    report = load_report()
    folder = untrained_pipeline(condition, tmp_path / condition)
    result = report.sensitivity(condition, folder, clips=2, workers=1, captions="scene", sigmas=(1.0,))
    errors = result["errors"]["sigma_1"]
    assert errors["true"]["mse"] > 0
    for variant in ("uninformative", "shuffled"):
        assert errors[variant] == errors["true"], variant
        assert errors[f"gap_{variant}"] == {"mse": 0.0, "mse_moving": 0.0}


def test_the_bundled_action_model_is_worse_with_another_clips_actions(tmp_path):
    report = load_report()
    out = tmp_path / "report.json"
    assert report.main(["--action", str(REPO_ROOT / "pipelines" / "cosmos-nano-action-conditioned"), "--clips", "4",
                        "--push_views", "0", "2", "--sim_workers", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())["action"]
    assert result["push_views"] == [0, 2]
    assert 0 < result["moving_fraction"] < 1
    for sigma in ("sigma_0.2", "sigma_1", "sigma_5"):
        assert result["errors"][sigma]["gap_shuffled"]["mse"] > 0, sigma


def test_the_report_refuses_a_single_clip_and_a_folder_that_is_not_a_pipeline(tmp_path):
    report = load_report()
    with pytest.raises(SystemExit):
        report.main(["--camera", str(REPO_ROOT / "pipelines" / "cosmos-nano-camera-control"), "--clips", "1"])
    with pytest.raises(SystemExit):
        report.main(["--camera", str(tmp_path), "--clips", "4"])
    with pytest.raises(SystemExit):
        report.main(["--clips", "4"])


def test_clips_that_reach_the_training_seeds_are_refused(tmp_path, capsys):
    """Clip i is simulator seed i and the nano post-training configs train from seed 10000: --clips 10001 scored a
    training clip as held out."""
    with pytest.raises(SystemExit):
        load_report().main(["--camera", str(VIDEO2WORLD), "--clips", "10001", "--out", str(tmp_path / "r.json")])
    assert "--clips must be <= 10000 (seeds from 10000 on are training clips), got 10001" in capsys.readouterr().err
