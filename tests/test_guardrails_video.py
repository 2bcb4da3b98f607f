"""Post-guard: per-frame safety head on SigLIP embeddings, and face detection + pixelation."""

from pathlib import Path

import numpy as np
import pytest
import torch

from cosmos_hf.guardrails import (
    VIDEO_SAFETY_CLASSES,
    FacePixelator,
    HaarCascadeFaceDetector,
    SiglipFrameEmbedder,
    VideoContentSafetyClassifier,
    VideoSafetyHead,
    pixelate_region,
)

EMBED_DIM = 32


def tiny_siglip_folder(tmp_path) -> Path:
    """A randomly initialised SigLIP (vision + text towers) and its image processor, saved like a Hub repo."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    torch.manual_seed(0)
    vision = dict(hidden_size=EMBED_DIM, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                  image_size=32, patch_size=8)
    text = dict(hidden_size=EMBED_DIM, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                vocab_size=64, max_position_embeddings=16, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    SiglipModel(SiglipConfig(vision_config=vision, text_config=text)).save_pretrained(tmp_path / "siglip")
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "siglip")
    return tmp_path / "siglip"


def head_that_always_predicts(class_index: int) -> VideoSafetyHead:
    head = VideoSafetyHead(input_size=EMBED_DIM, hidden_sizes=(16, 8)).eval()
    with torch.no_grad():
        head.layers[-1].weight.zero_()
        head.layers[-1].bias.zero_()
        head.layers[-1].bias[class_index] = 5.0
    return head


def random_video(num_frames=4, size=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)


def test_head_has_the_reference_shape_and_parameter_names():
    head = VideoSafetyHead()
    assert head.num_classes == 7 and head.config.class_names[0] == "Safe"
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items() if k.endswith("weight")}
    assert shapes == {
        "layers.0.weight": (512, 1152), "layers.1.weight": (512,), "layers.3.weight": (256, 512),
        "layers.4.weight": (256,), "layers.6.weight": (7, 256),
    }
    with pytest.raises(ValueError, match=r"\(N, 1152\)"):
        head(torch.zeros(2, 1000))


def test_head_round_trips_and_loads_a_reference_style_checkpoint(tmp_path):
    head = VideoSafetyHead(input_size=EMBED_DIM, hidden_sizes=(16, 8)).eval()
    head.save_pretrained(tmp_path / "head")
    x = torch.randn(3, EMBED_DIM)
    assert torch.equal(VideoSafetyHead.from_pretrained(tmp_path / "head").eval()(x), head(x))
    # reference layout: {"model": {"network.layers.0.weight": ...}} in a torch .pt file
    torch.save({"model": {f"network.{k}": v for k, v in head.state_dict().items()}}, tmp_path / "safety_filter.pt")
    loaded = VideoSafetyHead.from_reference_checkpoint(tmp_path / "safety_filter.pt")
    assert loaded.config.hidden_sizes == (16, 8) and torch.equal(loaded(x), head(x))
    torch.save({"model": {"something.else": torch.zeros(1)}}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="layers.0.weight"):
        VideoSafetyHead.from_reference_checkpoint(tmp_path / "wrong.pt")


def test_siglip_embedder_gives_unit_vectors(tmp_path):
    embedder = SiglipFrameEmbedder.from_pretrained(tiny_siglip_folder(tmp_path))
    emb = embedder(random_video(num_frames=3, size=40))
    assert emb.shape == (3, EMBED_DIM)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))


def test_classifier_blocks_when_a_frame_is_unsafe(tmp_path):
    folder = tiny_siglip_folder(tmp_path)
    embedder = SiglipFrameEmbedder.from_pretrained(folder)
    video = random_video()
    assert VideoContentSafetyClassifier(embedder, head_that_always_predicts(0)).check(video).is_safe
    verdict = VideoContentSafetyClassifier(embedder, head_that_always_predicts(2)).check(video)
    assert not verdict.is_safe and "Violence" in verdict.reason

    # loading through from_pretrained with a saved head folder gives the same decision
    head_that_always_predicts(6).save_pretrained(tmp_path / "head")
    classifier = VideoContentSafetyClassifier.from_pretrained(folder, tmp_path / "head", frame_stride=2)
    verdict = classifier.check(video)
    assert not verdict.is_safe and VIDEO_SAFETY_CLASSES[6] in verdict.reason
    assert sorted(verdict.details["frames"]) == [0, 2]  # every second frame was checked

def test_classifier_fails_closed_on_bad_input_and_errors(tmp_path):
    embedder = SiglipFrameEmbedder.from_pretrained(tiny_siglip_folder(tmp_path))
    classifier = VideoContentSafetyClassifier(embedder, head_that_always_predicts(0))
    verdict = classifier.check(np.zeros((2, 32, 32), np.uint8))
    assert not verdict.is_safe and "(T, H, W, 3)" in verdict.reason
    mismatched = VideoContentSafetyClassifier(embedder, VideoSafetyHead(input_size=EMBED_DIM + 1, hidden_sizes=(4,)))
    verdict = mismatched.check(random_video())
    assert not verdict.is_safe and "fail closed" in verdict.reason


@pytest.mark.parametrize("broken", ["all logits", "the safe logit"])
def test_a_classifier_that_outputs_nan_blocks_instead_of_reading_as_safe(tmp_path, broken):
    # argmax over NaN logits is 0, the "Safe" class: a broken (e.g. overflowed half-precision) head must block
    head = head_that_always_predicts(2)
    with torch.no_grad():
        if broken == "all logits":
            head.layers[-1].bias.fill_(float("nan"))
        else:
            head.layers[-1].bias[0] = float("nan")
    embedder = SiglipFrameEmbedder.from_pretrained(tiny_siglip_folder(tmp_path))
    verdict = VideoContentSafetyClassifier(embedder, head).check(random_video())
    assert not verdict.is_safe and "fail closed" in verdict.reason and "NaN" in verdict.reason


# ----------------------------------------------------------------------------------------------- faces
def draw_face(size=128, background=200):
    """A cartoon frontal face (skin oval, brows, eyes, nose, mouth) that a frontal-face detector finds."""
    import cv2

    img = np.full((size, size, 3), background, np.uint8)
    cx, cy = size // 2, size // 2
    cv2.ellipse(img, (cx, cy), (int(size * 0.28), int(size * 0.36)), 0, 0, 360, (215, 175, 150), -1)
    eye_y, eye_dx = cy - int(size * 0.08), int(size * 0.11)
    for side in (-1, 1):
        cv2.ellipse(img, (cx + side * eye_dx, eye_y), (int(size * 0.06), int(size * 0.03)), 0, 0, 360, (40, 40, 40), -1)
        brow_y = eye_y - int(size * 0.07)
        cv2.line(img, (cx + side * eye_dx - int(size * 0.07), brow_y), (cx + side * eye_dx + int(size * 0.07), brow_y),
                 (60, 50, 50), max(1, size // 40))
    cv2.line(img, (cx, eye_y + int(size * 0.04)), (cx, cy + int(size * 0.07)), (180, 140, 120), max(1, size // 50))
    cv2.ellipse(img, (cx, cy + int(size * 0.17)), (int(size * 0.10), int(size * 0.03)), 0, 0, 360, (120, 60, 60), -1)
    return img


def test_haar_detector_finds_the_drawn_face_and_not_noise():
    detector = HaarCascadeFaceDetector()
    boxes = detector(draw_face(128))
    assert len(boxes) >= 1
    x1, y1, x2, y2 = boxes[0]
    assert x1 < 64 < x2 and y1 < 64 < y2  # around the face centre
    assert len(detector(np.full((128, 128, 3), 127, np.uint8))) == 0


def test_pixelator_destroys_face_detail_and_leaves_background_alone():
    face = draw_face(128)
    video = np.stack([face, face, face])
    pixelated, boxes = FacePixelator()(video)
    assert all(len(b) >= 1 for b in boxes)
    assert not np.shares_memory(pixelated, video) and np.array_equal(video[0], face)  # input untouched
    x1, y1, x2, y2 = boxes[0][0]
    # the dark eyes and brows (value 40-60) are averaged away into flat cells
    assert video[0, y1:y2, x1:x2].min() <= 40 and pixelated[0, y1:y2, x1:x2].min() > 80
    assert len(HaarCascadeFaceDetector()(pixelated[0])) == 0  # no longer a detectable face
    assert np.array_equal(pixelated[:, :4, :4], video[:, :4, :4])  # corner background unchanged


def test_faces_smaller_than_min_size_are_kept():
    face = draw_face(128)
    detector = HaarCascadeFaceDetector()
    boxes = detector(face)
    assert len(boxes) >= 1  # the face is there and detectable...
    largest = int((boxes[:, 2:] - boxes[:, :2]).max())
    out, kept = FacePixelator(detector=detector, min_face_size=largest + 1)(face[None])
    assert len(kept[0]) == 0 and np.array_equal(out[0], face)  # ...but below min_face_size it is left alone
    out, kept = FacePixelator(detector=detector, min_face_size=largest)(face[None])
    assert len(kept[0]) >= 1 and not np.array_equal(out[0], face)


def test_a_real_photo_face_is_pixelated_when_matplotlib_ships_one():
    mpl = pytest.importorskip("matplotlib")
    path = Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        pytest.skip("matplotlib without sample data")
    import cv2

    photo = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    photo = cv2.resize(photo, (256, 300), interpolation=cv2.INTER_AREA)
    out, boxes = FacePixelator()(photo[None])
    assert len(boxes[0]) >= 1
    assert len(HaarCascadeFaceDetector(cascades=("haarcascade_frontalface_default.xml",))(out[0])) == 0


def test_temporal_window_covers_a_frame_where_detection_missed():
    face = draw_face(96)
    calls = []

    def flaky_detector(frame):  # finds the face in frames 0 and 2, misses it in frame 1
        calls.append(1)
        return np.array([[20, 15, 76, 85]]) if len(calls) % 3 != 2 else np.zeros((0, 4))

    video = np.stack([face, face, face])
    out, _ = FacePixelator(detector=flaky_detector, temporal_window=1)(video)
    assert not np.array_equal(out[1, 15:85, 20:76], video[1, 15:85, 20:76])
    out, _ = FacePixelator(detector=flaky_detector, temporal_window=0)(video)
    assert np.array_equal(out[1], video[1]) and not np.array_equal(out[0], video[0])


def test_pixelate_region_shapes_and_bad_arguments():
    region = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    out = pixelate_region(region, blocks=5)
    assert out.shape == region.shape and len(np.unique(out.reshape(-1, 3), axis=0)) <= 5 * 8
    with pytest.raises(ValueError, match="min_face_size"):
        FacePixelator(min_face_size=0)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        FacePixelator()(np.zeros((4, 4, 3), np.uint8))


def test_a_detector_returning_nan_boxes_blocks_instead_of_finding_no_face():
    # NaN boxes cast to int64 become empty boxes (dropped as too small): the frames went out unpixelated
    from cosmos_hf.guardrails import CosmosSafetyChecker

    face = draw_face(96)
    checker = CosmosSafetyChecker(face_pixelator=FacePixelator(detector=lambda frame: np.full((1, 4), np.nan)))
    verdict, frames = checker.check_video(np.stack([face, face]))
    assert not verdict.is_safe and frames is None and "NaN" in verdict.reason
