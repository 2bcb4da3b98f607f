"""Clip filters (motion, image-statistics quality, text overlay, CLIP-aesthetic loader), captioners and SemDeDup."""

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cosmos_hf.curation.captioning import PAPER_PROMPT, AutoCaptioner, MetadataCaptioner
from cosmos_hf.curation.dedup import VisualEmbedder, kmeans, semantic_dedup
from cosmos_hf.curation.filters import (
    ClipAestheticQuality,
    ImageStatisticsQuality,
    MotionFilter,
    TextOverlayDetector,
    noise_sigma,
)


@pytest.fixture(scope="module")
def clips():
    from cosmos_hf.sim import simulate

    return {name: simulate(name, seed=i, num_frames=24, height=64, width=64, view=i % 4).video
            for i, name in enumerate(["free_fall", "dominoes", "tilted_slope", "seesaw"])}


def with_text(video, text="Hello World", y=None, color=(255, 255, 255), scale=None, thickness=1):
    out = video.copy()
    y = y if y is not None else out.shape[1] - 6
    for frame in out:
        cv2.putText(frame, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale or out.shape[1] / 210, color, thickness)
    return out


def test_motion_filter_rejects_static_and_keeps_moving(clips):
    motion = MotionFilter()
    moving = motion(clips["free_fall"])
    assert moving.passed and moving.scores["motion"] > 0.1
    static = motion(np.repeat(clips["free_fall"][:1], 24, axis=0))
    assert not static.passed and static.reason == "low_motion" and static.scores["motion"] < 1e-3
    # A global 2-pixel pan per frame over a textured image is measured as about 2 pixels of flow.
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3)).astype(np.uint8)
    base = cv2.GaussianBlur(noise, (5, 5), 1.5)
    pan = np.stack([np.roll(base, 2 * k, axis=1) for k in range(6)])
    assert 1.5 < MotionFilter(max_side=128).motion_score(pan) < 2.5
    assert MotionFilter(max_motion=1.0)(pan).reason == "excessive_motion"


def test_quality_statistics_flag_blur_exposure_and_noise(clips):
    quality = ImageStatisticsQuality()
    video = clips["dominoes"]
    assert quality(video).passed
    blurred = np.stack([cv2.GaussianBlur(f, (9, 9), 4) for f in video])
    assert quality(blurred).reason == "blurry"
    assert quality((video * 0.05).astype(np.uint8)).reason == "underexposed"
    assert quality(np.full_like(video, 253)).reason == "overexposed"
    rng = np.random.default_rng(0)
    noisy = np.clip(video + rng.normal(0, 30, video.shape), 0, 255).astype(np.uint8)
    assert quality(noisy).reason == "noisy"
    # Immerkaer's estimate recovers a known noise sigma on a flat image.
    flat = np.clip(128 + rng.normal(0, 5, (128, 128)), 0, 255)
    assert 4.0 < noise_sigma(flat) < 6.0


def test_text_overlay_detected_on_any_resolution_and_not_on_clean_clips(clips):
    from cosmos_hf.sim import simulate

    detector = TextOverlayDetector()
    for name, video in clips.items():
        assert detector(video).passed, name
        assert not detector(with_text(video)).passed, name
    big = simulate("stable_stack", seed=1, num_frames=8, height=256, width=256).video
    assert detector(big).passed
    assert not detector(with_text(big)).passed
    result = detector(with_text(big, "SUBTITLE 42", y=45, color=(20, 20, 20), scale=0.9, thickness=2))
    assert not result.passed and result.reason == "text_overlay" and result.scores["text_fraction"] == 1.0
    # Text that moves every frame is not an overlay at a fixed place.
    moving = np.stack([with_text(big[k % 8:k % 8 + 1], "SUBTITLE 42", y=40 + 50 * k, color=(20, 20, 20), scale=0.9,
                                 thickness=2)[0] for k in range(4)])
    assert detector(moving).passed


def test_clip_aesthetic_loader_with_tiny_weights(tmp_path, clips):
    from safetensors.torch import save_file
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=8)
    CLIPVisionModelWithProjection(config).save_pretrained(tmp_path / "clip")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path / "clip")
    dims = [8, 1024, 128, 64, 16, 1]
    head = {}
    for index, (i, o) in zip((0, 2, 4, 6, 7), itertools.pairwise(dims)):
        head[f"layers.{index}.weight"] = torch.randn(o, i) * 0.05
        head[f"layers.{index}.bias"] = torch.zeros(o)
    head["layers.7.bias"] = torch.tensor([5.0])
    save_file(head, tmp_path / "head.safetensors")
    scorer = ClipAestheticQuality(tmp_path / "clip", tmp_path / "head.safetensors", min_score=4.0)
    result = scorer(clips["free_fall"])
    assert result.passed and 4.0 < result.scores["aesthetic"] < 6.0
    assert ClipAestheticQuality(tmp_path / "clip", tmp_path / "head.safetensors", min_score=6.0)(
        clips["free_fall"]).reason == "low_aesthetic"
    save_file({"w": torch.zeros(1)}, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="aesthetic MLP head"):
        ClipAestheticQuality(tmp_path / "clip", tmp_path / "bad.safetensors")


def test_captioners_prefer_metadata():
    assert PAPER_PROMPT == "Elaborate on the visual and narrative elements of the video in detail."
    assert MetadataCaptioner()(None, 24.0, "  A red ball falls.\n") == "A red ball falls."
    assert MetadataCaptioner()(None, 24.0, "  ") is None

    class FakeVLM:
        calls = 0

        def __call__(self, frames, fps, metadata_caption=None):
            FakeVLM.calls += 1
            return "described by the VLM"

    auto = AutoCaptioner(FakeVLM())
    assert auto(None, 24.0, "from metadata") == "from metadata" and FakeVLM.calls == 0
    assert auto(None, 24.0, None) == "described by the VLM" and FakeVLM.calls == 1
    assert AutoCaptioner()(None, 24.0, None) is None


def test_semantic_dedup_removes_near_duplicates_only(clips):
    embed = VisualEmbedder()
    names = list(clips)
    vectors = [embed(clips[n]) for n in names]
    # A re-encoded copy (slight noise) and a time-shifted copy of free_fall are near-duplicates.
    rng = np.random.default_rng(0)
    noisy = np.clip(clips["free_fall"] + rng.normal(0, 2, clips["free_fall"].shape), 0, 255).astype(np.uint8)
    ids = names + ["free_fall_copy", "free_fall_shift"]
    vectors += [embed(noisy), embed(clips["free_fall"][2:])]
    kept, removed = semantic_dedup(ids, np.stack(vectors), eps=0.05, num_clusters=2)
    assert sorted(r["id"] for r in removed) == ["free_fall_copy", "free_fall_shift"]
    assert all(r["duplicate_of"] == "free_fall" and r["similarity"] > 0.95 for r in removed)
    assert sorted(r["id"] for r in kept) == sorted(names)
    # Priority decides which copy of a duplicate pair survives.
    kept, removed = semantic_dedup(["a", "b"], np.stack([vectors[0], vectors[0]]), priority=[0, 1])
    assert [r["id"] for r in kept] == ["b"] and removed[0]["duplicate_of"] == "b"
    with pytest.raises(ValueError, match="eps"):
        semantic_dedup(ids, np.stack(vectors), eps=1.5)


def test_kmeans_separates_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (20, 4)), rng.normal(5, 0.1, (20, 4))])
    labels, _centroids = kmeans(x, 2, seed=0)
    assert len(set(labels[:20])) == 1 and len(set(labels[20:])) == 1 and labels[0] != labels[-1]


def test_minilm_caption_embedder_is_offline_and_semantic():
    from cosmos_hf.curation.dedup import CaptionEmbedder

    embed = CaptionEmbedder()
    a = embed(None, "A red ball falls onto the floor.")
    b = embed(None, "A red ball drops to the ground.")
    c = embed(None, "Stock prices rose sharply on Tuesday.")
    assert a.shape == (384,) and float(a @ b) > float(a @ c) + 0.3


def _tiny_qwen2_vl(folder):
    """A random 1-layer Qwen2-VL with a word-level tokenizer and chat template (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import (
        Qwen2VLVideoProcessor,
    )

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
               "<|video_pad|>"]
    words = ["user", "assistant", "a", "ball", "falls", "cube", *PAPER_PROMPT.split()]
    vocab = {t: i for i, t in enumerate([*special, *dict.fromkeys(words), "[UNK]"])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens(special)
    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
                "{% if c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>{% else %}{{ c['text'] }}"
                "{% endif %}{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
                "{% endif %}")
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="<|endoftext|>",
                                   eos_token="<|im_end|>")
    fast.chat_template = template
    pixels = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 16}
    Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**pixels), tokenizer=fast,
                     video_processor=Qwen2VLVideoProcessor(**pixels), chat_template=template).save_pretrained(folder)
    config = Qwen2VLConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512,
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 4]}},
        vision_config={"depth": 1, "embed_dim": 16, "hidden_size": 32, "num_heads": 2, "mlp_ratio": 2,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"],
        bos_token_id=None, eos_token_id=vocab["<|im_end|>"], pad_token_id=0)
    torch.manual_seed(0)
    Qwen2VLForConditionalGeneration(config).save_pretrained(folder)
    return vocab


def test_vlm_captioner_runs_a_local_qwen2_vl_chat_model(tmp_path, clips):
    from cosmos_hf.curation.captioning import VLMCaptioner

    vocab = _tiny_qwen2_vl(tmp_path / "vlm")
    captioner = VLMCaptioner(tmp_path / "vlm", num_frames=3, max_new_tokens=6)
    assert captioner.prompt == PAPER_PROMPT
    caption = captioner(clips["free_fall"], 24.0)
    assert isinstance(caption, str) and caption  # random weights: words of the tiny vocabulary, greedy
    assert set(caption.split()) <= set(vocab)
    assert captioner(clips["free_fall"], 24.0) == caption  # greedy decoding is deterministic
    assert AutoCaptioner(captioner)(clips["free_fall"], 24.0, None) == caption


TEXT_FREE = Path(__file__).parent / "data" / "text_free"


@pytest.mark.parametrize("name, colour, height_fraction", [("opencv_tree", (255, 255, 255), 0.92),
                                                         ("opencv_vtest", (255, 255, 255), 0.92),
                                                         ("opencv_vtest", (20, 20, 20), 0.92)])
def test_text_overlay_keeps_real_text_free_footage_and_catches_text_on_it(name, colour, height_fraction):
    """Real footage without text (OpenCV's samples: a tree through a window, a static street camera; 16 frames
    each in tests/data/text_free) was rejected with text_fraction 1.0. It must pass, and be rejected once a line
    of text is burned in."""
    from cosmos_hf.data import read_video

    frames, _ = read_video(TEXT_FREE / f"{name}.mp4")
    detector = TextOverlayDetector()
    clean = detector(frames)
    assert clean.passed and clean.scores["text_fraction"] == 0.0
    height, width = frames.shape[1:3]
    with_caption = frames.copy()
    for frame in with_caption:
        cv2.putText(frame, "the city today", (width // 8, int(height * height_fraction)), cv2.FONT_HERSHEY_SIMPLEX,
                    height / 300, colour, 2, cv2.LINE_AA)
    result = detector(with_caption)
    assert not result.passed and result.reason == "text_overlay"


def test_text_overlay_ignores_rows_of_thin_bars():
    """Windows of a facade (evenly spaced dark vertical bars) formed a 'text line' in vtest.avi."""
    frame = np.full((240, 320, 3), 180, np.uint8)
    for x in range(100, 220, 14):
        frame[40:66, x:x + 4] = 40
    assert TextOverlayDetector().text_lines(frame) == []
    words = frame.copy()
    cv2.putText(words, "Hello World", (100, 64), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (40, 40, 40), 2)
    assert TextOverlayDetector().text_lines(words) != []
