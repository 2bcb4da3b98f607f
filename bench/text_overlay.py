"""Text-overlay filter: false positives on text-free footage, false negatives on the same clips with rendered text.

    python bench/text_overlay.py [--videos DIR_OR_FILE ...] [--clip-frames 48] [--clips-per-video 6]

Negatives (no text): 48-frame clips cut from real videos — by default the sample videos of Debian's `opencv-doc`
package when installed (tree.avi: a tree through a window; vtest.avi: a static street camera; box.mp4 / cup.mp4:
handheld objects; Megamind.avi: animation; `apt-get install opencv-doc`) and the fixture clips in tests/data/ — plus
physics-world clips of all 8 scenes at 64x64 and 256x256. Positives: every negative clip with a static overlay
rendered by cv2.putText in one of three styles (white subtitle with a dark outline at the bottom, coloured caption
at the top left, small corner watermark), glyphs 3-8 % of the frame height. A clip counts as detected when the
filter rejects it. Prints JSON (per source and in total).
"""

import argparse
import gzip
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

OPENCV_DOC = Path("/usr/share/doc/opencv-doc")
WORDS = ["breaking", "news", "live", "the", "city", "weather", "today", "subscribe", "episode", "chapter", "one",
         "hello", "world", "sale", "final", "round", "score", "match", "camera", "report", "2024", "42", "PM"]


def default_videos(scratch: Path) -> list:
    paths = sorted(Path(__file__).resolve().parents[1].glob("tests/data/text_free/*.mp4"))
    if OPENCV_DOC.is_dir():
        paths += sorted((OPENCV_DOC / "examples" / "data").glob("*.avi"))
        for packed in sorted(OPENCV_DOC.rglob("*.mp4.gz")):
            target = scratch / packed.stem
            with gzip.open(packed) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
            paths.append(target)
    return paths


def real_clips(paths, clip_frames: int, per_video: int):
    from cosmos_hf.data import read_video

    for path in paths:
        frames, _ = read_video(path, max_frames=clip_frames * per_video)
        for k in range(min(per_video, len(frames) // clip_frames) or 1):
            clip = frames[k * clip_frames:(k + 1) * clip_frames]
            if len(clip) >= 8:
                yield f"{Path(path).name}", clip


def sim_clips():
    from cosmos_hf.sim import SCENES, simulate

    for size in (64, 256):
        for k, scene in enumerate(SCENES):
            yield f"sim_{size}px", simulate(scene, seed=k, num_frames=24, height=size, width=size, view=k % 4).video


def render_overlay(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    height, width = clip.shape[1:3]
    style = rng.choice(["subtitle", "caption", "watermark"])
    text = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 5))))
    glyph_fraction = {"subtitle": (0.05, 0.08), "caption": (0.04, 0.07), "watermark": (0.03, 0.05)}[style]
    glyph_height = max(6.0, rng.uniform(*glyph_fraction) * height)
    font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN]))
    scale = glyph_height / cv2.getTextSize("H", font, 1.0, 1)[0][1]
    thickness = max(1, round(scale * rng.uniform(1.0, 2.0)))
    (text_width, _), _ = cv2.getTextSize(text, font, scale, thickness)
    while text_width > 0.9 * width and len(text) > 4:  # keep it on screen
        text = text[: len(text) * 3 // 4].strip()
        (text_width, _), _ = cv2.getTextSize(text, font, scale, thickness)
    if style == "subtitle":
        origin = (max(2, (width - text_width) // 2), int(height - 0.06 * height))
        colour = (255, 255, 255)
    elif style == "caption":
        origin = (int(0.05 * width), int(0.05 * height + glyph_height))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    else:
        origin = (max(2, int(0.95 * width) - text_width), int(0.95 * height))
        colour = (235, 235, 235)
    if style != "subtitle":  # readable: a light colour on a dark background, a dark one on a light background
        x0, y0 = origin
        below = clip[0, max(0, y0 - int(glyph_height)):y0 + 1, x0:x0 + text_width].mean()
        colour = tuple(int(c) for c in ((np.array(colour) // 4 + 191) if below < 128 else np.array(colour) // 4))
    out = clip.copy()
    for frame in out:
        if style == "subtitle":
            cv2.putText(frame, text, origin, font, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(frame, text, origin, font, scale, colour, thickness, cv2.LINE_AA)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", nargs="*", default=None, help="text-free videos (default: see above)")
    parser.add_argument("--clip-frames", type=int, default=48)
    parser.add_argument("--clips-per-video", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from cosmos_hf.curation.filters import TextOverlayDetector

    detector = TextOverlayDetector()
    rng = np.random.default_rng(args.seed)
    per_source: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        videos = args.videos if args.videos is not None else default_videos(Path(scratch))
        clips = list(real_clips(videos, args.clip_frames, args.clips_per_video)) + list(sim_clips())
        for source, clip in clips:
            row = per_source.setdefault(source, {"clips": 0, "false_positives": 0, "false_negatives": 0})
            row["clips"] += 1
            row["false_positives"] += int(not detector(clip).passed)
            row["false_negatives"] += int(detector(render_overlay(clip, rng)).passed)
    total = {key: sum(row[key] for row in per_source.values()) for key in ("clips", "false_positives",
                                                                         "false_negatives")}
    real = [row for source, row in per_source.items() if not source.startswith("sim_")]
    real_total = {key: sum(row[key] for row in real) for key in ("clips", "false_positives", "false_negatives")}
    print(json.dumps({
        "videos": [str(v) for v in videos],
        "per_source": per_source,
        "real_footage": {**real_total, "fp_rate": round(real_total["false_positives"] / max(1, real_total["clips"]), 3),
                         "fn_rate": round(real_total["false_negatives"] / max(1, real_total["clips"]), 3)},
        "all": {**total, "fp_rate": round(total["false_positives"] / total["clips"], 3),
                "fn_rate": round(total["false_negatives"] / total["clips"], 3)},
    }, indent=1))


if __name__ == "__main__":
    main()
