"""Input checks shared by the tokenizers: every bad input gets an error that names the problem and the valid range."""

import torch

# Pixels are expected in [-1, 1]; a little slack absorbs resampling overshoot from upstream code.
VALUE_TOLERANCE = 1e-3


def valid_frame_counts(temporal_compression: int, up_to: int = 40):
    return [1 + k * temporal_compression for k in range(0, up_to)]


def check_values(x: torch.Tensor, name: str = "video"):
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating-point tensor in [-1, 1], got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low < -1 - VALUE_TOLERANCE or high > 1 + VALUE_TOLERANCE:
        raise ValueError(
            f"{name} values must lie in [-1, 1] (uint8 pixels p map to p / 127.5 - 1), got range [{low:.3f}, {high:.3f}]"
        )


def check_video(video: torch.Tensor, in_channels: int, temporal_compression: int, spatial_compression: int):
    """Validate a `[B, C, T, H, W]` video for a causal tokenizer."""
    if not isinstance(video, torch.Tensor):
        raise ValueError(f"video must be a torch.Tensor, got {type(video).__name__}")
    if video.ndim != 5:
        raise ValueError(f"video must be shaped [B, C, T, H, W] (rank 5), got rank {video.ndim} {tuple(video.shape)}")
    if video.shape[1] != in_channels:
        raise ValueError(f"video must have {in_channels} channels in dimension 1, got {video.shape[1]}")
    frames = video.shape[2]
    if (frames - 1) % temporal_compression != 0:
        valid = valid_frame_counts(temporal_compression, 6)
        raise ValueError(
            f"a causal tokenizer with temporal compression {temporal_compression} needs 1 + k*{temporal_compression} "
            f"frames ({', '.join(map(str, valid))}, ...), got {frames}; pad with "
            f"`cosmos_hf.tokenizers.pad_video_frames(video, {temporal_compression})`"
        )
    height, width = video.shape[-2:]
    if height % spatial_compression or width % spatial_compression:
        raise ValueError(
            f"video height and width must be multiples of the spatial compression {spatial_compression}, "
            f"got {height}x{width}"
        )
    check_values(video)


def check_image(image: torch.Tensor, in_channels: int, spatial_compression: int):
    """Validate a `[B, C, H, W]` image batch."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4:
        raise ValueError(f"image must be shaped [B, C, H, W] (rank 4), got rank {image.ndim} {tuple(image.shape)}")
    if image.shape[1] != in_channels:
        raise ValueError(f"image must have {in_channels} channels in dimension 1, got {image.shape[1]}")
    height, width = image.shape[-2:]
    if height % spatial_compression or width % spatial_compression:
        raise ValueError(
            f"image height and width must be multiples of the spatial compression {spatial_compression}, "
            f"got {height}x{width}"
        )
    check_values(image, "image")


def check_latent_frames(frames: int):
    if frames < 1:
        raise ValueError(f"latent must have at least 1 frame, got {frames}")


def pad_video_frames(video: torch.Tensor, temporal_compression: int):
    """Pad `[B, C, T, H, W]` by repeating the last frame up to the next valid count `1 + k*tc`.

    Returns `(padded, original_num_frames)`; crop the reconstruction back with `[:, :, :original_num_frames]`.
    """
    frames = video.shape[2]
    if frames < 1:
        raise ValueError("video has no frames")
    target = 1 + -(-(frames - 1) // temporal_compression) * temporal_compression
    if target == frames:
        return video, frames
    tail = video[:, :, -1:].expand(-1, -1, target - frames, -1, -1)
    return torch.cat([video, tail], dim=2), frames
