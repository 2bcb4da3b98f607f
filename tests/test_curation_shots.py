"""Shot detection: the content detector and TransNetV2 scored ShotBench-style on physics-world videos with
known cuts and dissolves, clip limits, and TransNetV2 weight loading (tiny random weights)."""

import cv2
import numpy as np
import pytest
import torch

from cosmos_hf.curation.shot_detection import (
    ContentDetector,
    Transition,
    TransNetV2,
    build_transnetv2,
    clip_spans,
    make_detector,
    score_transitions,
)
from cosmos_hf.curation.shotbench import evaluate_detector, make_shot_video


@pytest.fixture(scope="module")
def shot_videos():
    """Three 4-shot videos (2 s shots at 24 fps, 64x64): cut, dissolve (12 frames), cut."""
    return [make_shot_video(4, 48, 64, seed=s, transitions=("cut", "dissolve"))[:2] for s in range(3)]


def test_make_shot_video_places_transitions_at_known_frames():
    video, truth, captions = make_shot_video(3, 40, 64, seed=0, transitions=("cut", "dissolve"), dissolve_frames=8)
    assert video.shape == (40 + 40 + 32, 64, 64, 3) and len(captions) == 3
    assert truth == [Transition(39, 40), Transition(72, 79)]
    # Dissolve frames are blends: strictly between the two shots somewhere in the frame.
    assert not np.array_equal(video[75], video[71]) and not np.array_equal(video[75], video[80])


def test_content_detector_finds_every_hard_cut_exactly(shot_videos):
    detector = ContentDetector()
    for video, truth in shot_videos:
        cuts = [t for t in truth if t.end - t.start == 1]
        found = detector.detect(video)
        for cut in cuts:
            assert cut in found, (cut, found)


def test_content_detector_shotbench_scores(shot_videos):
    frame_only = evaluate_detector(ContentDetector(), shot_videos)
    with_dissolves = evaluate_detector(ContentDetector(gradual_span=12), shot_videos)
    assert frame_only["precision"] == 1.0 and frame_only["tp"] >= 6  # all hard cuts, nothing spurious
    assert with_dissolves["recall"] > frame_only["recall"] or frame_only["recall"] == 1.0
    assert with_dissolves["f1"] == 1.0, with_dissolves


def test_content_detector_ignores_object_motion():
    from cosmos_hf.sim import simulate

    clip = simulate("free_fall", seed=3, num_frames=48, height=64, width=64).video
    assert ContentDetector(gradual_span=12).detect(clip) == []


def test_fixed_threshold_mode_and_min_shot_length():
    video, truth, _ = make_shot_video(3, 48, 64, seed=2)
    assert ContentDetector(adaptive=False, threshold=8.0).detect(video) == truth
    # Shots shorter than min_shot_frames cannot produce two cuts.
    assert len(ContentDetector(min_shot_frames=60).detect(video)) == 1



def test_content_detector_refuses_a_gradual_span_of_one_frame():
    # The lag-1 "long-range" score is the frame score itself: a span of 1 found no dissolve, ever, without a word.
    with pytest.raises(ValueError, match="gradual_span must be 0 \\(off\\) or >= 2 frames, got 1"):
        ContentDetector(gradual_span=1)
    assert ContentDetector(gradual_span=2).gradual_span == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"crop_seconds": float("nan")}, "crop_seconds must be a finite number >= 0"),
    ({"max_seconds": float("inf")}, "min_seconds <= max_seconds \\(finite\\)"),
    ({"fps": float("nan")}, "fps must be a finite number > 0"),
])
def test_clip_spans_refuses_non_finite_limits(kwargs, message):
    # These reached round() as "cannot convert float NaN to integer" / an OverflowError, failing every input.
    args = {"transitions": [Transition(47, 48)], "num_frames": 96, "fps": 24.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        clip_spans(**args)

def test_score_transitions_counts():
    truth = [Transition(9, 10), Transition(40, 50)]
    assert score_transitions(truth, truth)["f1"] == 1.0
    s = score_transitions([Transition(11, 12), Transition(70, 71)], truth, tolerance=2)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1) and s["precision"] == 0.5
    # One prediction cannot match two true transitions.
    s = score_transitions([Transition(9, 50)], [Transition(9, 10), Transition(49, 50)])
    assert (s["tp"], s["fn"]) == (1, 1)


def test_clip_spans_crop_min_max_stride():
    fps = 10.0
    # Shots [0, 50) and [50, 100); 0.5 s crop at the cut, none at the video ends.
    assert clip_spans([Transition(49, 50)], 100, fps, min_seconds=2, max_seconds=60) == [(0, 45), (55, 100)]
    # A long shot is split every max_seconds; a remainder under min_seconds is dropped.
    assert clip_spans([], 250, fps, min_seconds=2, max_seconds=10) == [(0, 100), (100, 200), (200, 250)]
    assert clip_spans([], 215, fps, min_seconds=2, max_seconds=10) == [(0, 100), (100, 200)]
    # Short shots vanish; dissolve frames belong to no clip.
    assert clip_spans([Transition(9, 10)], 100, fps) == [(15, 100)]
    assert clip_spans([Transition(40, 49)], 100, fps, crop_seconds=0) == [(0, 40), (50, 100)]
    with pytest.raises(ValueError, match="min_seconds"):
        clip_spans([], 10, fps, min_seconds=5, max_seconds=2)


def test_transnetv2_released_layout_and_size():
    model = build_transnetv2()
    keys = set(model.state_dict())
    for key in ("SDDCNN.2.DDCNN.1.Conv3D_8.layers.1.weight", "SDDCNN.0.DDCNN.0.bn.running_var",
                "frame_sim_layer.projection.weight", "frame_sim_layer.fc.weight", "color_hist_layer.fc.weight",
                "fc1.weight", "cls_layer1.weight", "cls_layer2.weight"):
        assert key in keys
    assert model.fc1.in_features == 4 * 64 * 3 * 6 + 256  # 256 channels x 3x6 spatial + similarity features
    assert model.fc1.out_features == 1024 and model.frame_sim_layer.fc.in_features == 101


def test_transnetv2_loads_tiny_weights_and_detects(tmp_path, shot_videos):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = build_transnetv2(filters=2, num_stacks=3, blocks_per_stack=2, hidden=8).eval()
    # Make the tiny net a real (if crude) detector: score frames by colour-histogram dissimilarity to neighbours.
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        hist_fc = model.color_hist_layer.fc  # input: similarity to frames t-50..t+50, index 50 is t itself
        hist_fc.weight[0, 51] = -10.0  # low similarity to the next frame -> large
        hist_fc.bias[0] = 9.0
        model.fc1.weight[0, 0] = 1.0
        model.cls_layer1.weight[0, 0] = 4.0
        model.cls_layer1.bias[0] = -2.0
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "tiny.safetensors")
    torch.save(state, tmp_path / "tiny.pth")
    for path in (tmp_path / "tiny.safetensors", tmp_path / "tiny.pth"):
        detector = make_detector("transnetv2", weights=path)
        video, _truth = shot_videos[0]
        probabilities = detector.predict(video)
        assert probabilities.shape == (len(video),)
        small = np.stack([cv2.resize(f, (48, 27), interpolation=cv2.INTER_AREA) for f in video[:75]])
        first_window = np.concatenate([np.repeat(small[:1], 25, 0), small])  # 25 frames of padding + 75 frames
        with torch.no_grad():
            direct = torch.sigmoid(model(torch.from_numpy(first_window).unsqueeze(0))[0][0, 25:75, 0]).numpy()
        np.testing.assert_allclose(probabilities[:50], direct, atol=1e-5)  # the released windowing
    scores = evaluate_detector(detector, shot_videos)
    cuts_found = [t for t in detector.detect(shot_videos[0][0])]
    assert any(abs(t.start - 47) <= 1 for t in cuts_found), cuts_found
    assert scores["tp"] >= 3


def test_transnetv2_rejects_wrong_weights(tmp_path):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(2)}, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="not a TransNetV2 state dict"):
        TransNetV2(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="needs --transnet-weights"):
        make_detector("transnetv2")


class LiveFrames:
    """Wraps a frame iterator and tracks how many of its frames are alive at once (weak references)."""

    def __init__(self, frames):
        self.frames, self.live, self.max_live, self.yielded = frames, 0, 0, 0

    def _released(self):
        self.live -= 1

    def __iter__(self):
        import weakref

        for frame in self.frames:
            frame = np.array(frame)  # a fresh object per frame, owned by the consumer from here on
            self.live += 1
            self.yielded += 1
            self.max_live = max(self.max_live, self.live)
            weakref.finalize(frame, self._released)
            yield frame
            del frame


@pytest.mark.parametrize("span", [0, 12])
def test_split_stage_streams_frames_with_bounded_memory(tmp_path, monkeypatch, span):
    from cosmos_hf.curation import pipeline
    from cosmos_hf.curation.pipeline import CurationConfig, SplitStage
    from cosmos_hf.data import read_video, write_video

    video, _, _ = make_shot_video(5, 48, 64, seed=4, transitions=("cut", "dissolve"))  # 5 shots, 228 frames
    path = tmp_path / "long.mp4"
    write_video(path, video, 24)
    trackers = []
    real_open = pipeline.open_frames

    def tracked_open(p, **kwargs):
        fps, frames = real_open(p, **kwargs)
        trackers.append(LiveFrames(frames))
        return fps, trackers[-1]

    monkeypatch.setattr(pipeline, "open_frames", tracked_open)
    config = CurationConfig(min_clip_seconds=1.0, crop_seconds=0.25, dissolve_span=span)
    stage = SplitStage(config, tmp_path / "work")
    stage.setup()
    items = stage.process({"video_id": "long", "path": str(path), "caption": None})
    (tracker,) = trackers
    assert tracker.yielded == len(video) and tracker.max_live <= 3, (tracker.yielded, tracker.max_live)
    # Same clips as detecting on the whole decoded video at once.
    frames, fps = read_video(path)
    transitions = ContentDetector(gradual_span=span).detect(frames)
    spans = clip_spans(transitions, len(frames), fps, 1.0, 60.0, 0.25)
    assert [(i["start"], i["end"]) for i in items] == spans and len(spans) >= 3
    assert items[0]["source_frames"] == len(frames) and items[0]["num_transitions"] == len(transitions)
    assert (items[0]["source_height"], items[0]["source_width"], items[0]["fps"]) == (64, 64, 24.0)



def _write_variable_rate_video(path, frames, durations):
    """An mp4 whose frame k lasts durations[k] / 48 s (what phones and screen recorders write)."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=48)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.time_base, stream.options = Fraction(1, 48), {"crf": "0"}
        pts = 0
        for frame, duration in zip(frames, durations):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = pts, Fraction(1, 48)
            pts += duration
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())


def test_clips_of_a_variable_frame_rate_video_hold_the_detected_frames(tmp_path):
    """The split stage counts frames in decoding order; the transcode stage found frame k at timestamp k / (average
    fps), which is another frame when the rate varies: here the first clip took 17 frames of the next shot and the
    second clip started 12 frames late. Clips are now cut by the timestamps the split stage saw."""
    from cosmos_hf.curation.pipeline import CurationConfig, SplitStage, TranscodeStage
    from cosmos_hf.data import read_video

    # Two shots of 60 frames, the first at 48 fps, the second at 24 fps. Red counts the frame within its shot
    # (steps of 4 levels), blue tells the shots apart.
    frames = np.zeros((120, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = (10 + 4 * (np.arange(120) % 60))[:, None, None]
    frames[:60, :, :, 2], frames[60:, :, :, 2] = 40, 220
    path = tmp_path / "vfr.mp4"
    _write_variable_rate_video(path, frames, [1] * 60 + [2] * 60)
    config = CurationConfig(min_clip_seconds=1.0, crop_seconds=0.25, filters=["motion"], crf=0)
    split, transcode = SplitStage(config, tmp_path / "work"), TranscodeStage(config, tmp_path / "work")
    split.setup()
    items = split.process({"video_id": "vfr", "path": str(path), "caption": None})
    # Average rate 32 fps: 8 frames cropped at the cut (0.25 s), clips of at least 32 frames (1 s).
    assert [(item["start"], item["end"]) for item in items] == [(0, 52), (68, 120)]
    for item in items:
        (clip,) = transcode.process(item)
        assert "failed" not in clip and "pts_range" not in clip  # cutting detail, not a column of the output
        decoded, _ = read_video(clip["clip_path"])
        assert len(decoded) == clip["num_frames"] == item["end"] - item["start"]
        shot = [int(f[..., 2].mean() > 128) for f in decoded]
        index = np.array([(f[..., 0].mean() - 10) / 4 for f in decoded])
        want = np.arange(item["start"], item["end"])
        assert shot == (want >= 60).astype(int).tolist()
        assert np.abs(index - want % 60).max() <= 1.5, (index.round(1), want % 60)

def test_transnetv2_streams_in_100_frame_windows(tmp_path, shot_videos):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = build_transnetv2(filters=2, num_stacks=3, blocks_per_stack=2, hidden=8).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "tiny.safetensors")
    detector = TransNetV2(tmp_path / "tiny.safetensors")
    video = shot_videos[0][0][:180]  # 180 frames
    whole = detector.predict(video)
    shapes = []
    forward = detector.model.forward
    detector.model.forward = lambda x: shapes.append(tuple(x.shape)) or forward(x)
    frames = LiveFrames(iter(video))
    streamed = detector.predict(frames)
    np.testing.assert_array_equal(streamed, whole)
    assert frames.max_live <= 3 and frames.yielded == len(video)
    # Only the current window is held: ceil(180 / 50) windows of exactly 100 downscaled frames.
    assert shapes == [(1, 100, 27, 48, 3)] * 4
