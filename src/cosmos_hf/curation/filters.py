"""Clip filters: motion, visual quality and text overlay. Each one is pluggable.

A filter is any object with `name` and `__call__(frames uint8 [T,H,W,3], fps) -> FilterResult`; `FilterResult.passed`
decides, `scores` go into the clip's metadata and `reason` into the summary's rejection counts.

Defaults need no download:
- `MotionFilter`: Farneback optical flow (OpenCV) on a few frame pairs; rejects static clips.
- `ImageStatisticsQuality`: sharpness (variance of the Laplacian), exposure (mean luma, clipped pixels) and noise
  (Immerkaer's fast noise-sigma estimate).
- `TextOverlayDetector`: chains of thin-stroked glyphs on one baseline (text lines) that persist across frames.
Loaders for learned scorers when weights are given: `ClipAestheticQuality` (a CLIP vision tower in transformers
format + the LAION improved-aesthetic MLP head) and `dover.DoverQuality` (DOVER's technical + aesthetic video
quality from the released `DOVER.pth`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FilterResult:
    passed: bool
    scores: dict = field(default_factory=dict)
    reason: str | None = None  # why it failed, e.g. "low_motion"; None when passed


def sample_indices(num_frames: int, count: int) -> np.ndarray:
    """`count` frame indices spread evenly over the clip (all frames if it is shorter)."""
    return np.unique(np.linspace(0, num_frames - 1, min(count, num_frames)).round().astype(int))


def _gray(frame: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    scale = min(1.0, max_side / max(gray.shape))
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return gray


class MotionFilter:
    """Mean optical-flow magnitude (pixels per frame at a `max_side` working size), over `num_pairs` frame pairs.

    Rejects clips whose mean motion is below `min_motion` ("low_motion"). `max_motion` (optional) rejects shaky
    or flashing clips ("excessive_motion").
    """

    name = "motion"

    def __init__(self, min_motion: float = 0.02, max_motion: float | None = None, num_pairs: int = 8,
                 max_side: int = 128):
        self.min_motion, self.max_motion, self.num_pairs, self.max_side = min_motion, max_motion, num_pairs, max_side

    def motion_score(self, frames: np.ndarray) -> float:
        import cv2

        if len(frames) < 2:
            return 0.0
        starts = sample_indices(len(frames) - 1, self.num_pairs)
        magnitudes = []
        for k in starts:
            a, b = _gray(frames[k], self.max_side), _gray(frames[k + 1], self.max_side)
            flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            magnitudes.append(float(np.linalg.norm(flow, axis=2).mean()))
        return float(np.mean(magnitudes))

    def __call__(self, frames, fps=None) -> FilterResult:
        score = self.motion_score(frames)
        if score < self.min_motion:
            return FilterResult(False, {"motion": score}, "low_motion")
        if self.max_motion is not None and score > self.max_motion:
            return FilterResult(False, {"motion": score}, "excessive_motion")
        return FilterResult(True, {"motion": score})


def noise_sigma(gray: np.ndarray) -> float:
    """Immerkaer (1996): sigma of additive Gaussian noise from a Laplacian-difference mask, robust to edges."""
    import cv2

    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    response = cv2.filter2D(gray.astype(np.float64), -1, mask)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).sum() / (6.0 * response.size))


class ImageStatisticsQuality:
    """Visual quality from image statistics on `num_frames` sampled frames (no weights).

    Rejection reasons: "blurry" (median Laplacian variance < `min_sharpness`), "underexposed" / "overexposed"
    (mean luma outside [`min_luma`, `max_luma`] or more than `max_clipped` of the pixels at 0-4 / 251-255),
    "noisy" (median noise sigma > `max_noise`).
    """

    name = "quality"

    def __init__(self, min_sharpness: float = 20.0, min_luma: float = 20.0, max_luma: float = 235.0,
                 max_clipped: float = 0.5, max_noise: float = 12.0, num_frames: int = 4, max_side: int = 256):
        self.min_sharpness, self.min_luma, self.max_luma = min_sharpness, min_luma, max_luma
        self.max_clipped, self.max_noise, self.num_frames, self.max_side = max_clipped, max_noise, num_frames, max_side

    def statistics(self, frames) -> dict:
        import cv2

        sharp, luma, dark, bright, noise = [], [], [], [], []
        for k in sample_indices(len(frames), self.num_frames):
            gray = _gray(frames[k], self.max_side)
            sharp.append(cv2.Laplacian(gray, cv2.CV_64F).var())
            luma.append(gray.mean())
            dark.append((gray <= 4).mean())
            bright.append((gray >= 251).mean())
            noise.append(noise_sigma(gray))
        return {"sharpness": float(np.median(sharp)), "luma": float(np.mean(luma)), "dark_fraction":
                float(np.mean(dark)), "bright_fraction": float(np.mean(bright)), "noise": float(np.median(noise))}

    def __call__(self, frames, fps=None) -> FilterResult:
        s = self.statistics(frames)
        if s["luma"] < self.min_luma or s["dark_fraction"] > self.max_clipped:
            return FilterResult(False, s, "underexposed")
        if s["luma"] > self.max_luma or s["bright_fraction"] > self.max_clipped:
            return FilterResult(False, s, "overexposed")
        if s["sharpness"] < self.min_sharpness:
            return FilterResult(False, s, "blurry")
        if s["noise"] > self.max_noise:
            return FilterResult(False, s, "noisy")
        return FilterResult(True, s)


class ClipAestheticQuality:
    """LAION "improved aesthetic predictor": an MLP on the L2-normalised CLIP image embedding -> score (~1..10).

    `clip_path`: a local CLIP model folder (transformers `CLIPVisionModelWithProjection` or full `CLIPModel`);
    `head_path`: the MLP weights (safetensors, or a plain state dict `.pth` loaded with weights_only) with keys
    `layers.{0,2,4,6,7}.{weight,bias}` (dims E->1024->128->64->16->1). Rejects clips scoring below `min_score`.
    """

    name = "aesthetic"

    def __init__(self, clip_path, head_path, min_score: float = 3.5, num_frames: int = 4, device: str = "cpu"):
        import torch
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        from ..utils import load_state_dict_file

        self.processor = CLIPImageProcessor.from_pretrained(clip_path)
        self.model = CLIPVisionModelWithProjection.from_pretrained(clip_path).eval().to(device)
        state = load_state_dict_file(head_path)
        dims = [state[f"layers.{i}.weight"].shape for i in (0, 2, 4, 6, 7)] if "layers.0.weight" in state else None
        if dims is None:
            raise ValueError(f"{head_path} is not an aesthetic MLP head (expected keys layers.0/2/4/6/7.*)")
        from torch import nn

        self.head = nn.Sequential(nn.Linear(dims[0][1], dims[0][0]), nn.Dropout(0.2), nn.Linear(dims[1][1], dims[1][0]),
                                  nn.Dropout(0.2), nn.Linear(dims[2][1], dims[2][0]), nn.Dropout(0.1),
                                  nn.Linear(dims[3][1], dims[3][0]), nn.Linear(dims[4][1], dims[4][0]))
        self.head.load_state_dict({k.removeprefix("layers."): v for k, v in state.items()})
        self.head.eval().to(device)
        self.min_score, self.num_frames, self.device, self.torch = min_score, num_frames, device, torch

    def __call__(self, frames, fps=None) -> FilterResult:
        torch = self.torch
        images = [frames[k] for k in sample_indices(len(frames), self.num_frames)]
        with torch.inference_mode():
            pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
            embeds = self.model(pixel_values=pixels).image_embeds
            embeds = embeds / embeds.norm(dim=-1, keepdim=True)
            score = float(self.head(embeds).mean())
        if score < self.min_score:
            return FilterResult(False, {"aesthetic": score}, "low_aesthetic")
        return FilterResult(True, {"aesthetic": score})


class TextOverlayDetector:
    """Detects burned-in text (subtitles, captions, watermarks) offline with OpenCV, from how text is built.

    On `num_frames` sampled frames, glyph candidates are the connected components of the white top-hat (light
    text) and black top-hat (dark text) above `min_contrast`; a glyph is at least `min_char_height` pixels tall,
    at most a fifth of the frame, and drawn with a thin stroke (stroke width, from the distance transform, at most
    `max_stroke_ratio` of its height). A text line is a chain of at least `min_chars` glyphs of similar height
    and stroke width, on one horizontal line, with letter-sized gaps (see `text_lines`). A clip is rejected
    ("text_overlay") when at least `min_frame_fraction` of the sampled frames hold a text line that also appears at
    the same place (half of the smaller box overlapping) in another sampled frame: overlays sit still.

    The earlier detector (edge density and stroke counts in closed-gradient blobs) rejected real text-free footage
    (foliage, a street scene: text_fraction 1.0); `python bench/text_overlay.py` measures both error rates.
    """

    name = "text_overlay"

    def __init__(self, min_chars: int = 4, min_frame_fraction: float = 0.5, num_frames: int = 6,
                 max_side: int = 512, min_char_height: int = 6, min_contrast: float = 40.0,
                 max_stroke_ratio: float = 0.6):
        self.min_chars, self.min_frame_fraction, self.num_frames = min_chars, min_frame_fraction, num_frames
        self.max_side, self.min_char_height, self.min_contrast = max_side, min_char_height, min_contrast
        self.max_stroke_ratio = max_stroke_ratio

    def _glyphs(self, mask: np.ndarray, height: int) -> list:
        """(x, y, w, h, stroke) of the components of `mask` that are shaped like glyphs."""
        import cv2

        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        distance = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
        glyphs = []
        for label in range(1, count):
            x, y, w, h, area = stats[label]
            # Up to 10x as wide as tall: anti-aliased or outlined letters often merge into one component per word.
            if not (self.min_char_height <= h <= height / 5 and w <= 10 * h and area >= 0.1 * w * h):
                continue
            if area > 0.85 * w * h:  # a solid block, not strokes
                continue
            stroke = 2.0 * float(distance[y:y + h, x:x + w][labels[y:y + h, x:x + w] == label].max())
            if stroke <= self.max_stroke_ratio * h:
                glyphs.append((int(x), int(y), int(w), int(h), stroke))
        return glyphs

    def _chains(self, glyphs: list) -> list:
        """Boxes of runs of >= min_chars neighbouring glyphs on one line (similar height and stroke, letter gaps)."""
        glyphs = sorted(glyphs)
        parent = list(range(len(glyphs)))

        def root(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, (xa, ya, wa, ha, sa) in enumerate(glyphs):
            for j in range(i + 1, len(glyphs)):
                xb, yb, wb, hb, sb = glyphs[j]
                size = max(ha, hb)
                if xb - (xa + wa) > 0.8 * size:
                    break  # sorted by x: every later glyph is farther away
                if (max(ha, hb) <= 1.6 * min(ha, hb) and abs((ya + ha / 2) - (yb + hb / 2)) <= 0.3 * size
                        and max(sa, sb) <= 2.0 * min(sa, sb) and xb - (xa + wa) >= -0.2 * size):
                    parent[root(j)] = root(i)
        groups: dict = {}
        for i in range(len(glyphs)):
            groups.setdefault(root(i), []).append(glyphs[i])
        lines = []
        for members in groups.values():
            # Touching letters merge into one component: count characters by width, at least one per component.
            chars = sum(max(1, round(w / (0.7 * h))) for _, _, w, h, _ in members)
            if len(members) < 3 or chars < self.min_chars:
                continue
            # A row of thin bars (window frames, railings, fence posts) is not a word: letters are mostly wider.
            if np.median([w / h for _, _, w, h, _ in members]) < 0.35:
                continue
            # Letters stand on one baseline (only descenders go below it); blobs of foliage or gravel do not.
            bottoms = np.array([y + h for _, y, _, h, _ in members])
            tolerance = max(1.5, 0.12 * np.median([h for *_, h, _ in members]))
            if np.mean(np.abs(bottoms - np.median(bottoms)) <= tolerance) < 0.6:
                continue
            x0, y0 = min(g[0] for g in members), min(g[1] for g in members)
            x1, y1 = max(g[0] + g[2] for g in members), max(g[1] + g[3] for g in members)
            lines.append((x0, y0, x1, y1))
        return lines

    def text_lines(self, frame: np.ndarray) -> list:
        """Boxes (x0, y0, x1, y1) of text-line candidates in one frame (coordinates of the working size)."""
        import cv2

        gray = _gray(frame, self.max_side)
        if max(gray.shape) < 200:  # small frames: upsample so thin glyph strokes survive the top-hat
            gray = cv2.resize(gray, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
        height = gray.shape[0]
        # The top-hat keeps bright (black top-hat: dark) details narrower than its kernel: strokes of glyphs up to
        # a fifth of the frame. (A second, 7-pixel kernel found outlined subtitles better but also found "words"
        # in foliage: 5 false positives in 29 real clips against 0; see bench/text_overlay.py.)
        size = max(7, round(height / 15)) | 1
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
        lines = []
        for operation in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):
            response = cv2.morphologyEx(gray, operation, kernel)
            mask = (response > self.min_contrast).astype(np.uint8)
            lines += self._chains(self._glyphs(mask, height))
        return lines

    @staticmethod
    def _overlap(a, b) -> float:
        """Intersection over the smaller box: a line found whole in one frame and in part in another (a letter
        lost against a busy background) still counts as the same place."""
        ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
        if max(a[3] - a[1], b[3] - b[1]) > 1.5 * min(a[3] - a[1], b[3] - b[1]):
            return 0.0  # one line of text keeps its height
        return ix * iy / smaller if smaller else 0.0

    def __call__(self, frames, fps=None) -> FilterResult:
        per_frame = [self.text_lines(frames[k]) for k in sample_indices(len(frames), self.num_frames)]
        with_text = 0
        for i, lines in enumerate(per_frame):
            # A line counts when it is at the same place in at least two other sampled frames: a chance
            # alignment of foliage or gravel matched one other frame now and then, an overlay matches all.
            persistent = any(sum(any(self._overlap(a, b) >= 0.5 for b in other)
                                 for j, other in enumerate(per_frame) if j != i) >= min(2, len(per_frame) - 1)
                             for a in lines)
            with_text += bool(persistent)
        fraction = with_text / len(per_frame)
        scores = {"text_fraction": fraction}
        if fraction >= self.min_frame_fraction:
            return FilterResult(False, scores, "text_overlay")
        return FilterResult(True, scores)
