"""Score a text guard on a labelled red-team set (JSON lines: {"prompt", "label": "safe"|"unsafe", ...}).

    cosmos-hf guard redteam tests/data/guardrails/red_team_heldout.jsonl

prints the confusion counts, false positives (safe prompts blocked) and false negatives (unsafe prompts
passed), per category and per obfuscation kind, as JSON.

The repository's set comes in two parts: `red_team_tuning.jsonl` (the word lists and readings were developed
against it) and `red_team_heldout.jsonl` (written before the last round of changes to them and never used to make
them): only the held-out numbers estimate how the guard does on prompts it has not seen.
"""

import json
from collections import Counter
from pathlib import Path

VALID_LABELS = ("safe", "unsafe")


def load_red_team(path) -> list[dict]:
    """Rows of a red-team JSONL file; each needs a non-empty "prompt" and a "label" in ("safe", "unsafe")."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"red-team file not found: {path}")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({err})") from err
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise ValueError(f"{path}:{lineno}: 'prompt' must be a non-empty string")
        if row.get("label") not in VALID_LABELS:
            raise ValueError(f"{path}:{lineno}: 'label' must be one of {VALID_LABELS}, got {row.get('label')!r}")
        rows.append(row)
    if not rows:
        raise ValueError(f"red-team file {path} has no rows")
    return rows


def evaluate_text_guard(guard, rows: list[dict]) -> dict:
    """Run `guard(prompt) -> GuardrailVerdict` on every row; return counts and the misclassified prompts."""
    counts = Counter()
    false_positives, false_negatives = [], []
    missed_by_kind, total_by_kind = Counter(), Counter()
    for row in rows:
        verdict = guard(row["prompt"])
        unsafe = row["label"] == "unsafe"
        blocked = not verdict.is_safe
        counts[("tp" if blocked else "fn") if unsafe else ("fp" if blocked else "tn")] += 1
        if unsafe:
            kind = row.get("kind", "unknown")
            total_by_kind[kind] += 1
            if not blocked:
                missed_by_kind[kind] += 1
                false_negatives.append({"prompt": row["prompt"], "category": row.get("category"), "kind": kind})
        elif blocked:
            false_positives.append({"prompt": row["prompt"], "reason": verdict.reason})
    n_unsafe = counts["tp"] + counts["fn"]
    n_safe = counts["tn"] + counts["fp"]
    return {
        "num_prompts": len(rows),
        "num_unsafe": n_unsafe,
        "num_safe": n_safe,
        "true_positives": counts["tp"],
        "false_negatives": counts["fn"],
        "true_negatives": counts["tn"],
        "false_positives": counts["fp"],
        "recall": counts["tp"] / n_unsafe if n_unsafe else None,
        "false_positive_rate": counts["fp"] / n_safe if n_safe else None,
        "missed_by_kind": {k: f"{missed_by_kind[k]}/{total_by_kind[k]}" for k in sorted(total_by_kind)},
        "false_positive_prompts": false_positives,
        "false_negative_prompts": false_negatives,
    }
