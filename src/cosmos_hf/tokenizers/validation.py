"""Input checks shared by the tokenizers: every bad input gets an error that names the problem and the valid range."""

import torch

# Pixels are expected in [-1, 1]; a little slack absorbs resampling overshoot from upstream code.
VALUE_TOLERANCE = 1e-3

# Frames are processed whole (streaming splits time, not space), and activation memory grows with the pixel count:
# even the tiny test tokenizers exhaust a CPU machine's memory on a 2048x2048 frame. Sizes are checked against this
# limit before any work; it is 1080p padded to a multiple of 16. Raise it per model (`model.max_frame_pixels = ...`,
# None = no limit) when the device has the memory.
MAX_FRAME_PIXELS = 1920 * 1088


def check_frame_size(height: int, width: int, max_frame_pixels, name: str = "video"):
    """Refuse frames above `max_frame_pixels` before anything is allocated."""
    if max_frame_pixels is not None and height * width > max_frame_pixels:
        raise ValueError(
            f"{name} frames of {height}x{width} = {height * width:,} pixels exceed the tokenizer's max_frame_pixels "
            f"= {max_frame_pixels:,} (default 1920x1088): frames are processed whole, so memory grows with the pixel "
            "count; downscale, or raise `model.max_frame_pixels` if the device has the memory"
        )


def check_batch_and_grid(shape, name: str, dims: str):
    """Every dimension of a batch (`B` and the spatial/temporal grid) must be non-empty."""
    if any(size < 1 for size in shape):
        raise ValueError(f"{name} must have every dimension >= 1 ({dims}), got shape {tuple(shape)}")


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


def check_video(video: torch.Tensor, in_channels: int, temporal_compression: int, spatial_compression: int,
                max_frame_pixels=MAX_FRAME_PIXELS):
    """Validate a `[B, C, T, H, W]` video for a causal tokenizer."""
    if not isinstance(video, torch.Tensor):
        raise ValueError(f"video must be a torch.Tensor, got {type(video).__name__}")
    if video.ndim != 5:
        raise ValueError(f"video must be shaped [B, C, T, H, W] (rank 5), got rank {video.ndim} {tuple(video.shape)}")
    check_batch_and_grid(video.shape, "video", "B, C, T, H, W")
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
    check_frame_size(height, width, max_frame_pixels)
    check_values(video)


def check_image(image: torch.Tensor, in_channels: int, spatial_compression: int, max_frame_pixels=MAX_FRAME_PIXELS):
    """Validate a `[B, C, H, W]` image batch."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4:
        raise ValueError(f"image must be shaped [B, C, H, W] (rank 4), got rank {image.ndim} {tuple(image.shape)}")
    check_batch_and_grid(image.shape, "image", "B, C, H, W")
    if image.shape[1] != in_channels:
        raise ValueError(f"image must have {in_channels} channels in dimension 1, got {image.shape[1]}")
    height, width = image.shape[-2:]
    if height % spatial_compression or width % spatial_compression:
        raise ValueError(
            f"image height and width must be multiples of the spatial compression {spatial_compression}, "
            f"got {height}x{width}"
        )
    check_frame_size(height, width, max_frame_pixels, "image")
    check_values(image, "image")


def check_latent_frames(frames: int):
    if frames < 1:
        raise ValueError(f"latent must have at least 1 frame, got {frames}")


def check_latent(latent: torch.Tensor, channels: int, spatial_compression: int, max_frame_pixels=MAX_FRAME_PIXELS,
                 name: str = "latent", value_range=None):
    """Validate a decoder input `[B, C, T', H', W']` (or `[B, C, H', W']`): shape, size of the decoded frames, values.

    `value_range`: `(low, high)` per channel (tensors or floats) the values must lie in, e.g. the FSQ code range.
    """
    if not isinstance(latent, torch.Tensor) or not latent.dtype.is_floating_point:
        kind = latent.dtype if isinstance(latent, torch.Tensor) else type(latent).__name__
        raise ValueError(f"{name} must be a floating-point torch.Tensor, got {kind}")
    dims = "B, C, T', H', W'" if latent.ndim == 5 else "B, C, H', W'"
    if latent.ndim not in (4, 5) or latent.shape[1] != channels:
        raise ValueError(f"{name} must be shaped [{dims}] with C = {channels}, got {tuple(latent.shape)}")
    check_batch_and_grid(latent.shape, name, dims)
    height, width = latent.shape[-2] * spatial_compression, latent.shape[-1] * spatial_compression
    check_frame_size(height, width, max_frame_pixels, f"decoded {name}")
    if not torch.isfinite(latent).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if value_range is not None:
        low, high = (torch.as_tensor(bound, dtype=torch.float32, device=latent.device) for bound in value_range)
        channel_last = latent.movedim(1, -1).float()
        if bool((channel_last < low - 1e-6).any()) or bool((channel_last > high + 1e-6).any()):
            raise ValueError(
                f"{name} values must lie in the FSQ code range per channel [{_fmt(low)}] .. [{_fmt(high)}], got "
                f"values in [{float(latent.min()):.3f}, {float(latent.max()):.3f}]; pass codes from `encode` or "
                "`quantizer.indices_to_codes`"
            )


def _fmt(values):
    return ", ".join(f"{float(v):g}" for v in (values if hasattr(values, "__iter__") else [values]))


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


# -- config values (from a constructor call or a config.json): the key, the value and the valid range --------------
def check_config_int(name: str, value, minimum: int = 1):
    """An integer config value >= `minimum` (JSON gives ints; "16" or 16.0 is a broken config, not a size)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"config key '{name}' must be an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"config key '{name}' must be an integer >= {minimum}, got {value}")
    return value


def check_config_ints(name: str, values, minimum: int = 1):
    """A non-empty list of integers >= `minimum` (channel multipliers, block widths, FSQ levels)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise ValueError(f"config key '{name}' must be a non-empty list of integers >= {minimum}, got {values!r}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"config key '{name}' must be a non-empty list of integers >= {minimum}, got {values!r}")
    return values


def check_config_compression(name: str, value, patch_size: int, num_resampling_levels: int):
    """A compression factor the network can realise: patch_size * 2**k for k in 0..num_resampling_levels.

    diffusers' Cosmos encoder silently caps the number of downsampling levels, so an unreachable factor would build a
    model that compresses less than its config says.
    """
    valid = [patch_size * 2**k for k in range(num_resampling_levels + 1)]
    if isinstance(value, bool) or not isinstance(value, int) or value not in valid:
        raise ValueError(
            f"config key '{name}' must be one of {valid} (patch_size {patch_size} times 2**k, k up to the "
            f"{num_resampling_levels} resampling levels that the block widths allow), got {value!r}"
        )
    return value


def check_patch_size(value):
    check_config_int("patch_size", value)
    if value & (value - 1):
        raise ValueError(f"config key 'patch_size' must be a power of two (1, 2, 4, 8), got {value}")
    return value


def check_config_choice(name: str, value, choices):
    if value not in choices:
        raise ValueError(f"config key '{name}' must be one of {list(choices)}, got {value!r}")
    return value


def check_generator(generator):
    """`generator=` must be None, a torch.Generator or a list of them (as in diffusers), never a bare seed."""
    generators = generator if isinstance(generator, list) else [generator]
    for item in generators:
        if item is not None and not isinstance(item, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(42)), a list of them or "
                f"None, got {type(item).__name__}"
            )
    return generator


_CONFIG_INT_KEYS = ("in_channels", "out_channels", "channels", "z_channels", "latent_channels", "num_res_blocks",
                    "num_layers", "resolution")
_CONFIG_COMPRESSION_KEYS = ("spatial_compression", "temporal_compression", "spatial_compression_ratio",
                            "temporal_compression_ratio")


def check_tokenizer_config(config: dict, resampling_offset: int):
    """Validate the values of a tokenizer constructor / config.json that decide its layers (keys present only).

    `resampling_offset`: how many entries of the block-width list (`channels_mult` or `encoder_block_out_channels`)
    do not resample (causal video DV: 1, diffusers' CV: 2, image: 0); the rest bound the compression factors.
    """
    for key in _CONFIG_INT_KEYS:
        if key in config:
            check_config_int(key, config[key])
    for key in ("channels_mult", "encoder_block_out_channels", "decode_block_out_channels"):
        if key in config:
            check_config_ints(key, config[key])
    for key in ("attn_resolutions", "attention_resolutions"):  # may be empty: no attention levels
        if key in config and len(config[key]):
            check_config_ints(key, config[key])
    if "levels" in config:
        check_config_ints("levels", config["levels"], minimum=2)
    widths_key = "channels_mult" if "channels_mult" in config else "encoder_block_out_channels"
    num_resampling_levels = max(0, len(config[widths_key]) - resampling_offset)
    patch_size = check_patch_size(config["patch_size"])
    for key in _CONFIG_COMPRESSION_KEYS:
        if key in config:
            check_config_compression(key, config[key], patch_size, num_resampling_levels)
    for key in ("patch_method", "patch_type"):
        if key in config:
            check_config_choice(key, config[key], ("haar", "rearrange"))
    if "legacy_mode" in config:
        check_config_choice("legacy_mode", config["legacy_mode"], (False, True))
    dropout = config.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"config key 'dropout' must be a number in [0, 1), got {dropout!r}")
