"""Kept for imports written before the move: video IO lives in `cosmos_hf.video_io` (the simulator writes videos
too, and `cosmos_hf.sim` must not import `cosmos_hf.data`, which imports the simulator)."""

from ..video_io import frames_to_tensor, read_video, tensor_to_frames, video_frame_rate, write_video

__all__ = ["frames_to_tensor", "read_video", "tensor_to_frames", "video_frame_rate", "write_video"]
