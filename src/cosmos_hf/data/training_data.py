"""The data layer of the `training/*.py` scripts: clip datasets, the tokenizer's seed-addressed clip stream, and the
token / latent caches with the checks that refuse a cache made for other data.

- `build_dataset(data)` (train_diffusion.py's `data.type`): `folder` (videos/*.mp4 + metas/*.txt), `webdataset`
  (tar shards with .mp4 + .txt), `physics` (clips simulated on the fly by `cosmos_hf.sim`), `clips` (a clip archive
  written by `cosmos-hf sim export-clips`). Samples are {"video": float [3,T,H,W] in [-1, 1], "caption": str}.
- `ClipSource(data, num_frames)` (train_tokenizer.py's `data.source`): endless clips addressed by an integer key, so a
  resumed run reads the same clips; the same sources.
- `physics_token_cache(...)` (train_autoregressive.py) and `latent_cache_key` + `load_tensor_cache` /
  `save_tensor_cache` (train_diffusion.py's `data.cache_latents`): safetensors files that record what they were made
  from in their metadata and are refused for anything else.

One rule for which physics clip is which (`cosmos_hf.sim.physics_scene_and_view`: clip i is seed `seed_offset + i`,
scenes cycle fastest, then views), except the tokenizer's endless stream (see `ClipSource`); one uint8 -> [-1, 1]
conversion (`frames_to_tensor`).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from .video_io import frames_to_tensor, read_video, video_frame_rate

DATASET_TYPES = ("folder", "webdataset", "physics", "clips")


# ---------------------------------------------------------------------------------------------------------- clips
def clip_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T,H,W,3] -> float [3,T,H,W] in [-1, 1] (one sample of a batch; `frames_to_tensor` adds the batch)."""
    return frames_to_tensor(frames)[0]


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    if frames.shape[1:3] == (height, width):
        return frames
    import cv2

    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def pick_clip(frames: np.ndarray, num_frames: int, stride: int, rng: random.Random | None, source: str):
    """`num_frames` frames `stride` apart, from a random start (`rng`) or the first frame (`rng=None`)."""
    span = (num_frames - 1) * stride + 1
    if len(frames) < span:
        raise ValueError(f"{source} has {len(frames)} frames; need at least {span} ({num_frames} at stride {stride})")
    start = rng.randint(0, len(frames) - span) if rng is not None else 0
    return frames[start : start + span : stride]


def crop_clip(frames: np.ndarray, num_frames: int, height: int, width: int, rng: random.Random) -> np.ndarray:
    """Random temporal + spatial crop of uint8 [T,H,W,3] (the tokenizer's clips); the caller checks the size."""
    start = rng.randint(0, len(frames) - num_frames)
    top = rng.randint(0, frames.shape[1] - height)
    left = rng.randint(0, frames.shape[2] - width)
    return frames[start : start + num_frames, top : top + height, left : left + width]


def physics_scenes_and_views(scenes, views) -> tuple[list[str], list[int]]:
    """`data.scenes` (None = all) and `data.views` checked: known scenes, a non-empty list of views in 0..3."""
    from ..sim import SCENES

    scenes = list(scenes or SCENES)
    unknown = sorted(set(scenes) - set(SCENES))
    if unknown:
        raise ValueError(f"unknown physics scenes {unknown}; valid: {list(SCENES)}")
    checked = [int(v) for v in views] if views is not None else []
    if not checked or any(not 0 <= v <= 3 for v in checked):
        raise ValueError(f"data.views must be a non-empty list of camera views in 0..3, got {views}")
    return scenes, checked


def check_frame_rate(video_fps: float, frame_stride: int, fps, where: str):
    """Refuse a video whose clips (every `frame_stride`-th frame) do not play at `fps`, the `data.fps` the model is
    told: it would learn the wrong fps conditioning without any error (1% tolerance; fps None: no check)."""
    if fps is None:
        return
    effective = video_fps / frame_stride
    if abs(effective - float(fps)) > 0.01 * float(fps):
        raise ValueError(f"{where} plays at {video_fps:g} fps, so its clips (data.frame_stride {frame_stride}) are "
                         f"{effective:g} fps, but data.fps is {float(fps):g} (the fps the model is conditioned on): "
                         f"set data.fps to {effective:g}, choose a data.frame_stride that gives {float(fps):g} fps, or "
                         "resample the videos to one rate")


class VideoFolderDataset(Dataset):
    """`videos/*.mp4` + `metas/*.txt` (one caption per video, same stem). With `fps`, every video's rate divided by
    `frame_stride` must match it (`check_frame_rate`, at construction, from the headers)."""

    def __init__(self, root, num_frames, height, width, frame_stride=1, random_start=True, fps=None):
        root = Path(root)
        videos = sorted((root / "videos").glob("*.mp4"))
        if not videos:
            raise ValueError(f"no videos found in {root / 'videos'} (expected videos/*.mp4 + metas/*.txt)")
        missing = [v.stem for v in videos if not (root / "metas" / f"{v.stem}.txt").is_file()]
        if missing:
            raise ValueError(f"{len(missing)} videos have no caption in {root / 'metas'}: {missing[:5]}")
        for video in videos:
            check_frame_rate(video_frame_rate(video), frame_stride, fps, str(video))
        self.items = [(v, (root / "metas" / f"{v.stem}.txt").read_text().strip()) for v in videos]
        self.num_frames, self.height, self.width = num_frames, height, width
        self.frame_stride, self.random_start = frame_stride, random_start
        self.seed, self.epoch = 0, 0

    def set_sample_seed(self, seed: int, epoch: int):
        """The clip start of item i in an epoch is drawn from (seed, epoch, i), not from the global RNG, so a resumed
        run reads the same frames as an uninterrupted one (whatever the loader's workers or prefetching)."""
        self.seed, self.epoch = seed, epoch

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        path, caption = self.items[index]
        frames, _ = read_video(path)
        rng = random.Random(f"{self.seed}/{self.epoch}/{index}") if self.random_start else None
        clip = pick_clip(frames, self.num_frames, self.frame_stride, rng, str(path))
        return {"video": clip_tensor(resize_frames(clip, self.height, self.width)), "caption": caption}


class WebDatasetShards(IterableDataset):
    """webdataset tar shards whose samples hold `<key>.mp4` and `<key>.txt`. With `fps`, each sample's rate is
    checked as in `VideoFolderDataset` (when it is read: shards are streamed)."""

    def __init__(self, urls, num_frames, height, width, frame_stride=1, fps=None):
        self.urls, self.num_frames, self.height, self.width = urls, num_frames, height, width
        self.frame_stride, self.fps = frame_stride, fps

    def __iter__(self):
        import webdataset as wds

        dataset = wds.WebDataset(self.urls, shardshuffle=False, nodesplitter=wds.split_by_node,
                                 workersplitter=wds.split_by_worker)
        rng = random.Random(torch.randint(0, 2**31, (1,)).item())
        for sample in dataset:
            key = sample.get("__key__", "?")
            if "mp4" not in sample or "txt" not in sample:
                raise ValueError(f"webdataset sample {key} needs .mp4 and .txt entries, has {sorted(sample)}")
            with tempfile.NamedTemporaryFile(suffix=".mp4") as tmp:
                tmp.write(sample["mp4"])
                tmp.flush()
                frames, video_fps = read_video(tmp.name)
            check_frame_rate(video_fps, self.frame_stride, self.fps, f"webdataset sample {key}")
            clip = pick_clip(frames, self.num_frames, self.frame_stride, rng, f"webdataset sample {key}")
            caption = sample["txt"].decode() if isinstance(sample["txt"], bytes) else sample["txt"]
            yield {"video": clip_tensor(resize_frames(clip, self.height, self.width)), "caption": caption.strip()}


class PhysicsWorldDataset(Dataset):
    """Clips simulated on the fly by the built-in physics world (`cosmos_hf.sim`): clip i is seed `seed_offset + i`,
    its scene and view from `physics_scene_and_view(i, scenes, views)`."""

    def __init__(self, num_clips, num_frames, height, width, fps, scenes=None, seed_offset=0, views=(0,)):
        self.scenes, self.views = physics_scenes_and_views(scenes, views)
        self.num_clips, self.num_frames, self.height, self.width, self.fps = num_clips, num_frames, height, width, fps
        self.seed_offset = seed_offset

    def __len__(self):
        return self.num_clips

    def clip_scenes(self) -> list[str]:
        """The physics scene of every clip, in order (what `data.scene_weights` weighs)."""
        from ..sim import physics_scene_and_view

        return [physics_scene_and_view(index, self.scenes, self.views)[0] for index in range(self.num_clips)]

    def __getitem__(self, index):
        from ..sim import physics_scene_and_view, simulate

        scene, view = physics_scene_and_view(index, self.scenes, self.views)
        record = simulate(scene, seed=self.seed_offset + index, num_frames=self.num_frames, height=self.height,
                          width=self.width, fps=self.fps, view=view)
        return {"video": clip_tensor(record.video), "caption": record.caption}


def build_dataset(data: dict, training: bool = True):
    """The dataset named by a `data:` config section (`type`, `path`, `num_frames`, `height`, `width`, ...)."""
    kind = data["type"]
    size = (data["num_frames"], data["height"], data["width"])
    if kind == "folder":
        if not data.get("path"):
            raise ValueError("data.path is required for data.type=folder")
        return VideoFolderDataset(data["path"], *size, frame_stride=data["frame_stride"], random_start=training,
                                  fps=data.get("fps"))
    if kind == "webdataset":
        if not data.get("path"):
            raise ValueError("data.path (shard pattern or list) is required for data.type=webdataset")
        return WebDatasetShards(data["path"], *size, frame_stride=data["frame_stride"], fps=data.get("fps"))
    if kind == "physics":
        return PhysicsWorldDataset(data["num_clips"], *size, fps=data["fps"], scenes=data.get("scenes"),
                                   seed_offset=data.get("seed_offset", 0), views=data.get("views") or [0])
    if kind == "clips":
        if not data.get("path"):
            raise ValueError("data.path (a clip archive .npz from `cosmos-hf sim export-clips`) is required for "
                             "data.type=clips")
        return ClipArchiveDataset(data["path"], *size, fps=data.get("fps"), num_clips=data.get("num_clips"))
    raise ValueError(f"data.type must be one of {', '.join(DATASET_TYPES)}, got {kind!r}")


class ClipArchiveDataset(Dataset):
    """The clips of a clip archive (`cosmos_hf.data.clip_archive`): clip i is the archive's clip i, its first
    `num_frames` frames (an archive written with the same seed_offset, views, size and fps as a `physics` config holds
    exactly that config's clips). `num_clips` keeps the archive's first clips only (default: all of them)."""

    def __init__(self, path, num_frames, height, width, fps=None, num_clips=None):
        from .clip_archive import ClipArchive

        self.archive = ClipArchive(path)
        self.archive.check_matches(num_frames, height, width, fps)
        self.num_frames, self.height, self.width = num_frames, height, width
        self.num_clips = len(self.archive) if num_clips is None else int(num_clips)
        if not 1 <= self.num_clips <= len(self.archive):
            raise ValueError(f"data.num_clips must be in [1, {len(self.archive)}] (the clips in {path}), "
                             f"got {num_clips}")

    def __len__(self):
        return self.num_clips

    def clip_scenes(self) -> list[str]:
        """The physics scene the archive records for every clip, in order (what `data.scene_weights` weighs)."""
        return self.archive.scenes[: self.num_clips]

    def __getitem__(self, index):
        frames = self.archive.video(index)[: self.num_frames]
        return {"video": clip_tensor(resize_frames(frames, self.height, self.width)),
                "caption": self.archive.caption(index)}


def clip_sampling_weights(dataset, scene_weights: dict | None) -> torch.Tensor | None:
    """`data.scene_weights` ({scene: weight}, scenes left out weigh 1) as one sampling weight per clip of `dataset`
    (a physics or clip-archive dataset: `clip_scenes()`), for `training_utils.EpochShuffleSampler`; None when unset.
    A scene given weight w is drawn w times as often as a scene of weight 1 with as many clips."""
    if not scene_weights:
        return None
    if not hasattr(dataset, "clip_scenes"):
        raise ValueError(f"data.scene_weights needs clips that record their scene (data.type physics or clips), "
                         f"not {type(dataset).__name__}")
    if not isinstance(scene_weights, dict):
        raise ValueError(f"data.scene_weights must map scene names to weights, got {scene_weights!r}")
    scenes = dataset.clip_scenes()
    unknown = sorted(set(scene_weights) - set(scenes))
    if unknown:
        raise ValueError(f"data.scene_weights names scenes with no clip in the data: {unknown}; "
                         f"the data has {sorted(set(scenes))}")
    for scene, weight in scene_weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            raise ValueError(f"data.scene_weights[{scene!r}] must be a finite number >= 0, got {weight!r}")
    weights = torch.tensor([float(scene_weights.get(scene, 1.0)) for scene in scenes], dtype=torch.float64)
    if weights.sum() <= 0:
        raise ValueError("data.scene_weights gives every clip weight 0; at least one scene must weigh more than 0")
    return weights


def collate_videos(items):
    return {"video": torch.stack([i["video"] for i in items]), "caption": [i["caption"] for i in items]}


# ---------------------------------------------------------------------------------------------------------- caches
def load_tensor_cache(path, key: dict, what: str = "data") -> dict | None:
    """The tensors of the cache file at `path`, or None when there is none. A cache whose recorded key (safetensors
    metadata) differs from `key` is refused, naming the differences; a cache written before keys were recorded is
    trusted as it is."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        return None
    with safe_open(str(path), "pt") as handle:
        saved = handle.metadata() or {}
    if saved:
        differs = sorted(name for name in set(key) | set(saved) if key.get(name) != saved.get(name))
        if differs:
            details = ", ".join(f"{name}: cache {saved.get(name)} vs config {key.get(name)}" for name in differs)
            raise ValueError(f"{path} was made for other {what} ({details}); delete it or use another output_dir")
    return load_file(str(path))


def save_tensor_cache(path, tensors: dict, key: dict):
    """Write a cache file (safetensors, `key` as its metadata) atomically."""
    from safetensors.torch import save_file

    from ..utils import atomic_path

    with atomic_path(path) as tmp:
        save_file({name: value.contiguous() for name, value in tensors.items()}, str(tmp), metadata=key)


def tokenizer_fingerprint(tokenizer) -> str:
    """SHA-1 of a tokenizer's config and weights: what its tokens depend on (a few ms for the nano tokenizers)."""
    digest = hashlib.sha1(json.dumps(dict(getattr(tokenizer, "config", {}) or {}), sort_keys=True,
                                     default=str).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def physics_token_cache_key(data: dict, tokenizer=None) -> dict:
    """What a token cache of physics clips depends on: the clips and, given, the tokenizer (`tokenizer_fingerprint`;
    a cache copied from a run with another tokenizer of the same grid was reused without it)."""
    key = {name: json.dumps(data.get(name)) for name in ("num_clips", "seed_offset", "scenes", "num_frames", "height",
                                                          "width", "fps")}
    key["views"] = json.dumps([int(v) for v in (data.get("views") or [0])])
    if tokenizer is not None:
        key["tokenizer"] = tokenizer_fingerprint(tokenizer)
    return key


def _captions_sha1(captions_json: str) -> str:
    return hashlib.sha1(captions_json.encode()).hexdigest()


@torch.no_grad()
def physics_token_cache(data: dict, dv_tokenizer, cache_path, write: bool):
    """Simulate `data.num_clips` physics clips (`PhysicsWorldDataset`) and tokenize them once with `dv_tokenizer`;
    returns (tokens int64 [N, T', H', W'], captions). Kept in `cache_path` (+ `.captions.json`), written when
    `write` (the main process); a cache made for other clips or by another tokenizer is refused, and so is a
    captions file that is not the one written with the tokens (the tokens' metadata holds its SHA-1; the captions are
    written first, the tokens last)."""
    from ..utils import atomic_path

    cache_path = Path(cache_path)
    key = physics_token_cache_key(data, dv_tokenizer)
    captions_path = cache_path.with_suffix(".captions.json")
    dataset = PhysicsWorldDataset(int(data["num_clips"]), data["num_frames"], data["height"], data["width"],
                                  fps=data["fps"], scenes=data.get("scenes"), seed_offset=int(data["seed_offset"]),
                                  views=data.get("views") or [0])
    if captions_path.is_file() and cache_path.is_file():
        captions_json = captions_path.read_text()
        cached = load_tensor_cache(cache_path, {**key, "captions_sha1": _captions_sha1(captions_json)}, what="clips")
        captions = json.loads(captions_json)
        if len(captions) == len(cached["tokens"]) == len(dataset):
            return cached["tokens"], captions
    tokens, captions = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        tokens.append(dv_tokenizer.tokenize(item["video"][None].to(dv_tokenizer.dtype))[0].cpu())
        captions.append(item["caption"])
    tokens = torch.stack(tokens)
    if write:
        captions_json = json.dumps(captions)
        with atomic_path(captions_path) as tmp:
            tmp.write_text(captions_json)
        save_tensor_cache(cache_path, {"tokens": tokens}, {**key, "captions_sha1": _captions_sha1(captions_json)})
    return tokens, captions


def data_files_fingerprint(data: dict) -> str | None:
    """SHA-1 of (relative path, size, mtime) of the files a `folder` (videos/*.mp4, metas/*.txt) or `clips` (the
    archive) dataset reads, or None for other types: the path alone let a cache outlive changed videos or captions,
    or an archive re-exported in place with other clips. Cheap (no file is read); touching a file invalidates."""
    if data.get("type") not in ("folder", "clips") or not data.get("path"):
        return None
    root = Path(data["path"])
    if data["type"] == "folder":
        files = sorted([*(root / "videos").glob("*.mp4"), *(root / "metas").glob("*.txt")])
    else:
        files = [root]
    digest = hashlib.sha1()
    for file in files:
        stat = file.stat()
        name = file.relative_to(root).as_posix() if file != root else file.name
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def latent_cache_key(config: dict) -> dict:
    """What a diffusion latent cache depends on: the clips, the encoders and the text length (not the model being
    trained), so a Text2World run may reuse a Video2World run's cache, and a cache made for other data is refused."""
    model, data = config["model"], config["data"]
    key = {name: data.get(name) for name in ("type", "path", "num_clips", "seed_offset", "scenes", "num_frames",
                                              "height", "width", "fps", "frame_stride")}
    if data.get("type") == "physics":
        # data.views picks each clip's camera (clip 8 of 8 scenes is view 0 for [0], view 1 for [0, 1, 2, 3]); it was
        # missing, so a cache of other views was trained on. Physics only: other data types keep their keys.
        key["views"] = [int(v) for v in (data.get("views") or [0])]
    if data.get("type") in ("folder", "clips"):
        key["files"] = data_files_fingerprint(data)
    key.update(vae=model.get("vae"), text_encoder=model.get("text_encoder"),
               max_sequence_length=model.get("max_sequence_length"))
    if model.get("condition") == "dv_tokens":
        key["dv_tokenizer"] = model.get("dv_tokenizer")
    return {name: json.dumps(value) for name, value in key.items()}


# ---------------------------------------------------------------------------------------------------------- stream
class ClipSource:
    """Endless, key-addressed clips for tokenizer training: `clip(key)` is uint8 [T,H,W,3], the same for the same
    key (a resumed run reads the same clips), randomly cropped to `num_frames` x `height` x `width`.

    `data.source`: `physics` (clip `key` is simulator seed `key`; with `data.views` set, its scene and view follow
    the physics datasets' rule `physics_scene_and_view(key, scenes, views)`; without (the default, as the nano
    tokenizers were trained), the scene follows it (`scenes[key % len(scenes)]`) and the view is drawn from the key),
    `folder` (videos/*.mp4), `clips` (a clip archive; its last `validation_clips` clips are held out) or `webdataset`
    (tar shards holding *.mp4).
    """

    SOURCES = ("physics", "folder", "clips", "webdataset")

    def __init__(self, data_config, num_frames):
        self.config = data_config
        self.num_frames = num_frames
        self.height, self.width = int(data_config["height"]), int(data_config["width"])
        source = data_config["source"]
        if source == "physics":
            from .. import sim

            views = data_config.get("views")
            self.scenes, self.views = physics_scenes_and_views(data_config.get("scenes"),
                                                               range(sim.NUM_VIEWS) if views is None else views)
            self.random_view = views is None
            self._sim = sim
        elif source == "folder":
            self.files = sorted(Path(data_config["path"], "videos").glob("*.mp4"))
            if not self.files:
                raise ValueError(f"no videos/*.mp4 under {data_config['path']}")
        elif source == "clips":
            from .clip_archive import ClipArchive

            self.archive = ClipArchive(data_config["path"])
            self.archive.check_matches(num_frames, self.height, self.width)
            self.num_validation = int(data_config["validation_clips"])
            if len(self.archive) <= self.num_validation:
                raise ValueError(f"{data_config['path']} holds {len(self.archive)} clips: not more than "
                                 f"data.validation_clips={self.num_validation}, so none would be left to train on")
        elif source == "webdataset":
            self.files = sorted(Path(data_config["path"]).glob("*.tar"))
            if not self.files:
                raise ValueError(f"no *.tar shards under {data_config['path']}")
            self._members = []
            for shard in self.files:
                with tarfile.open(shard) as archive:
                    self._members += [(shard, name) for name in archive.getnames() if name.endswith(".mp4")]
        else:
            raise ValueError(f"data.source must be one of {', '.join(self.SOURCES)}, got {source!r}")
        self.source = source

    def clip(self, key: int) -> np.ndarray:
        rng = random.Random(key)
        if self.source == "physics":
            scene, view = self._sim.physics_scene_and_view(key, self.scenes, self.views)
            if self.random_view:
                view = rng.randrange(self._sim.NUM_VIEWS)
            record = self._sim.simulate(scene, seed=key, num_frames=self.num_frames, height=self.height,
                                        width=self.width, view=view)
            return record.video
        if self.source == "clips":
            frames = self.archive.video(key % (len(self.archive) - self.num_validation))
        elif self.source == "folder":
            frames, _ = read_video(self.files[key % len(self.files)])
        else:
            shard, name = self._members[key % len(self._members)]
            with tarfile.open(shard) as archive:
                data = archive.extractfile(name).read()
            import av

            with av.open(io.BytesIO(data)) as container:
                frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        if len(frames) < self.num_frames or frames.shape[1] < self.height or frames.shape[2] < self.width:
            raise ValueError(f"clip {key} is {frames.shape[:3]}, smaller than the crop "
                             f"{self.num_frames}x{self.height}x{self.width}")
        return crop_clip(frames, self.num_frames, self.height, self.width, rng)

    def validation_batch(self, first_key: int, count: int) -> torch.Tensor:
        """Held-out clips: keys `first_key..` for the simulator and files; an archive's last `count` clips."""
        if self.source != "clips":
            return self.batch([first_key + i for i in range(count)])
        clips = [self.archive.video(len(self.archive) - count + i) for i in range(count)]
        return torch.cat([frames_to_tensor(crop_clip(clip, self.num_frames, self.height, self.width, random.Random(i)))
                          for i, clip in enumerate(clips)], dim=0)

    def batch(self, keys, num_frames=None) -> torch.Tensor:
        """float [B,3,T,H,W] in [-1, 1] of the clips of `keys` (their first `num_frames` frames if given)."""
        clips = [self.clip(k) for k in keys]
        if num_frames is not None:
            clips = [clip[:num_frames] for clip in clips]
        return torch.cat([frames_to_tensor(clip) for clip in clips], dim=0)


def clip_key(seed: int, step: int, index: int) -> int:
    """The stream key of sample `index` of step `step` (train_tokenizer.py: data addressed by step, so a resumed run
    trains on the same clips)."""
    return (seed * 1_000_003 + step * 9_973 + index) % (2**31 - 1)
