"""`cosmos-hf guard ...` commands."""

import json

import numpy as np
from test_guardrails_video import draw_face

from cosmos_hf.cli import main
from cosmos_hf.data import read_video, write_video


def test_guard_text_exit_codes_and_json(capsys):
    assert main(["guard", "text", "a robot arm stacks three cubes"]) == 0
    assert capsys.readouterr().out.startswith("SAFE")
    assert main(["guard", "text", "a man with a g.u.n", "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["is_safe"] is False and verdict["details"]["category"] == "weapons"
    assert main(["guard", "text", "x", "--no-blocklist"]) == 2  # no text guard left: a clear error
    assert "no text guard" in capsys.readouterr().err


def test_guard_video_pixelates_faces(tmp_path, capsys):
    face = draw_face(128)
    write_video(tmp_path / "in.mp4", np.stack([face] * 4), fps=8)
    assert main(["guard", "video", str(tmp_path / "in.mp4"), "--out", str(tmp_path / "out.mp4"), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["is_safe"] and min(verdict["details"]["faces_per_frame"]) >= 1
    frames, _ = read_video(tmp_path / "out.mp4")
    assert frames.shape == (4, 128, 128, 3)
    eyes = (slice(50, 64), slice(40, 90))
    assert frames[0][eyes].min() > 80 and face[eyes].min() < 50  # the dark eyes are averaged away
    assert main(["guard", "video", str(tmp_path / "missing.mp4")]) == 2


def test_guard_redteam_prints_counts(capsys):
    assert main(["guard", "redteam"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_prompts"] >= 200
    assert {"false_positives", "false_negatives", "recall", "false_positive_rate"} <= set(report)
