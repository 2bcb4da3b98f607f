"""Video IO and datasets (the physics world's records, videos/ + metas/ folders, webdataset shards, clip archives) and
the training scripts' data layer (`training_data`: datasets, the tokenizer's clip stream, token and latent caches)."""

from ..utils import lazy_exports
from .video_io import frames_to_tensor, read_video, tensor_to_frames, write_video

# Dataset loaders import `datasets` / torch; load them on first use so `cosmos_hf.data` stays cheap.
_LAZY = {
    "load_world_dataset": "world_dataset",
    "WorldVideoDataset": "world_dataset",
    "load_video_caption_folder": "real_world",
    "load_bridge_trajectories": "real_world",
    "load_camera_trajectories": "real_world",
    "parse_realestate10k": "real_world",
    # the training scripts' data layer (training/*.py)
    "build_dataset": "training_data",
    "clip_sampling_weights": "training_data",
    "collate_videos": "training_data",
    "VideoFolderDataset": "training_data",
    "WebDatasetShards": "training_data",
    "PhysicsWorldDataset": "training_data",
    "ClipArchiveDataset": "training_data",
    "ClipSource": "training_data",
    "clip_key": "training_data",
    "physics_token_cache": "training_data",
    "latent_cache_key": "training_data",
    "load_tensor_cache": "training_data",
    "save_tensor_cache": "training_data",
    "ClipArchive": "clip_archive",
    "write_clip_archive": "clip_archive",
    "simulate_clip_archive": "clip_archive",
}

__all__ = ["read_video", "write_video", "frames_to_tensor", "tensor_to_frames", *_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
