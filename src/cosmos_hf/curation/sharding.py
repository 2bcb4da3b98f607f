"""Write curated clips as a training dataset: the videos/ + metas/ layout and webdataset tars bucketed by
resolution, aspect ratio and length.

    videos/{clip_id}.mp4, metas/{clip_id}.txt      what training/train_diffusion.py (`data.type: folder`) and
                                                   `cosmos_hf.data.load_video_caption_folder` read
    metadata.jsonl + README.md                     `datasets.load_dataset(folder)` (the card's YAML points at it)
    shards/{resolution}_{aspect}_{length}/{k:06d}.tar   webdataset: {clip_id}.mp4 / .txt / .json
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..sim.dataset import _tar_add, _write_text, readable_mode
from ..utils import atomic_path

RESOLUTION_BUCKETS = (144, 240, 360, 480, 720, 1080, 1440, 2160)  # by the shorter side, rounded down
ASPECT_BUCKETS = {"9x16": 9 / 16, "3x4": 3 / 4, "1x1": 1.0, "4x3": 4 / 3, "16x9": 16 / 9, "21x9": 21 / 9}
LENGTH_BUCKETS = (2.0, 5.0, 10.0, 30.0, 60.0)  # seconds, lower edges


def bucket_of(height: int, width: int, seconds: float) -> str:
    """e.g. '360p_16x9_5-10s' (below 144p: 'lt144p'; shorter than 2 s: 'lt2s'; 60 s or longer: '60s+')."""
    short = min(height, width)
    fitting = [r for r in RESOLUTION_BUCKETS if r <= short]
    resolution = f"{fitting[-1]}p" if fitting else "lt144p"
    aspect = min(ASPECT_BUCKETS, key=lambda name: abs(ASPECT_BUCKETS[name] - width / height))
    edges = [e for e in LENGTH_BUCKETS if e <= seconds + 1e-9]
    if not edges:
        length = "lt2s"
    elif edges[-1] == LENGTH_BUCKETS[-1]:
        length = "60s+"
    else:
        nxt = LENGTH_BUCKETS[LENGTH_BUCKETS.index(edges[-1]) + 1]
        length = f"{edges[-1]:g}-{nxt:g}s"
    return f"{resolution}_{aspect}_{length}"


CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: metadata.jsonl
tags:
- cosmos-hf
- video-curation
---
# Curated video clips

{num} clips curated by `cosmos_hf.curation` ({command}). `videos/*.mp4` + `metas/*.txt` is the layout of
`training/train_diffusion.py` (`data.type: folder`); `shards/` holds webdataset tars bucketed by resolution,
aspect ratio and length; `summary.json` counts every stage and rejection reason.
"""


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link `source` at `target` (cheap, atomic via a temp name), copying where links are not possible."""
    import shutil

    with atomic_path(target) as tmp:
        os.unlink(tmp)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def write_dataset(root, clips: list, shard_size: int = 100, command: str = "cosmos-hf curate") -> dict:
    """Write the layout above for `clips` (dicts with id, clip_path, caption, height, width, num_frames, fps, ...).

    Idempotent: files of clips no longer in `clips` are removed, everything else is (re)written atomically.
    Returns {"buckets": {bucket: num clips}, "shards": [relative paths]}.
    """
    root = Path(root)
    clips = sorted(clips, key=lambda c: c["id"])
    wanted = {c["id"] for c in clips}
    rows, by_bucket = [], {}
    for clip in clips:
        cid = clip["id"]
        _link_or_copy(Path(clip["clip_path"]), root / "videos" / f"{cid}.mp4")
        _write_text(root / "metas" / f"{cid}.txt", (clip.get("caption") or "") + "\n")
        bucket = bucket_of(clip["height"], clip["width"], clip["num_frames"] / clip["fps"])
        row = {k: v for k, v in clip.items() if k not in ("clip_path", "embedding")}
        row.update({"video": f"videos/{cid}.mp4", "caption": clip.get("caption") or "", "bucket": bucket})
        rows.append(row)
        by_bucket.setdefault(bucket, []).append(row)
    for folder, suffix in (("videos", ".mp4"), ("metas", ".txt")):
        for path in (root / folder).glob(f"*{suffix}") if (root / folder).is_dir() else []:
            if path.stem not in wanted:
                path.unlink()
    shards = []
    for bucket, bucket_rows in sorted(by_bucket.items()):
        for k in range(0, len(bucket_rows), shard_size):
            path = root / "shards" / bucket / f"{k // shard_size:06d}.tar"
            import tarfile

            with atomic_path(path) as tmp:
                with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as archive:
                    for row in bucket_rows[k:k + shard_size]:
                        cid = row["id"]
                        _tar_add(archive, f"{cid}.mp4", (root / row["video"]).read_bytes())
                        _tar_add(archive, f"{cid}.txt", row["caption"].encode("utf-8"))
                        _tar_add(archive, f"{cid}.json", json.dumps(row, sort_keys=True).encode("utf-8"))
                os.chmod(tmp, readable_mode())
            shards.append(str(path.relative_to(root)))
    for stale in (root / "shards").rglob("*.tar") if (root / "shards").is_dir() else []:
        if str(stale.relative_to(root)) not in shards:
            stale.unlink()
    with atomic_path(root / "metadata.jsonl") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, sort_keys=True) + "\n")
        os.chmod(tmp, readable_mode())
    _write_text(root / "README.md", CARD.format(num=len(rows), command=command))
    return {"buckets": {b: len(r) for b, r in sorted(by_bucket.items())}, "shards": shards}
