"""Physics-alignment benchmark logic on synthetic moving squares, the baselines, reports, and the pipeline adapter."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from cosmos_hf.evaluation.physics import objects_from_record, run_physics_benchmark, score_prediction
from cosmos_hf.evaluation.predictors import (
    ConstantVelocityPredictor,
    CopyLastFramePredictor,
    DiffusersPipelinePredictor,
    GroundTruthPredictor,
)
from cosmos_hf.evaluation.report import write_physics_report
from cosmos_hf.evaluation.synthetic import moving_squares_sample


def _context(sample, tc, truth=False):
    context = {"cond_masks": sample.masks[:tc], "object_ids": sample.object_ids, "seed": 0}
    if truth:
        context["ground_truth"] = sample.frames
    return context


def test_ground_truth_prediction_scores_perfectly():
    sample = moving_squares_sample(seed=3, num_frames=10)
    predicted = GroundTruthPredictor()(sample.frames[:3], sample.caption, 10, _context(sample, 3, truth=True))
    scores = score_prediction(sample, predicted, 3)
    assert scores["psnr"] == math.inf
    assert scores["ssim"] == pytest.approx(1.0)
    assert scores["fg_iou"] == 1.0 and scores["object_iou"] == 1.0
    assert len(scores["curves"]["psnr"]) == 7


def test_constant_velocity_beats_copy_last_on_constant_velocity_motion():
    for seed in range(3):
        sample = moving_squares_sample(seed=seed, num_frames=14, num_objects=1)
        tc = 4
        copy = score_prediction(sample, CopyLastFramePredictor()(sample.frames[:tc], "", 14), tc)
        velocity = score_prediction(
            sample, ConstantVelocityPredictor()(sample.frames[:tc], "", 14, _context(sample, tc)), tc
        )
        # One square at constant integer velocity: its extrapolated mask is exact; the background it uncovers is
        # exact where an earlier conditioning frame showed it and inpainted (nearly exact on a smooth ramp) elsewhere.
        assert velocity["fg_iou"] == 1.0 and velocity["psnr"] > 45
        assert copy["fg_iou"] < 0.5 and copy["psnr"] < 40


def test_constant_velocity_with_one_conditioning_frame_is_copy_last():
    sample = moving_squares_sample(seed=1, num_frames=8)
    copy = CopyLastFramePredictor()(sample.frames[:1], "", 8)
    velocity = ConstantVelocityPredictor()(sample.frames[:1], "", 8, _context(sample, 1))
    np.testing.assert_array_equal(copy, velocity)


def test_predictors_reject_bad_requests():
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="conditioning frames"):
        CopyLastFramePredictor()(frames, "", 3)
    with pytest.raises(ValueError, match="ground_truth"):
        GroundTruthPredictor()(frames, "", 5, {})
    with pytest.raises(ValueError, match="uint8"):
        CopyLastFramePredictor()(frames.astype(float), "", 5)


def test_benchmark_aggregates_and_writes_json_markdown_and_plots(tmp_path):
    predictors = {
        "copy-last": CopyLastFramePredictor(),
        "constant-velocity": ConstantVelocityPredictor(),
        "ground-truth": GroundTruthPredictor(),
    }
    results = run_physics_benchmark(
        predictors,
        ["squares_a", "squares_b"],
        seeds=[0, 1],
        views=[0],
        cond_frames=[1, 3],
        num_frames=9,
        height=32,
        width=32,
        sample_fn=moving_squares_sample,
        progress=False,
    )
    cond3 = results["results"]["cond3"]
    assert len(cond3["copy-last"]["samples"]) == 4
    assert cond3["ground-truth"]["overall"]["fg_iou"] == 1.0
    assert cond3["ground-truth"]["overall"]["psnr"] == math.inf
    assert cond3["copy-last"]["overall"]["fg_iou"] < cond3["ground-truth"]["overall"]["fg_iou"]
    assert len(cond3["copy-last"]["per_frame"]["psnr"]) == 6  # 9 - 3 predicted frames
    per_scene = cond3["copy-last"]["per_scene"]["squares_a"]["ssim"]
    manual = np.mean([s["ssim"] for s in cond3["copy-last"]["samples"] if s["scene"] == "squares_a"])
    assert per_scene == pytest.approx(manual)
    # 1 conditioning frame: no velocity to estimate, the two baselines coincide.
    assert (
        results["results"]["cond1"]["constant-velocity"]["overall"]
        == results["results"]["cond1"]["copy-last"]["overall"]
    )

    written = write_physics_report(results, tmp_path, command="cosmos-hf eval physics ...")
    data = json.loads((tmp_path / "results.json").read_text())  # strict JSON: inf as "inf", NaN as null
    assert data["results"]["cond3"]["ground-truth"]["overall"]["psnr"] == "inf"
    markdown = (tmp_path / "report.md").read_text()
    assert "| ground-truth | inf | 1.000 | 1.000 | 1.000 | 1.000 |" in markdown
    assert len(written["plots"]) == 2 * 3 * 2
    for plot in written["plots"]:
        with open(plot, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_sim_record_metadata_skips_static_objects():
    record = {
        "masks": np.zeros((1, 4, 4), np.uint8),
        "objects": [
            {"id": 1, "name": "slope", "color": "white", "rgb": [250, 250, 250], "static": True},
            {"id": 2, "name": "red_box", "color": "red", "rgb": [200, 30, 30], "static": False},
        ],
    }
    ids, colours = objects_from_record(record)
    assert ids == [2]
    np.testing.assert_allclose(colours[2], [200, 30, 30])


PIPELINE_SOURCE = '''
from dataclasses import dataclass

import numpy as np
from diffusers import DiffusionPipeline


@dataclass
class ShiftRightOutput:
    frames: np.ndarray


class ShiftRightPipeline(DiffusionPipeline):
    """Test double: repeats the last conditioning frame, rolled one pixel right per frame, output_type='np'."""

    def __init__(self):
        super().__init__()

    def __call__(self, video, prompt, num_frames, output_type="np", generator=None, height=None, width=None,
                 condition_detail_transfer=None):
        frames = np.stack([np.asarray(image) for image in video]).astype(np.float32) / 255.0
        shift = 2 if condition_detail_transfer else 1  # lets a test see which variant was called
        future = [np.roll(frames[-1], shift * k, axis=1) for k in range(1, num_frames - len(frames) + 1)]
        return ShiftRightOutput(frames=np.concatenate([frames, np.stack(future)])[None])
'''


def _fake_pipeline_folder(tmp_path):
    folder = tmp_path / "fake_pipeline"
    folder.mkdir()
    (folder / "pipeline.py").write_text(PIPELINE_SOURCE)
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": ["pipeline", "ShiftRightPipeline"], "_diffusers_version": "0.42.1"})
    )
    return folder


def test_pipeline_adapter_loads_a_saved_folder_and_calls_it(tmp_path):
    folder = _fake_pipeline_folder(tmp_path)
    predictor = DiffusersPipelinePredictor(folder)
    sample = moving_squares_sample(seed=0, num_frames=6, height=16, width=16)
    predicted = predictor(sample.frames[:2], sample.caption, 6, {"seed": 0})
    assert predicted.dtype == np.uint8 and predicted.shape == (6, 16, 16, 3)
    np.testing.assert_array_equal(predicted[:2], sample.frames[:2])
    np.testing.assert_array_equal(predicted[4], np.roll(sample.frames[1], 3, axis=1))
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        DiffusersPipelinePredictor(tmp_path)


def test_detail_transfer_both_scores_the_pipeline_with_and_without_it(tmp_path):
    from cosmos_hf.evaluation.commands import build_predictors

    folder = _fake_pipeline_folder(tmp_path)
    predictors = build_predictors([], pipeline=folder, condition_detail_transfer="both")
    assert list(predictors) == ["pipeline:fake_pipeline (latent only)", "pipeline:fake_pipeline + detail transfer"]
    sample = moving_squares_sample(seed=0, num_frames=4, height=16, width=16)
    plain, transferred = (p(sample.frames[:1], "", 4, {"seed": 0}) for p in predictors.values())
    np.testing.assert_array_equal(plain[1], np.roll(sample.frames[0], 1, axis=1))
    np.testing.assert_array_equal(transferred[1], np.roll(sample.frames[0], 2, axis=1))
    assert list(build_predictors([], pipeline=folder)) == ["pipeline:fake_pipeline"]  # the saved default
    forced = build_predictors([], pipeline=folder, call_kwargs={"condition_detail_transfer": True})
    np.testing.assert_array_equal(forced["pipeline:fake_pipeline"](sample.frames[:1], "", 4, {"seed": 0}), transferred)
    with pytest.raises(ValueError, match="condition_detail_transfer must be one of"):
        build_predictors([], pipeline=folder, condition_detail_transfer="sometimes")


def test_benchmark_on_the_builtin_world():
    sim = pytest.importorskip("cosmos_hf.sim")
    if not hasattr(sim, "simulate") or not hasattr(sim, "SCENES"):
        pytest.skip("cosmos_hf.sim does not export simulate/SCENES yet")
    predictors = {"copy-last": CopyLastFramePredictor(), "ground-truth": GroundTruthPredictor()}
    results = run_physics_benchmark(
        predictors,
        ["free_fall"],
        seeds=[0],
        views=[0],
        cond_frames=[2],
        num_frames=10,
        height=32,
        width=32,
        progress=False,
    )
    truth = results["results"]["cond2"]["ground-truth"]["overall"]
    copy = results["results"]["cond2"]["copy-last"]["overall"]
    assert truth["psnr"] == math.inf
    assert truth["fg_iou"] > 0.7  # how much the colour-matching itself loses on rendered (shaded) objects
    assert copy["fg_iou"] < truth["fg_iou"]


def test_objects_sharing_a_colour_are_scored_as_one_class():
    sample = moving_squares_sample(seed=5, num_frames=8, num_objects=2)
    sample.frames[sample.masks == 2] = (220, 40, 40)  # paint object 2 the colour of object 1
    sample.object_colours = {1: np.array([220.0, 40, 40]), 2: np.array([220.0, 40, 40])}
    predicted = GroundTruthPredictor()(sample.frames[:2], "", 8, _context(sample, 2, truth=True))
    scores = score_prediction(sample, predicted, 2)
    assert scores["colour_classes"] == {1: 1, 2: 1}
    assert list(scores["per_class_iou"]) == [1]
    assert scores["object_iou"] == 1.0 and scores["fg_iou"] == 1.0


def test_tokenizer_round_trip_bound_is_the_ground_truth_through_the_tokenizer():
    from cosmos_hf.evaluation.predictors import TokenizerRoundTripPredictor
    from cosmos_hf.evaluation.tokenizer_metrics import reconstruct_with_autoencoder
    from cosmos_hf.evaluation.video_metrics import psnr

    folder = Path(__file__).resolve().parents[1] / "pipelines" / "cosmos-nano-tokenizer-cv4x8x8"
    predictor = TokenizerRoundTripPredictor(folder)
    sample = moving_squares_sample(seed=0, num_frames=9, height=32, width=32)
    context = {"ground_truth": sample.frames, "seed": 0}
    predicted = predictor(sample.frames[:1], sample.caption, 9, context)
    np.testing.assert_array_equal(predicted[:1], sample.frames[:1])
    np.testing.assert_array_equal(predicted[1:], reconstruct_with_autoencoder(predictor.autoencoder, sample.frames)[1:])
    assert 10 < psnr(sample.frames[1:], predicted[1:]) < math.inf  # close to the truth, never exact
    assert predictor.requires_ground_truth and predictor.name == "tokenizer-bound:cosmos-nano-tokenizer-cv4x8x8"


def test_tokenizer_bound_with_detail_transfer_restores_a_still_scene_exactly():
    from cosmos_hf.evaluation.predictors import TokenizerRoundTripPredictor

    folder = Path(__file__).resolve().parents[1] / "pipelines" / "cosmos-nano-tokenizer-cv4x8x8"
    sample = moving_squares_sample(seed=1, num_frames=9, height=32, width=32)
    still = np.repeat(sample.frames[:1], 9, axis=0)
    context = {"ground_truth": still, "seed": 0}
    plain = TokenizerRoundTripPredictor(folder)(still[:1], "", 9, context)
    transferred = TokenizerRoundTripPredictor(folder, condition_detail_transfer=True)(still[:1], "", 9, context)
    assert np.abs(plain[1:].astype(int) - still[1:]).max() > 10  # the round trip alone is soft
    assert np.abs(transferred.astype(int) - still).max() <= 1  # the transfer puts the frame's own pixels back


def test_pipeline_kwargs_are_parsed_as_json_with_clear_errors():
    from cosmos_hf.evaluation.commands import parse_call_kwargs

    parsed = parse_call_kwargs(["use_medusa=true", "decoder_num_inference_steps=15", "decoder_prompt=a ball"])
    assert parsed == {"use_medusa": True, "decoder_num_inference_steps": 15, "decoder_prompt": "a ball"}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_call_kwargs(["use_medusa"])


def test_tokenizer_bound_works_for_a_discrete_tokenizer():
    import torch

    from cosmos_hf.data import frames_to_tensor, tensor_to_frames
    from cosmos_hf.evaluation.predictors import TokenizerRoundTripPredictor
    from cosmos_hf.evaluation.video_metrics import psnr
    from cosmos_hf.tokenizers import load_tokenizer

    folder = Path(__file__).resolve().parents[1] / "pipelines" / "cosmos-nano-tokenizer-dv4x8x8"
    sample = moving_squares_sample(seed=2, num_frames=9, height=32, width=32)
    predicted = TokenizerRoundTripPredictor(folder)(sample.frames[:1], "", 9, {"ground_truth": sample.frames})
    tokenizer = load_tokenizer(folder).eval()
    with torch.no_grad():
        expected = tensor_to_frames(tokenizer.detokenize(tokenizer.tokenize(frames_to_tensor(sample.frames))).float())
    np.testing.assert_array_equal(predicted[1:], expected[1:])
    assert 10 < psnr(sample.frames[1:], predicted[1:]) < math.inf


def test_tokenizer_bound_detail_gate_leaves_no_trace_where_an_object_moved_away():
    from cosmos_hf.evaluation.commands import build_predictors
    from cosmos_hf.evaluation.predictors import TokenizerRoundTripPredictor
    from cosmos_hf.evaluation.tokenizer_metrics import reconstruct_with_autoencoder

    folder = Path(__file__).resolve().parents[1] / "pipelines" / "cosmos-nano-tokenizer-cv4x8x8"
    sample = moving_squares_sample(seed=1, num_frames=9, height=32, width=32)
    context = {"ground_truth": sample.frames, "seed": 0}
    ungated = TokenizerRoundTripPredictor(folder, condition_detail_transfer=True)(sample.frames[:1], "", 9, context)
    gated_predictor = TokenizerRoundTripPredictor(folder, condition_detail_transfer=True, condition_detail_gate=0.05)
    gated = gated_predictor(sample.frames[:1], "", 9, context)
    round_trip = reconstruct_with_autoencoder(gated_predictor.autoencoder, sample.frames).astype(int)
    still = np.repeat(sample.frames[:1], 9, axis=0)
    still_round_trip = reconstruct_with_autoencoder(gated_predictor.autoencoder, still).astype(int)
    moved = np.abs(round_trip - still_round_trip).max(-1) > 0.05 * 255  # where the clip departs from its first frame
    assert moved[1:].any() and (~moved[1:]).any()
    # where it departed the gate adds nothing (the plain round trip); elsewhere it adds a share of the detail
    np.testing.assert_array_equal(gated[1:][moved[1:]], np.clip(round_trip[1:][moved[1:]], 0, 255))
    assert np.abs(ungated[1:][moved[1:]].astype(int) - round_trip[1:][moved[1:]]).max() > 5  # the ungated trace
    assert gated_predictor.name.endswith("+ detail transfer (gate 0.05)")
    with pytest.raises(ValueError, match="needs condition_detail_transfer=True"):
        TokenizerRoundTripPredictor(folder, condition_detail_gate=0.05)
    bound = build_predictors([], tokenizer_bound=folder, condition_detail_transfer="on", condition_detail_gate=0.1)
    assert [p.condition_detail_gate for p in bound.values()] == [0.1]
    no_gate = build_predictors([], tokenizer_bound=folder, condition_detail_transfer="on", condition_detail_gate=0)
    assert [p.condition_detail_gate for p in no_gate.values()] == [None]  # 0 = no gate, as for the pipelines


def test_benchmark_refuses_a_scene_seed_view_or_conditioning_length_listed_twice():
    """A scene listed twice (`--scenes free_fall,free_fall,stack`) was scored twice and weighed double in the
    overall mean, which is meant to weigh every scene alike; a repeated seed, view or length likewise."""
    kwargs = dict(seeds=[0], views=[0], cond_frames=[3], num_frames=9, height=32, width=32,
                  sample_fn=moving_squares_sample, progress=False)
    predictors = {"copy-last": CopyLastFramePredictor()}
    for name, value, repeated in (("scenes", ["squares_a", "squares_a", "squares_b"], "['squares_a']"),
                                  ("seeds", [0, 1, 0], "[0]"), ("views", [0, 0], "[0]"),
                                  ("cond_frames", [3, 3], "[3]")):
        call = {"scenes": ["squares_a", "squares_b"], **kwargs, name: value}
        with pytest.raises(ValueError, match=re.escape(f"{name} lists {repeated} more than once")):
            run_physics_benchmark(predictors, **call)


def test_score_prediction_scores_only_frames_after_the_conditioning():
    """num_cond_frames = -1 scored only the last frame (and took colours from the others), 0 scored the conditioning
    frames too; both without an error."""
    sample = moving_squares_sample(seed=3, num_frames=10)
    for bad in (-1, 0, 10, 11):
        with pytest.raises(ValueError, match=r"num_cond_frames must be in \[1, 9\] for a 10-frame clip"):
            score_prediction(sample, sample.frames.copy(), bad)
    assert len(score_prediction(sample, sample.frames.copy(), 9)["curves"]["psnr"]) == 1
