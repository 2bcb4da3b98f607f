#!/usr/bin/env python
"""Guardrail quality and costs on this machine, printed as JSON (no timing assertions anywhere).

    OMP_NUM_THREADS=1 python bench/guardrails.py               # everything
    OMP_NUM_THREADS=1 python bench/guardrails.py --only redteam # the red-team rates only (a few seconds)

* redteam: the default text guard (blocklist) on the two red-team sets: `tuning` (the lists and readings were
  developed against it, so its rates are in-sample) and `heldout` (written before the last round of changes to
  them and never used to make them: the honest estimate). False-positive rate = safe prompts blocked / safe
  prompts; false-negative rate = unsafe prompts passed / unsafe prompts; misses per obfuscation kind.
* blocklist: prompts per second on the red-team sets, and the cost ratio of the full obfuscation-aware matcher
  against the same lists with fuzzy/typo matching turned off (what the extra recall costs).
* face pixelation (Haar, offline default): frames per second at 256x256 and 704x1280 (a Cosmos frame size),
  frontal-only versus frontal+profile (both directions) cascades, side by side.
Speeds are medians of `--repeats` interleaved runs of the compared candidates after a warm-up (bench/timing.py).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from timing import finish_report, interleaved, machine_header, positive_repeats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def over(fn, items):
    """A zero-argument callable that runs `fn` on every item (one timed candidate)."""
    return lambda: [fn(item) for item in items]


RED_TEAM_SETS = {
    "tuning": ROOT / "tests/data/guardrails/red_team_tuning.jsonl",
    "heldout": ROOT / "tests/data/guardrails/red_team_heldout.jsonl",
}


def red_team_rates(blocklist) -> dict:
    from cosmos_hf.guardrails.red_team import evaluate_text_guard, load_red_team

    out = {}
    for name, path in RED_TEAM_SETS.items():
        report = evaluate_text_guard(blocklist, load_red_team(path))
        out[name] = {
            "file": str(path.relative_to(ROOT)),
            "num_safe": report["num_safe"],
            "num_unsafe": report["num_unsafe"],
            "false_positives": report["false_positives"],
            "false_negatives": report["false_negatives"],
            "false_positive_rate": round(report["false_positive_rate"], 4),
            "false_negative_rate": round(report["false_negatives"] / report["num_unsafe"], 4),
            "missed_by_kind": {k: v for k, v in report["missed_by_kind"].items() if not v.startswith("0/")},
            "false_positive_prompts": [p["prompt"] for p in report["false_positive_prompts"]],
            "false_negative_prompts": [p["prompt"] for p in report["false_negative_prompts"]],
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("redteam",), help="run only this part")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed runs after one warm-up (>= 5)")
    args = parser.parse_args()
    positive_repeats(parser, args.repeats)
    from cosmos_hf.guardrails import FacePixelator, HaarCascadeFaceDetector, KeywordBlocklist
    from cosmos_hf.guardrails.red_team import load_red_team

    blocklist = KeywordBlocklist.default()
    result = {"benchmark": "guardrails", "command": " ".join(["bench/guardrails.py", *sys.argv[1:]]),
              "machine": machine_header(), "redteam": red_team_rates(blocklist)}
    if args.only == "redteam":
        print(json.dumps(finish_report(result), indent=2, ensure_ascii=False))
        return
    from test_guardrails_video import draw_face

    prompts = [r["prompt"] for path in RED_TEAM_SETS.values() for r in load_red_team(path)]
    timings = interleaved({"full": over(blocklist.check, prompts),
                           "without_fuzzy": over(KeywordBlocklist.default(enable_fuzzy=False).check, prompts)},
                          repeats=args.repeats)
    full, no_fuzzy = (len(prompts) / timings[name]["median_s"] for name in ("full", "without_fuzzy"))
    result.update({
        "repeats": args.repeats, "statistic": "median over repeats, candidates interleaved",
        "blocklist": {
            "num_prompts": len(prompts),
            "prompts_per_s": round(full, 1),
            "prompts_per_s_without_fuzzy": round(no_fuzzy, 1),
            "fuzzy_cost_ratio": round(no_fuzzy / full, 2),
            "timings": timings,
        },
        "face_pixelation_haar": {},
    })
    import cv2

    frontal = FacePixelator(detector=HaarCascadeFaceDetector(cascades=("haarcascade_frontalface_default.xml",)))
    both = FacePixelator()
    for height, width in ((256, 256), (704, 1280)):
        frame = np.full((height, width, 3), 200, np.uint8)
        face = draw_face(min(height, width) // 2)
        frame[: face.shape[0], : face.shape[1]] = face
        video = np.stack([frame] * 4)
        timings = interleaved({"frontal": lambda video=video: frontal(video), "both": lambda video=video: both(video)},
                              repeats=args.repeats)
        fps_frontal, fps_both = (len(video) / timings[name]["median_s"] for name in ("frontal", "both"))
        result["face_pixelation_haar"][f"{height}x{width}"] = {
            "frames_per_s_frontal": round(fps_frontal, 2),
            "frames_per_s_frontal_and_profile": round(fps_both, 2),
            "profile_cost_ratio": round(fps_frontal / fps_both, 2),
            "timings": timings,
        }
    result["opencv"] = cv2.__version__
    print(json.dumps(finish_report(result), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
