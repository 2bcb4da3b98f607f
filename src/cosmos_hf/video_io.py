"""Video reading and writing (PyAV, H.264 mp4), with atomic writes and clear errors for bad files.

Frames are numpy uint8 arrays shaped (T, H, W, 3). Model-side tensors are float in [-1, 1] shaped
(B, 3, T, H, W); `frames_to_tensor` / `tensor_to_frames` convert between the two.
"""

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from .utils import atomic_path


def read_video(path, max_frames: int | None = None):
    """Decode a video file into (frames uint8 [T,H,W,3], fps). Raises ValueError naming the file if undecodable."""
    import av

    path = Path(path)
    # checked before decoding: the loop below tests the count after appending, so 0 or -1 returned one frame
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer))
                                   or max_frames < 1):
        raise ValueError(f"max_frames must be None (every frame) or an integer >= 1, got {max_frames!r}")
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else 24.0
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except ValueError:
        raise
    except Exception as err:  # av raises InvalidDataError etc.
        raise ValueError(f"cannot decode video {path} (corrupt or unsupported): {err}") from err
    if not frames:
        raise ValueError(f"video {path} contains no decodable frames")
    return np.stack(frames), fps


def video_frame_rate(path) -> float:
    """A video file's frame rate from its header, without decoding (24.0 when the file gives none, as `read_video`).
    Raises ValueError naming the file if it cannot be opened."""
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream")
            rate = container.streams.video[0].average_rate
    except ValueError:
        raise
    except Exception as err:  # av raises InvalidDataError etc.
        raise ValueError(f"cannot open video {path} (corrupt or unsupported): {err}") from err
    return float(rate) if rate else 24.0


def write_video(path, frames, fps: float = 24.0, crf: int = 18):
    """Encode uint8 frames [T,H,W,3] to an H.264 mp4 at `path`, atomically (temp file + rename), at `fps` (any
    finite rate >= 0.001, kept as a fraction: 12.5 stays 12.5)."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be shaped (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if len(frames) == 0:
        raise ValueError("cannot write a video with zero frames")
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) \
            or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    # The exact rate as a fraction (12.5 -> 25/2, 29.97... -> 30000/1001): an integer rate wrote 12.5 fps as 12 and
    # 0.4 as 0 (read back as 24); integer rates give the same bytes as before.
    rate = Fraction(float(fps)).limit_denominator(1001)
    # Below 0.001 fps a denominator <= 1001 can no longer hold the rate: 0.0007 became 1/1001 (43% fast) and 0.0004
    # became 0 (read back as 24 fps). Refuse what cannot be stored within 0.1% rather than write another rate.
    if abs(rate - Fraction(float(fps))) > Fraction(float(fps)) / 1000:
        raise ValueError(f"fps {fps!r} cannot be stored in an mp4 within 0.1% (nearest rate with a denominator <= "
                         f"1001 is {rate}); use fps >= 0.001")
    height, width = frames.shape[1:3]
    # yuv420p (what every player decodes) needs even sizes: pad by edge replication, never silently crop.
    pad_h, pad_w = height % 2, width % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            # x264's macroblock-tree rate control made the output differ from call to call for the same frames
            # (up to 54/255 per pixel on a 64x64 clip; 4 different files in 16 encodes of one noise video), so a
            # resumed curation run wrote other bytes than an uninterrupted one. Without it: the same every time.
            stream.options = {"crf": str(crf), "x264-params": "mbtree=0"}
            for index, frame in enumerate(frames):
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                video_frame.pts = index  # explicit timestamps in 1/fps units
                for packet in stream.encode(video_frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def frames_to_tensor(frames):
    """uint8 [T,H,W,3] (numpy or tensor) -> float32 tensor [1,3,T,H,W] in [-1, 1]."""
    import torch

    frames = np.asarray(frames)
    # The scaling assumes 0-255: float frames in [0, 1] (a pipeline's output_type="np") silently became a nearly
    # black video in [-1, -0.99], so anything but uint8 (T, H, W, 3) is refused.
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be shaped (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 in [0, 255], got {frames.dtype} (scale [0, 1] floats by 255 and "
                         "round first)")
    frames = torch.as_tensor(frames)
    return (frames.permute(3, 0, 1, 2).unsqueeze(0).float() / 127.5) - 1.0


def tensor_to_frames(video):
    """float tensor [B,3,T,H,W] or [3,T,H,W] in [-1, 1] -> uint8 numpy [T,H,W,3] (first batch element)."""
    if video.ndim == 5:
        video = video[0]
    video = ((video.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().byte()
    return video.permute(1, 2, 3, 0).cpu().numpy()
