#!/usr/bin/env python
"""Guardrail costs on this machine, printed as JSON (no timing assertions anywhere).

    OMP_NUM_THREADS=1 python bench/guardrails.py

* blocklist: prompts per second on the red-team set, and the cost ratio of the full obfuscation-aware matcher
  against the same lists with fuzzy/typo matching turned off (what the extra recall costs).
* face pixelation (Haar, offline default): frames per second at 256x256 and 704x1280 (a Cosmos frame size),
  frontal-only versus frontal+profile (both directions) cascades, side by side.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def rate(fn, items, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def main():
    from cosmos_hf.guardrails import FacePixelator, HaarCascadeFaceDetector, KeywordBlocklist
    from cosmos_hf.guardrails.red_team import load_red_team
    from test_guardrails_video import draw_face

    prompts = [r["prompt"] for r in load_red_team(ROOT / "tests/data/guardrails/red_team_prompts.jsonl")]
    full = rate(KeywordBlocklist.default().check, prompts)
    no_fuzzy = rate(KeywordBlocklist.default(enable_fuzzy=False).check, prompts)
    result = {
        "blocklist": {
            "num_prompts": len(prompts),
            "prompts_per_s": round(full, 1),
            "prompts_per_s_without_fuzzy": round(no_fuzzy, 1),
            "fuzzy_cost_ratio": round(no_fuzzy / full, 2),
        },
        "face_pixelation_haar": {},
    }
    import cv2

    for height, width in ((256, 256), (704, 1280)):
        frame = np.full((height, width, 3), 200, np.uint8)
        face = draw_face(min(height, width) // 2)
        frame[: face.shape[0], : face.shape[1]] = face
        video = np.stack([frame] * 4)
        frontal = FacePixelator(detector=HaarCascadeFaceDetector(cascades=("haarcascade_frontalface_default.xml",)))
        both = FacePixelator()
        fps_frontal = rate(lambda v: frontal(v), [video], repeat=2) * len(video)
        fps_both = rate(lambda v: both(v), [video], repeat=2) * len(video)
        result["face_pixelation_haar"][f"{height}x{width}"] = {
            "frames_per_s_frontal": round(fps_frontal, 2),
            "frames_per_s_frontal_and_profile": round(fps_both, 2),
            "profile_cost_ratio": round(fps_frontal / fps_both, 2),
        }
    result["opencv"] = cv2.__version__
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
