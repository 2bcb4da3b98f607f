"""The curation pipeline: raw videos -> shot split -> transcode -> filters -> caption -> embed -> dedup -> shards.

Per-clip stages run on an executor (Ray actors per stage by default when Ray is installed, else in-process);
dedup and sharding then run once over all finished clips.

Resumable and idempotent: when every clip of an input video has left the last stage, one record
`.work/records/{video_id}.json` is written atomically — that is the manifest of finished work. A restarted run
skips videos with a record, and the outputs (videos/, metas/, shards/, metadata.jsonl, summary.json) are rebuilt
from the records only, so a kill at any point loses no clip and duplicates none. Clip files are named by
(video, clip index) and written atomically, so redoing an unfinished video overwrites rather than duplicates.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..utils import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
WORK_DIR = ".work"
# finished-video records; atomic_path's temp files (".{stem}.XXXX.tmp.json", left by a kill mid-write) never match
RECORD_GLOB = "[!.]*.json"


@dataclass
class CurationConfig:
    """Every knob of a curation run (defaults: cosmos-curate's clip limits, offline filters)."""

    detector: str = "content"  # "content" or "transnetv2"
    transnet_weights: str | None = None
    dissolve_span: int = 0  # content detector: > 0 also finds dissolves/fades over this many frames
    min_clip_seconds: float = 2.0
    max_clip_seconds: float = 60.0
    crop_seconds: float = 0.5
    max_side: int | None = None  # transcode: downscale so the longer side is at most this (None: keep)
    crf: int = 23
    min_motion: float = 0.02
    quality: str = "statistics"  # "statistics", "clip-aesthetic", "dover" or "none"
    clip_model: str | None = None
    aesthetic_head: str | None = None
    dover_weights: str | None = None  # DOVER.pth or a safetensors copy, for quality "dover"
    min_dover: float = 0.3  # threshold on DOVER's fused score in [0, 1]
    text_overlay: bool = True
    captioner_model: str | None = None  # a local VLM folder; without it, captions come from metadata only
    caption_prompt: str | None = None
    embedder: str = "visual"  # "visual" or "minilm"
    dedup_eps: float = 0.05
    dedup_clusters: int | None = None
    shard_size: int = 100
    seed: int = 0
    filters: list = field(default_factory=lambda: ["motion", "quality", "text_overlay"])

    def validate(self):
        # NaN passes every comparison below (`nan < 0` is False): `min_motion=nan` turned the motion filter off
        # (no score is < nan), `crop_seconds=nan` or `max_clip_seconds=inf` failed every input in the split stage
        # ("cannot convert float NaN to integer"). Numbers must be finite first.
        for name in ("min_clip_seconds", "max_clip_seconds", "crop_seconds", "min_motion", "min_dover", "dedup_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.detector not in ("content", "transnetv2"):
            raise ValueError(f"detector must be 'content' or 'transnetv2', got {self.detector!r}")
        if self.detector == "transnetv2" and not self.transnet_weights:
            raise ValueError("the transnetv2 detector needs transnet_weights (a local weights file)")
        if not 0 < self.min_clip_seconds <= self.max_clip_seconds:
            raise ValueError(f"need 0 < min_clip_seconds <= max_clip_seconds, got {self.min_clip_seconds}, "
                             f"{self.max_clip_seconds}")
        if self.dissolve_span < 0 or self.dissolve_span == 1:
            raise ValueError(f"dissolve_span must be 0 (off) or >= 2 frames, got {self.dissolve_span}")
        if self.crop_seconds < 0:
            raise ValueError(f"crop_seconds must be >= 0, got {self.crop_seconds}")
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f"max_side must be >= 16, got {self.max_side}")
        if self.min_motion < 0:
            raise ValueError(f"min_motion must be >= 0 (0 keeps static clips), got {self.min_motion}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in [0, 51], got {self.crf}")
        if self.quality not in ("statistics", "clip-aesthetic", "dover", "none"):
            raise ValueError(f"quality must be statistics, clip-aesthetic, dover or none, got {self.quality!r}")
        if self.quality == "clip-aesthetic" and not (self.clip_model and self.aesthetic_head):
            raise ValueError("quality 'clip-aesthetic' needs clip_model and aesthetic_head (local paths)")
        if self.quality == "dover" and not self.dover_weights:
            raise ValueError("quality 'dover' needs dover_weights (a local DOVER.pth or .safetensors file)")
        if not 0.0 <= self.min_dover <= 1.0:
            raise ValueError(f"min_dover must be in [0, 1], got {self.min_dover}")
        if self.embedder not in ("visual", "minilm"):
            raise ValueError(f"embedder must be 'visual' or 'minilm', got {self.embedder!r}")
        if not 0 < self.dedup_eps < 1:
            raise ValueError(f"dedup_eps must be in (0, 1), got {self.dedup_eps}")
        clusters = self.dedup_clusters
        if clusters is not None and (isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 1):
            # 0 was read as "default" (about sqrt(N) clusters) and a negative count as 1 cluster, silently
            raise ValueError(f"dedup_clusters must be an integer >= 1 (or None: about sqrt(clips)), got {clusters!r}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        return self


# ------------------------------------------------------------------------------------------------ inputs


def video_id_for(path: Path, root: Path) -> str:
    """A file-name-safe id, unique per input path and the same on every run: the cleaned relative path plus a short
    hash of the exact relative path. Cleaning alone maps `a b.mp4` and `a_b.mp4`, `clip.mp4` and `clip.avi`, or two
    non-ASCII names to one string; the hash tells them apart, so no input overwrites another's clips."""
    relative = Path(path).relative_to(root)
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", "__".join(relative.with_suffix("").parts)).strip("_.") or "video"
    digest = hashlib.sha1(relative.as_posix().encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{cleaned[:80]}-{digest}"


def _caption_index(root: Path) -> dict:
    captions = {}
    for meta in root.rglob("metadata.jsonl"):
        for line in meta.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("video") and row.get("caption"):
                captions[(meta.parent / row["video"]).resolve()] = row["caption"]
    return captions


def discover_inputs(root, exclude=None, skipped: list | None = None) -> list:
    """Video files under `root` (sorted) with their metadata caption, if any: `{stem}.txt` beside the video,
    `metas/{stem}.txt` for `videos/{stem}.mp4`, or a `caption` in a `metadata.jsonl` row naming the video.

    What cannot be read is never dropped silently: when `skipped` is a list, it receives one
    `{"input": relative path, "reason": ...}` per broken symlink, non-file with a video extension, or folder that
    cannot be listed (hidden files and folders, and `exclude`, are left out on purpose and not reported).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"input folder not found: {root}")
    exclude = Path(exclude).resolve() if exclude else None
    skipped = [] if skipped is None else skipped

    def unreadable(err):  # os.walk's error hook: a folder it could not list
        folder = Path(err.filename) if err.filename else root
        name = folder.relative_to(root).as_posix() if folder != root and root in folder.parents else str(folder)
        skipped.append({"input": name + "/", "reason": f"folder cannot be read: {err.strerror or err}"})

    captions = _caption_index(root)
    items = []
    for folder, subfolders, files in os.walk(root, onerror=unreadable):
        folder = Path(folder)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")
                               and not (exclude is not None and (folder / d).resolve() == exclude))
        for name in sorted(files):
            path = folder / name
            if name.startswith(".") or path.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            if exclude is not None and exclude in path.resolve().parents:
                continue
            relative = path.relative_to(root).as_posix()
            if path.is_symlink() and not path.exists():
                skipped.append({"input": relative, "reason": f"broken symlink (target {os.readlink(path)} is missing)"})
                continue
            if not path.is_file():
                skipped.append({"input": relative, "reason": "not a regular file"})
                continue
            caption = captions.get(path.resolve())
            sidecars = [path.with_suffix(".txt")]
            if path.parent.name == "videos":
                sidecars.append(path.parent.parent / "metas" / f"{path.stem}.txt")
            for sidecar in sidecars:
                if caption is None and sidecar.is_file():
                    caption = sidecar.read_text(encoding="utf-8").strip()
            items.append({"video_id": video_id_for(path, root), "input": relative, "path": str(path.resolve()),
                          "caption": caption})
    items.sort(key=lambda item: item["input"])
    skipped.sort(key=lambda entry: entry["input"])
    return items


# ------------------------------------------------------------------------------------------------ video IO


def open_frames(path, timestamps: list | None = None):
    """(fps, frames): a video's frame rate and a generator that decodes its frames (uint8 [H, W, 3]) one at a
    time, so a caller that does not keep them holds one frame, whatever the video's length. Undecodable files
    raise ValueError naming the file (when opened, or while iterating for damage further in). When `timestamps`
    is a list, it receives each yielded frame's presentation timestamp (`frame.pts`, None if the file has none)."""
    import av

    from ..video_io import video_frame_rate

    path = Path(path)
    fps = video_frame_rate(path)  # the header only; missing, unreadable or stream-less files are errors here

    def frames():
        try:
            with av.open(str(path)) as container:
                for frame in container.decode(container.streams.video[0]):
                    if timestamps is not None:
                        timestamps.append(frame.pts)
                    yield frame.to_ndarray(format="rgb24")
        except Exception as err:
            raise ValueError(f"cannot decode video {path} (corrupt or unsupported): {err}") from err

    return fps, frames()


class _FrameTally:
    """Passes frames through unchanged, counting them and noting the frame size (no frame is kept)."""

    def __init__(self, frames):
        self.frames, self.count, self.shape = frames, 0, None

    def __iter__(self):
        for frame in self.frames:
            self.count += 1
            self.shape = self.shape or frame.shape
            yield frame


def read_frame_range(path, start: int, end: int, fps: float, pts_range=None):
    """Frames [start, end) of a video (counted in decoding order, as the split stage counts them), seeking to near
    `start` instead of decoding from the beginning.

    `pts_range`: (pts of frame `start`, pts of frame `end - 1`) as the split stage saw them. Frames are then chosen
    by these timestamps, which is exact whatever the frame timing. Without it, a frame's index is its timestamp
    times `fps`, which holds for constant-rate video only: in a variable-rate video (phones, screen recordings)
    frames 60..69 by that rule were other frames (69..75 in a test video), so clips were cut off their shot."""
    import av
    import numpy as np

    frames = []
    if pts_range is not None and None not in pts_range:
        first, last = (int(v) for v in pts_range)
        for seek in (True, False):  # without seeking (from the start) when the seek landed past the first frame
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                if seek:
                    container.seek(first, stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    if frame.pts is None or frame.pts < first:
                        continue
                    if frame.pts > last or (seek and not frames and frame.pts > first):
                        break
                    frames.append(frame.to_ndarray(format="rgb24"))
            if frames:
                break
        if len(frames) != end - start:
            raise ValueError(f"{path}: frames {start}..{end - 1} (pts {first}..{last}) decoded as {len(frames)} "
                             f"frames, not {end - start}; the file changed since it was split, or seeks unreliably")
        return np.stack(frames)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = float(stream.time_base)
        offset = float(stream.start_time or 0) * base
        if start > 0:
            container.seek(int((start / fps + offset) / base) - 1, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            index = round((float(frame.pts) * base - offset) * fps) if frame.pts is not None else len(frames)
            if index < start:
                continue
            if index >= end:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    if not frames:
        raise ValueError(f"no frames in [{start}, {end}) of {path}")
    return np.stack(frames)


# ------------------------------------------------------------------------------------------------ stages


class Stage:
    """Base: `setup()` builds models once per worker; `process(item) -> list[item]` runs the stage's
    `process_item` on a video (no "id") or a clip (with "id")."""

    name = "stage"
    num_cpus, num_gpus = 1.0, 0.0

    def __init__(self, config: CurationConfig, work_dir):
        self.config, self.work_dir = config, str(work_dir)

    def setup(self):
        pass

    def process(self, item) -> list:
        """`process_item`, with any error turned into a failed item that names the stage, so one bad video or clip
        fails alone (its video's record and summary.json say why, and the run exits non-zero) instead of ending
        the whole run with other videos unfinished. Failed items pass through the later stages untouched."""
        if item.get("failed"):
            return [item]
        try:
            return self.process_item(item)
        except Exception as err:  # noqa: BLE001 - reported per input, never swallowed
            reason = f"{self.name} stage: {type(err).__name__}: {err}"
            if "id" in item:
                return [{**item, "failed": reason}]
            return [{**item, "num_clips": 0, "error": reason}]

    def process_item(self, item) -> list:
        raise NotImplementedError


class SplitStage(Stage):
    """Detect shots while decoding a source video frame by frame, emit clip spans (or one error item naming the
    file). Frames stream from the decoder into the detector, which keeps only its own small window (a few
    downscaled frames), so memory does not grow with the video; clips are cut later from the source by frame
    range (`read_frame_range`)."""

    name = "split"

    def setup(self):
        from .shot_detection import make_detector

        weights = self.config.transnet_weights if self.config.detector == "transnetv2" else None
        kwargs = {"gradual_span": self.config.dissolve_span} if self.config.detector == "content" else {}
        self.detector = make_detector(self.config.detector, weights=weights, **kwargs)

    def process_item(self, item):
        from .shot_detection import clip_spans

        if Path(item["path"]).stat().st_size == 0:
            return [{**item, "num_clips": 0, "error": f"empty file (0 bytes): {item['path']}"}]
        timestamps: list = []  # one int per frame, like the detector's scores: memory stays small
        try:
            fps, frames = open_frames(item["path"], timestamps=timestamps)
            tally = _FrameTally(frames)
            transitions = self.detector.detect(tally)
        except (ValueError, FileNotFoundError) as err:
            return [{**item, "num_clips": 0, "error": str(err)}]
        if tally.count == 0:
            return [{**item, "num_clips": 0, "error": f"video {item['path']} contains no decodable frames"}]
        spans = clip_spans(transitions, tally.count, fps, self.config.min_clip_seconds,
                           self.config.max_clip_seconds, self.config.crop_seconds)
        base = {**item, "num_clips": len(spans), "source_frames": tally.count, "fps": fps,
                "num_transitions": len(transitions),
                "source_height": int(tally.shape[0]), "source_width": int(tally.shape[1])}
        if not spans:
            return [{**base, "num_clips": 0, "no_clips": True}]
        # The transcode stage cuts each clip by the timestamps of its first and last frame: a frame's index
        # computed from its timestamp and the average fps is wrong in variable-frame-rate video.
        exact = len(timestamps) == tally.count and None not in timestamps
        return [{**base, "id": f"{item['video_id']}_{k:04d}", "start": s, "end": e,
                 "pts_range": [timestamps[s], timestamps[e - 1]] if exact else None}
                for k, (s, e) in enumerate(spans)]


class TranscodeStage(Stage):
    """Cut the span out of the source and encode it as H.264 mp4 (optionally downscaled)."""

    name = "transcode"

    def process_item(self, item):
        if "id" not in item:
            return [item]
        import cv2
        import numpy as np

        from ..data import write_video

        pts_range = item.get("pts_range")
        item = {k: v for k, v in item.items() if k != "pts_range"}  # only for cutting: not a column of the output
        frames = read_frame_range(item["path"], item["start"], item["end"], item["fps"], pts_range)
        side = self.config.max_side
        if side and max(frames.shape[1:3]) > side:
            scale = side / max(frames.shape[1:3])
            size = (max(2, round(frames.shape[2] * scale / 2) * 2), max(2, round(frames.shape[1] * scale / 2) * 2))
            frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
        clip_path = Path(self.work_dir) / "clips" / f"{item['id']}.mp4"
        write_video(clip_path, frames, fps=item["fps"], crf=self.config.crf)
        return [{**item, "clip_path": str(clip_path), "num_frames": len(frames),
                 "height": int(frames.shape[1]) + int(frames.shape[1]) % 2,
                 "width": int(frames.shape[2]) + int(frames.shape[2]) % 2}]


class FilterStage(Stage):
    """Motion, quality and text-overlay filters on the transcoded clip; the first failure rejects it."""

    name = "filter"

    def setup(self):
        from .filters import (
            ClipAestheticQuality,
            ImageStatisticsQuality,
            MotionFilter,
            TextOverlayDetector,
        )

        config, self.filters = self.config, []
        for name in config.filters:
            if name == "motion":
                self.filters.append(MotionFilter(min_motion=config.min_motion))
            elif name == "quality" and config.quality == "statistics":
                self.filters.append(ImageStatisticsQuality())
            elif name == "quality" and config.quality == "clip-aesthetic":
                self.filters.append(ClipAestheticQuality(config.clip_model, config.aesthetic_head))
            elif name == "quality" and config.quality == "dover":
                from .dover import DoverQuality

                self.filters.append(DoverQuality(config.dover_weights, min_score=config.min_dover))
            elif name == "text_overlay" and config.text_overlay:
                self.filters.append(TextOverlayDetector())
            elif name not in ("motion", "quality", "text_overlay"):
                raise ValueError(f"unknown filter {name!r}; choose from motion, quality, text_overlay")

    def process_item(self, item):
        if "id" not in item:
            return [item]
        from ..data import read_video

        frames, fps = read_video(item["clip_path"])
        scores = {}
        for f in self.filters:
            result = f(frames, fps)
            scores.update(result.scores)
            if not result.passed:
                return [{**item, "scores": scores, "rejected": f"{f.name}:{result.reason}"}]
        return [{**item, "scores": scores}]


class CaptionEmbedStage(Stage):
    """Caption (metadata, else the VLM if configured) and embed each surviving clip for dedup."""

    name = "caption"

    def setup(self):
        from .captioning import PAPER_PROMPT, AutoCaptioner, VLMCaptioner
        from .dedup import make_embedder

        vlm = None
        if self.config.captioner_model:
            vlm = VLMCaptioner(self.config.captioner_model, prompt=self.config.caption_prompt or PAPER_PROMPT)
        self.captioner, self.embedder = AutoCaptioner(vlm), make_embedder(self.config.embedder)

    def process_item(self, item):
        if "id" not in item or item.get("rejected"):
            return [item]
        from ..data import read_video

        frames, fps = read_video(item["clip_path"])
        caption = self.captioner(frames, fps, item.get("caption"))
        if caption is None and self.config.embedder == "minilm":
            return [{**item, "caption": None, "rejected": "caption:no_caption"}]
        embedding = self.embedder(frames, caption)
        return [{**item, "caption": caption, "embedding": [float(v) for v in embedding]}]


def build_stages(config: CurationConfig, work_dir) -> list:
    return [SplitStage(config, work_dir), TranscodeStage(config, work_dir), FilterStage(config, work_dir),
            CaptionEmbedStage(config, work_dir)]


# ------------------------------------------------------------------------------------------------ run


def _write_json(path, data) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        from ..sim.dataset import readable_mode

        os.chmod(tmp, readable_mode())


def _check_output_dir(input_dir: Path, output_dir: Path, config_path: Path) -> None:
    """Refuse an output folder whose files a run would delete: the dataset writer removes every videos/*.mp4,
    metas/*.txt and shards/**/*.tar that is not one of its clips and rewrites metadata.jsonl and README.md, so a
    folder that holds anything but an earlier curation run (its `.work/config.json`) must not be the output. (A run
    killed before writing config.json leaves at most `.work/`, which is allowed.)"""
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output path {output_dir} exists and is not a folder")
    resolved_in, resolved_out = input_dir.resolve(), output_dir.resolve()
    if resolved_out == resolved_in or resolved_out in resolved_in.parents:
        raise ValueError(f"output folder {output_dir} is (or contains) the input folder {input_dir}; choose an "
                         "output folder outside the input")
    if output_dir.is_dir() and not config_path.is_file():
        other = sorted(p.name for p in output_dir.iterdir() if p.name != WORK_DIR)
        if other:
            raise ValueError(f"output folder {output_dir} is not empty ({', '.join(other[:5])}"
                             f"{', ...' if len(other) > 5 else ''}) and holds no earlier curation run "
                             f"({config_path} is missing); curation would delete its videos/, metas/ and shards/ "
                             "files, so choose a new or empty folder")


def run_curation(input_dir, output_dir, config: CurationConfig | None = None, executor=None, progress: bool = True,
                 max_videos: int | None = None, command: str = "cosmos-hf curate") -> dict:
    """Curate every video under `input_dir` into `output_dir`; returns the summary (also `summary.json`).

    `executor`: a `LocalExecutor` / `RayExecutor` (default: `make_executor("auto")`). `max_videos` stops after
    that many videos have been finished in this call (for tests and staged runs; a later call resumes).
    """
    from tqdm.auto import tqdm

    from .engine import make_executor

    config = (config or CurationConfig()).validate()
    if max_videos is not None and max_videos < 1:
        raise ValueError(f"max_videos must be >= 1 (or None for all), got {max_videos}")
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    work = output_dir / WORK_DIR
    records_dir = work / "records"
    config_path = work / "config.json"
    _check_output_dir(input_dir, output_dir, config_path)  # before anything is read or written
    skipped: list = []
    inputs = discover_inputs(input_dir, exclude=output_dir, skipped=skipped)
    if not inputs:
        unreadable = "".join(f"; skipped {s['input']}: {s['reason']}" for s in skipped)
        raise ValueError(f"no readable video files ({', '.join(VIDEO_EXTENSIONS)}) found under {input_dir}"
                         f"{unreadable}")
    records_dir.mkdir(parents=True, exist_ok=True)
    if config_path.is_file():
        previous = json.loads(config_path.read_text())
        # Options added after that run was started count as their defaults.
        defaults = json.loads(json.dumps(asdict(CurationConfig())))
        previous = {**{k: v for k, v in defaults.items() if k not in previous}, **previous}
        if previous != json.loads(json.dumps(asdict(config))):
            raise ValueError(f"{output_dir} was curated with a different configuration ({config_path}); use a new "
                             "output folder or delete it to start over")
    else:
        _write_json(config_path, asdict(config))
    for folder in (work / "clips", records_dir):
        for stale in folder.glob(".*.tmp*") if folder.is_dir() else []:
            stale.unlink()  # temp files of a killed run (atomic writes never left them at a final name)
    done = {p.stem for p in records_dir.glob(RECORD_GLOB)}
    todo = [item for item in inputs if item["video_id"] not in done]
    if max_videos is not None:
        todo = todo[:max_videos]
    executor = executor or make_executor("auto")

    bar = tqdm(total=len(inputs), initial=len(inputs) - len([i for i in inputs if i["video_id"] not in done]),
               desc=f"curate ({executor.name})", unit="video", disable=not progress)
    pending: dict = {}

    def on_result(item):
        vid = item["video_id"]
        clips = pending.setdefault(vid, [])
        if "id" in item:
            clips.append(item)
        if len(clips) >= item["num_clips"]:
            record = {"video_id": vid, "input": item.get("input"), "path": item["path"], "error": item.get("error"),
                      "num_transitions": item.get("num_transitions"),
                      "clips": sorted(pending.pop(vid), key=lambda c: c["id"])}
            _write_json(records_dir / f"{vid}.json", record)
            bar.update()

    executor.run(build_stages(config, work), todo, on_result)
    bar.close()
    return finalize(input_dir, output_dir, config, inputs, command=command, executor_name=executor.name,
                    skipped=skipped)


def _input_outcome(record, written: int, rejected: dict, failed_clips: list) -> str:
    if record is None:
        return "pending"
    if record.get("error") or failed_clips:
        return "failed"
    if written:
        return "clips_written"
    return "all_clips_rejected" if rejected else "no_clips"


def finalize(input_dir, output_dir, config, inputs, command="cosmos-hf curate", executor_name="local",
             skipped: list | None = None) -> dict:
    """Dedup + shards + summary from the finished records (safe to run any number of times).

    summary.json lists every input under "videos", by its path relative to the input folder, with its outcome:
    clips_written, all_clips_rejected (with the reasons), no_clips (no shot long enough), failed (why), skipped
    (why: a broken symlink, a folder that cannot be read) or pending (not finished yet)."""
    import collections

    from .dedup import semantic_dedup
    from .sharding import write_dataset

    output_dir = Path(output_dir)
    skipped = skipped or []
    records_dir = output_dir / WORK_DIR / "records"
    records = {p.stem: json.loads(p.read_text()) for p in sorted(records_dir.glob(RECORD_GLOB))}
    wanted = {i["video_id"] for i in inputs}
    failed, clips, rejections = [], [], collections.Counter()
    for vid in sorted(wanted & set(records)):
        record = records[vid]
        if record.get("error"):
            failed.append({"video": record["path"], "error": record["error"]})
        for clip in record["clips"]:
            if clip.get("failed"):
                failed.append({"video": record["path"], "error": f"clip {clip['id']}: {clip['failed']}"})
            elif clip.get("rejected"):
                rejections[clip["rejected"]] += 1
            else:
                clips.append(clip)
    kept, removed = semantic_dedup([c["id"] for c in clips], [c["embedding"] for c in clips], eps=config.dedup_eps,
                                   num_clusters=config.dedup_clusters, seed=config.seed,
                                   priority=[1 if c.get("caption") else 0 for c in clips]) if clips else ([], [])
    kept_ids = {r["id"] for r in kept}
    final = [c for c in clips if c["id"] in kept_ids]
    if removed:
        rejections["dedup:near_duplicate"] += len(removed)
    for name, rows in (("dedup_kept.jsonl", kept), ("dedup_removed.jsonl", removed)):
        with atomic_path(output_dir / name) as tmp:
            Path(tmp).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    dataset = write_dataset(output_dir, [{k: v for k, v in c.items() if k not in ("path",)} | {"source": c["path"]}
                                         for c in final], shard_size=config.shard_size, command=command)
    num_detected = sum(len(records[v]["clips"]) for v in wanted & set(records))
    num_failed_clips = sum(1 for v in wanted & set(records) for c in records[v]["clips"] if c.get("failed"))
    filter_rejected = sum(n for r, n in rejections.items()
                          if r.split(":")[0] in ("motion", "quality", "aesthetic", "dover", "text_overlay"))

    videos = []  # one row per input, in input order
    for item in inputs:
        record = records.get(item["video_id"])
        written, rejected, failed_clips = 0, collections.Counter(), []
        for clip in (record or {}).get("clips", []):
            if clip.get("failed"):
                failed_clips.append({"clip": clip["id"], "error": clip["failed"]})
            elif clip.get("rejected"):
                rejected[clip["rejected"]] += 1
            elif clip["id"] in kept_ids:
                written += 1
            else:
                rejected["dedup:near_duplicate"] += 1
        row = {"input": item["input"], "video_id": item["video_id"],
               "outcome": _input_outcome(record, written, rejected, failed_clips),
               "clips_detected": len(record["clips"]) if record else None, "clips_written": written,
               "clips_rejected": dict(sorted(rejected.items()))}
        if record and record.get("error"):
            row["error"] = record["error"]
        if failed_clips:
            row["clips_failed"] = failed_clips
        videos.append(row)
    videos += [{"input": s["input"], "outcome": "skipped", "reason": s["reason"]} for s in skipped]
    videos.sort(key=lambda row: row["input"])

    summary = {
        "executor": executor_name,
        "inputs": len(inputs),
        "inputs_finished": len(wanted & set(records)),
        "inputs_pending": sorted(wanted - set(records)),
        "inputs_failed": failed,
        "inputs_skipped": skipped,
        "inputs_without_clips": sorted(v for v in wanted & set(records)
                                       if not records[v]["clips"] and not records[v].get("error")),
        "videos": videos,
        "stages": {
            "split": {"clips": num_detected,
                      "transitions": sum(records[v].get("num_transitions") or 0 for v in wanted & set(records))},
            "filter": {"passed": num_detected - num_failed_clips - filter_rejected,
                       "rejected": {r: n for r, n in sorted(rejections.items())
                                    if not r.startswith(("dedup", "caption"))}},
            "caption": {"captioned": sum(1 for c in clips if c.get("caption")),
                        "uncaptioned": sum(1 for c in clips if not c.get("caption")),
                        "rejected": {r: n for r, n in rejections.items() if r.startswith("caption")}},
            "dedup": {"kept": len(kept), "removed": len(removed), "eps": config.dedup_eps,
                      "embedder": config.embedder},
            "shard": {"clips": len(final), **dataset},
        },
        "rejections": dict(sorted(rejections.items())),
        "clips_written": len(final),
    }
    _write_json(output_dir / "summary.json", summary)
    return summary
