"""Video IO and datasets (the physics world's records, videos/ + metas/ folders, webdataset shards)."""

from .video_io import frames_to_tensor, read_video, tensor_to_frames, write_video

__all__ = ["read_video", "write_video", "frames_to_tensor", "tensor_to_frames"]
