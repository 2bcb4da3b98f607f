"""RetinaFace loader and decoding (random weights: the real Resnet50_Final.pth cannot be downloaded here)."""

import numpy as np
import pytest
import torch

from cosmos_hf.guardrails.retinaface import RetinaFace, RetinaFaceDetector, decode_boxes, prior_boxes


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RetinaFace().eval()


def test_parameter_names_match_the_public_checkpoint_layout(model):
    keys = set(model.state_dict())
    for key in ("body.conv1.weight", "body.layer4.2.bn3.running_var", "fpn.output1.0.weight", "fpn.merge2.1.bias",
                "ssh3.conv7x7_3.1.weight", "ssh1.conv5X5_1.0.weight", "ClassHead.2.conv1x1.weight",
                "BboxHead.0.conv1x1.bias", "LandmarkHead.1.conv1x1.weight"):
        assert key in keys, key
    assert not any(k.startswith("body.fc") or k.startswith("body.avgpool") for k in keys)
    assert model.ClassHead[0].conv1x1.out_channels == 4  # 2 anchors x (background, face)


def test_priors_and_decoding():
    priors = prior_boxes(64, 96)
    assert priors.shape == ((8 * 12 + 4 * 6 + 2 * 3) * 2, 4)
    torch.testing.assert_close(priors[0], torch.tensor([4 / 96, 4 / 64, 16 / 96, 16 / 64]))
    boxes = decode_boxes(torch.zeros(1, 4), torch.tensor([[0.5, 0.5, 0.2, 0.4]]))
    torch.testing.assert_close(boxes, torch.tensor([[0.4, 0.3, 0.6, 0.7]]))
    shifted = decode_boxes(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.tensor([[0.5, 0.5, 0.2, 0.4]]))
    torch.testing.assert_close(shifted[0, 0], torch.tensor(0.4 + 0.1 * 0.2))  # variance 0.1 x prior width


def test_checkpoint_round_trip_and_scripted_detection(model, tmp_path):
    with torch.no_grad():
        for head in model.ClassHead:
            head.conv1x1.weight.zero_()
            head.conv1x1.bias.copy_(torch.tensor([0.0, 8.0, 0.0, 8.0]))  # every anchor: face
        for head in model.BboxHead:
            head.conv1x1.weight.zero_()
            head.conv1x1.bias.zero_()  # boxes = anchors
    # Pytorch_Retinaface checkpoints are saved from DataParallel: keys start with "module."
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "Resnet50_Final.pth")
    detector = RetinaFaceDetector.from_checkpoint(tmp_path / "Resnet50_Final.pth")
    boxes = detector(np.zeros((64, 64, 3), np.uint8))
    anchors = {tuple(b) for b in (decode_boxes(torch.zeros(1, 4), prior_boxes(64, 64)) * 64).round().long().tolist()}
    assert len(boxes) > 0 and all(tuple(b) in anchors for b in boxes.tolist())
    assert len(boxes) < len(anchors)  # non-maximum suppression removed overlapping anchors

    with torch.no_grad():
        for head in detector.model.ClassHead:
            head.conv1x1.bias.copy_(torch.tensor([8.0, 0.0, 8.0, 0.0]))  # every anchor: background
    assert len(detector(np.zeros((64, 64, 3), np.uint8))) == 0


def test_wrong_checkpoint_is_refused(tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a RetinaFace"):
        RetinaFaceDetector.from_checkpoint(tmp_path / "other.pth")


@pytest.mark.parametrize("broken", ["ClassHead", "BboxHead"])
def test_a_detector_that_outputs_nan_blocks_the_video_instead_of_finding_no_face(broken):
    # NaN scores fail the confidence test and NaN boxes round to empty ones: both read as "no face", and the
    # frames went out unpixelated; a broken (e.g. overflowed half-precision) detector must block
    from cosmos_hf.guardrails import CosmosSafetyChecker, FacePixelator

    torch.manual_seed(0)
    broken_model = RetinaFace().eval()
    with torch.no_grad():
        for head in broken_model.ClassHead:  # every anchor a face, so that only the NaN can hide them
            head.conv1x1.weight.zero_()
            head.conv1x1.bias.copy_(torch.tensor([0.0, 8.0, 0.0, 8.0]))
        for head in getattr(broken_model, broken):
            head.conv1x1.bias.fill_(float("nan"))
    checker = CosmosSafetyChecker(face_pixelator=FacePixelator(detector=RetinaFaceDetector(broken_model)))
    verdict, frames = checker.check_video(np.zeros((2, 64, 64, 3), np.uint8))
    assert not verdict.is_safe and frames is None
    assert verdict.guard == "face_pixelation" and "NaN" in verdict.reason
