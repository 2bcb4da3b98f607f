"""DOVER video quality (Wu et al., "Exploring Video Quality Assessment on User Generated Contents from Aesthetic and
Technical Perspectives", ICCV 2023) as a curation filter, loaded from the released `DOVER.pth`.

DOVER scores a clip from two views, each with its own backbone and regression head:

- technical: `technical_clips` clips of `technical_frames` frames (every `frame_interval`-th frame, one clip per
  equal segment of the video); every frame is a `fragments` x `fragments` grid of `fragment_size`-pixel mini-patches
  ("fragments") cut at native resolution, one random offset per grid cell and clip -> 224 x 224. Backbone: Swin3D-tiny
  with FAST-VQA's gated relative position bias (attention between tokens of different fragments uses its own bias
  table). This view sees blur, noise, compression artefacts.
- aesthetic: `aesthetic_frames` frames (one per equal segment), resized to 224 x 224 (bilinear, no antialiasing,
  aspect ratio not kept). Backbone: ConvNeXt-3D tiny (temporal kernels 1, 3, 1, ... in its blocks). This view sees
  composition and content.

Each head (1x1x1 convs 768 -> 64 -> 1 with GELU) outputs a score per feature position; a view's score is their mean
and the overall score is DOVER's released score-level fusion, a sigmoid in [0, 1] (higher is better).

Module and parameter names are those of the released checkpoint (`technical_backbone.*`, `aesthetic_backbone.*`,
`technical_head.*`, `aesthetic_head.*`), so `DOVER.pth` (a plain state dict) or a safetensors copy of it loads with a
strict key and shape check. All sizes live in `DoverConfig` (the released model is the default) so tests can build a
tiny model. Written from the paper and the released model's structure; no DOVER code is used.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# ImageNet statistics on 0..255 pixel values (DOVER's input normalisation).
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
# Score-level fusion of the released model: standardise each branch with its statistics, weight, sigmoid.
FUSION = {"technical": (0.1107, 0.07355, 0.6104), "aesthetic": (-0.08285, 0.03774, 0.3896)}


@dataclass(frozen=True)
class DoverConfig:
    """Sizes of the DOVER network and its input views (defaults: the released `DOVER.pth` and its test settings)."""

    swin_embed_dim: int = 96
    swin_depths: tuple = (2, 2, 6, 2)
    swin_num_heads: tuple = (3, 6, 12, 24)
    swin_window: tuple = (8, 7, 7)  # (frames, height, width) in tokens
    swin_patch: tuple = (2, 4, 4)
    swin_fragment_bias: tuple = (True, True, True, False)  # gated fragment bias per stage
    convnext_depths: tuple = (3, 3, 9, 3)
    convnext_dims: tuple = (96, 192, 384, 768)
    convnext_temporal_kernels: str = "131"  # temporal kernel of block j is int(pattern[j % len(pattern)])
    head_hidden: int = 64
    fragments: int = 7  # grid cells per side of the technical view
    fragment_size: int = 32  # pixels per fragment side
    technical_clips: int = 3
    technical_frames: int = 32
    aesthetic_frames: int = 32
    aesthetic_size: int = 224
    frame_interval: int = 2

    def __post_init__(self):
        stages = len(self.swin_depths)
        if not (len(self.swin_num_heads) == len(self.swin_fragment_bias) == stages) or stages < 1:
            raise ValueError("swin_depths, swin_num_heads and swin_fragment_bias need one entry per stage")
        if len(self.convnext_depths) != len(self.convnext_dims) or not self.convnext_depths:
            raise ValueError("convnext_depths and convnext_dims need one entry per stage")
        for name in ("fragments", "fragment_size", "technical_clips", "technical_frames", "aesthetic_frames",
                     "aesthetic_size", "frame_interval", "head_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def technical_size(self) -> int:
        return self.fragments * self.fragment_size

    @classmethod
    def from_dict(cls, values: dict) -> "DoverConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DoverConfig fields {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# ------------------------------------------------------------------------------------------------ input views


def sample_frame_indices(num_frames: int, frames_per_segment: int, num_segments: int, interval: int,
                         rng: np.random.Generator) -> np.ndarray:
    """DOVER's temporal sampling: split the video into `num_segments` equal segments and take `frames_per_segment`
    frames `interval` apart from each, at a random start inside the segment (segment start when it is too short).
    Indices past the end wrap around (short clips repeat frames). Returns [num_segments * frames_per_segment]."""
    if num_frames < 1:
        raise ValueError("cannot sample frames from an empty clip")
    segment = num_frames // num_segments
    span = frames_per_segment * interval
    starts = segment * np.arange(num_segments)
    offsets = rng.integers(0, segment - span, size=num_segments) if segment > span else np.zeros(num_segments, int)
    indices = starts[:, None] + offsets[:, None] + interval * np.arange(frames_per_segment)[None, :]
    return indices.reshape(-1) % num_frames


def technical_view(frames: np.ndarray, config: DoverConfig, rng: np.random.Generator) -> np.ndarray:
    """uint8 [T, H, W, 3] (T = clips x frames per clip) -> float32 [T, S, S, 3], S = fragments x fragment_size.

    Cell (i, j) of the grid holds the `fragment_size` square at row `min(H // fragments * i, H - fragment_size)`
    (same for columns) plus a random offset inside the cell, drawn per cell and clip. Frames whose shorter side is
    below S are first upscaled (bilinear) so that it is S.
    """
    count, size, out_size = config.fragments, config.fragment_size, config.technical_size
    frames = np.asarray(frames)
    height, width = frames.shape[1:3]
    ratio = min(height, width) / out_size
    if ratio < 1:
        # DOVER upsamples [0, 1] values and truncates back to uint8. (DOVER then keeps the pre-upsampling size for
        # the grid, so only the top-left of the upscaled frame is sampled; the grid here uses the upscaled size.)
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 255.0  # C T H W
        video = F.interpolate(video, scale_factor=1 / ratio, mode="bilinear")
        frames = (video * 255.0).to(torch.uint8).permute(1, 2, 3, 0).numpy()
        height, width = frames.shape[1:3]
    clips = config.technical_clips
    if len(frames) % clips:
        raise ValueError(f"technical view needs a multiple of {clips} frames, got {len(frames)}")
    per_clip = len(frames) // clips
    rows = np.minimum(height // count * np.arange(count), height - size)
    cols = np.minimum(width // count * np.arange(count), width - size)
    cell_h, cell_w = height // count, width // count
    grid = (count, count, clips)  # one offset per cell and clip, rows drawn before columns
    shift_h = rng.integers(0, cell_h - size, grid) if cell_h > size else np.zeros(grid, int)
    shift_w = rng.integers(0, cell_w - size, grid) if cell_w > size else np.zeros(grid, int)
    out = np.zeros((len(frames), out_size, out_size, 3), np.float32)
    for i in range(count):
        for j in range(count):
            for k in range(clips):
                top, left = rows[i] + shift_h[i, j, k], cols[j] + shift_w[i, j, k]
                out[k * per_clip:(k + 1) * per_clip, i * size:(i + 1) * size, j * size:(j + 1) * size] = \
                    frames[k * per_clip:(k + 1) * per_clip, top:top + size, left:left + size]
    return out


def aesthetic_view(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 [T, H, W, 3] -> uint8 [T, size, size, 3]: bilinear resize (half-pixel centres, no antialiasing),
    rounded, as torchvision's tensor `Resize((size, size))` did when DOVER was trained."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    video = F.interpolate(video, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return video.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def normalize_view(view: np.ndarray, clips: int) -> torch.Tensor:
    """[T, H, W, 3] pixel values -> float [clips, 3, T / clips, H, W], ImageNet-normalised."""
    x = (torch.as_tensor(view, dtype=torch.float32) - torch.tensor(PIXEL_MEAN)) / torch.tensor(PIXEL_STD)
    x = x.permute(3, 0, 1, 2)  # 3 T H W
    return x.reshape(3, clips, -1, *x.shape[2:]).transpose(0, 1).contiguous()


def fuse_scores(technical: float, aesthetic: float) -> float:
    """DOVER's overall quality in [0, 1] from the two branch scores (released fusion weights)."""
    logit = 0.0
    for value, (mean, std, weight) in ((technical, FUSION["technical"]), (aesthetic, FUSION["aesthetic"])):
        logit += (value - mean) / std * weight
    return float(1.0 / (1.0 + np.exp(-logit)))


# ------------------------------------------------------------------------------------------------ Swin3D (GRPB)


def window_partition(x: torch.Tensor, window) -> torch.Tensor:
    """[B, D, H, W, C] -> [B * windows, wd * wh * ww, C] (windows in D, H, W order, batch outermost)."""
    B, D, H, W, C = x.shape
    wd, wh, ww = window
    x = x.view(B, D // wd, wd, H // wh, wh, W // ww, ww, C).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(-1, wd * wh * ww, C)


def window_reverse(windows: torch.Tensor, window, B: int, D: int, H: int, W: int) -> torch.Tensor:
    wd, wh, ww = window
    x = windows.view(B, D // wd, H // wh, W // ww, wd, wh, ww, -1).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(B, D, H, W, -1)


def clip_window(size, window, shift):
    """A window no larger than the feature map (and no shift along a dimension the window covers whole)."""
    window, shift = list(window), list(shift)
    for i, n in enumerate(size):
        if n <= window[i]:
            window[i], shift[i] = n, 0
    return tuple(window), tuple(shift)


def relative_position_index(window) -> torch.Tensor:
    """[N, N] index into the (2wd-1)(2wh-1)(2ww-1)-row bias table for every token pair of a window."""
    wd, wh, ww = window
    coords = torch.stack(torch.meshgrid(torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing="ij"))
    coords = coords.flatten(1)  # 3, N
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # N, N, 3
    relative = relative + torch.tensor([wd - 1, wh - 1, ww - 1])
    return relative[..., 0] * (2 * wh - 1) * (2 * ww - 1) + relative[..., 1] * (2 * ww - 1) + relative[..., 2]


@functools.lru_cache(maxsize=64)
def fragment_gate(D: int, H: int, W: int, window: tuple, shift: tuple, device) -> torch.Tensor:
    """[windows, N, N]: for every token pair of a window, the summed |difference| of their fragment coordinates
    (a wh x ww grid of fragments stretched over the H x W token map, nearest-neighbour), after the cyclic shift.
    0 means "same fragment". FAST-VQA's gated bias mixes the two tables with this value (it is not clipped to 1)."""
    grid = torch.stack(torch.meshgrid(torch.arange(1.0), torch.arange(float(window[1])),
                                      torch.arange(float(window[2])), indexing="ij"))
    coords = F.interpolate(grid[None].to(device), size=(D, H, W)).long().permute(0, 2, 3, 4, 1)
    coords = torch.roll(coords, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
    windows = window_partition(coords, window)  # nW, N, 3
    return (windows[:, None, :, :] - windows[:, :, None, :]).abs().sum(-1)


@functools.lru_cache(maxsize=64)
def shift_mask(D: int, H: int, W: int, window: tuple, shift: tuple, device) -> torch.Tensor:
    """[windows, N, N] additive mask (-100 between tokens that the cyclic shift brought together from different
    regions of the map, else 0), as in Swin."""
    labels = []
    for n, w, s in zip((D, H, W), window, shift):
        region = torch.zeros(n, dtype=torch.long)
        if s > 0:
            region[n - w:n - s], region[n - s:] = 1, 2
        labels.append(region)
    label = labels[0][:, None, None] * 9 + labels[1][None, :, None] * 3 + labels[2][None, None, :]
    windows = window_partition(label[None, ..., None].to(device), window).squeeze(-1)  # nW, N
    different = (windows[:, None, :] - windows[:, :, None]) != 0
    return torch.zeros(different.shape, device=device).masked_fill(different, -100.0)


class WindowAttention3D(nn.Module):
    """Multi-head self-attention inside a window with a relative position bias; with `fragment_bias`, token pairs
    mix `relative_position_bias_table` and `fragment_position_bias_table` by the fragment gate g:
    bias = g * relative + (1 - g) * fragment."""

    def __init__(self, dim: int, window, num_heads: int, fragment_bias: bool):
        super().__init__()
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        rows = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(rows, num_heads))
        if fragment_bias:
            self.fragment_position_bias_table = nn.Parameter(torch.zeros(rows, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def _bias(self, table, index, N):
        return table[index].reshape(N, N, -1).permute(2, 0, 1)  # heads, N, N

    def forward(self, x, gate, mask=None):
        windows_total, N, C = x.shape
        heads = self.num_heads
        q, k, v = self.qkv(x).reshape(windows_total, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        # A window clipped to a small feature map uses the top-left block of the full window's index (as DOVER).
        index = self.relative_position_index[:N, :N].reshape(-1)
        bias = self._bias(self.relative_position_bias_table, index, N).unsqueeze(0)
        if hasattr(self, "fragment_position_bias_table"):
            g = gate.unsqueeze(1).to(attn.dtype)  # nW, 1, N, N
            bias = bias * g + self._bias(self.fragment_position_bias_table, index, N).unsqueeze(0) * (1 - g)
        num_windows = gate.shape[0]
        attn = attn.view(-1, num_windows, heads, N, N) + bias.unsqueeze(0)
        if mask is not None:
            attn = attn + mask[None, :, None]
        attn = attn.view(-1, heads, N, N).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(windows_total, N, C))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock3D(nn.Module):
    """Pre-norm (shifted-)window attention + MLP, both residual. Input/output [B, D, H, W, C]."""

    def __init__(self, dim, num_heads, window, shift, fragment_bias, mlp_ratio=4.0):
        super().__init__()
        self.window, self.shift = tuple(window), tuple(shift)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention3D(dim, window, num_heads, fragment_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        B, D, H, W, C = x.shape
        window, shift = clip_window((D, H, W), self.window, self.shift)
        shortcut = x
        x = self.norm1(x)
        pad = [(-n) % w for n, w in zip((D, H, W), window)]
        x = F.pad(x, (0, 0, 0, pad[2], 0, pad[1], 0, pad[0]))  # zero tokens after the norm, as Swin
        Dp, Hp, Wp = x.shape[1:4]
        shifted = any(s > 0 for s in shift)
        if shifted:
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
        gate = fragment_gate(Dp, Hp, Wp, window, shift, x.device)
        mask = shift_mask(Dp, Hp, Wp, window, shift, x.device) if shifted else None
        x = window_reverse(self.attn(window_partition(x, window), gate, mask), window, B, Dp, Hp, Wp)
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        x = shortcut + x[:, :D, :H, :W]
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 spatial downsampling: concatenate neighbouring tokens (4C), LayerNorm, project to 2C."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        H, W = x.shape[2:4]
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        x = torch.cat([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    def __init__(self, dim, depth, num_heads, window, fragment_bias, downsample: bool):
        super().__init__()
        shift = tuple(w // 2 for w in window)
        self.blocks = nn.ModuleList([SwinBlock3D(dim, num_heads, window, (0, 0, 0) if i % 2 == 0 else shift,
                                                 fragment_bias) for i in range(depth)])
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x):  # [B, C, D, H, W] -> [B, C', D, H', W']
        x = x.permute(0, 2, 3, 4, 1)
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x.permute(0, 4, 1, 2, 3)


class PatchEmbed3D(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.patch = tuple(patch)
        self.proj = nn.Conv3d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        D, H, W = x.shape[2:]
        pd, ph, pw = ((-n) % p for n, p in zip((D, H, W), self.patch))
        x = self.proj(F.pad(x, (0, pw, 0, ph, 0, pd)))
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


class SwinTransformer3D(nn.Module):
    """DOVER's technical backbone: video Swin with gated fragment bias. [B, 3, T, H, W] -> [B, C, T', H', W']."""

    def __init__(self, config: DoverConfig):
        super().__init__()
        dim = config.swin_embed_dim
        self.patch_embed = PatchEmbed3D(config.swin_patch, dim)
        stages = len(config.swin_depths)
        self.layers = nn.ModuleList([
            SwinStage(dim * 2 ** i, config.swin_depths[i], config.swin_num_heads[i], config.swin_window,
                      bool(config.swin_fragment_bias[i]), downsample=i < stages - 1)
            for i in range(stages)
        ])
        self.num_features = dim * 2 ** (stages - 1)
        self.norm = nn.LayerNorm(self.num_features)

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


# ------------------------------------------------------------------------------------------------ ConvNeXt-3D


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of [B, C, T, H, W] (eps 1e-6)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels)), eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None, None] * x + self.bias[:, None, None, None]


class ConvNeXtBlock3D(nn.Module):
    """Depthwise (k, 7, 7) conv -> LayerNorm -> MLP (4x) -> layer scale `gamma`, residual."""

    def __init__(self, dim: int, temporal_kernel: int):
        super().__init__()
        self.dwconv = nn.Conv3d(dim, dim, (temporal_kernel, 7, 7), padding=(temporal_kernel // 2, 3, 3), groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 4, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 4, 1, 2, 3)


class ConvNeXt3D(nn.Module):
    """DOVER's aesthetic backbone: ConvNeXt inflated to 3D (stem (2, 4, 4), then (1, 2, 2) downsamples).
    [B, 3, T, H, W] -> [B, C, T / 2, H / 32, W / 32]."""

    def __init__(self, config: DoverConfig):
        super().__init__()
        dims, pattern = config.convnext_dims, config.convnext_temporal_kernels
        self.downsample_layers = nn.ModuleList([
            nn.Sequential(nn.Conv3d(3, dims[0], (2, 4, 4), stride=(2, 4, 4)), ChannelsFirstLayerNorm(dims[0]))
        ] + [
            nn.Sequential(ChannelsFirstLayerNorm(dims[i]), nn.Conv3d(dims[i], dims[i + 1], (1, 2, 2), stride=(1, 2, 2)))
            for i in range(len(dims) - 1)
        ])
        self.stages = nn.ModuleList([
            nn.Sequential(*[ConvNeXtBlock3D(dims[i], int(pattern[j % len(pattern)])) for j in range(depth)])
            for i, depth in enumerate(config.convnext_depths)
        ])
        self.num_features = dims[-1]
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)

    def forward(self, x):
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        return self.norm(x.permute(0, 2, 3, 4, 1)).permute(0, 4, 1, 2, 3)


# ------------------------------------------------------------------------------------------------ DOVER


class VQAHead(nn.Module):
    """Per-position quality: 1x1x1 conv -> GELU -> 1x1x1 conv to one channel."""

    def __init__(self, in_channels: int, hidden: int):
        super().__init__()
        self.fc_hid, self.gelu, self.fc_last = nn.Conv3d(in_channels, hidden, 1), nn.GELU(), nn.Conv3d(hidden, 1, 1)

    def forward(self, x):
        return self.fc_last(self.gelu(self.fc_hid(x)))


class DoverModel(nn.Module):
    """Both branches; `forward` returns the two per-position score maps [B, 1, T', H', W']."""

    def __init__(self, config: DoverConfig | None = None):
        super().__init__()
        self.config = config = config or DoverConfig()
        self.technical_backbone = SwinTransformer3D(config)
        self.aesthetic_backbone = ConvNeXt3D(config)
        self.technical_head = VQAHead(self.technical_backbone.num_features, config.head_hidden)
        self.aesthetic_head = VQAHead(self.aesthetic_backbone.num_features, config.head_hidden)

    def forward(self, technical: torch.Tensor, aesthetic: torch.Tensor):
        return (self.technical_head(self.technical_backbone(technical)),
                self.aesthetic_head(self.aesthetic_backbone(aesthetic)))


def load_dover_state(model: nn.Module, state: dict, source) -> None:
    """Strict load that names what does not match (missing / unexpected keys, shape mismatches)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in sorted(set(state) & set(expected)) if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        def show(items):
            return f"{len(items)} {items[:8]}{' ...' if len(items) > 8 else ''}"

        raise ValueError(f"{source} does not match the DOVER model (check DoverConfig): missing keys {show(missing)}; "
                         f"unexpected keys {show(unexpected)}; shape mismatches {show(shapes)}")
    model.load_state_dict(state, strict=True)


def save_dover_weights(model: DoverModel, path) -> Path:
    """Write a DOVER model as safetensors with its `DoverConfig` in the file's metadata (read back by
    `DoverQuality`, so non-default sizes need no extra flag). E.g. to convert the released checkpoint:

        model = DoverModel()
        load_dover_state(model, load_state_dict_file("DOVER.pth"), "DOVER.pth")
        save_dover_weights(model, "dover.safetensors")
    """
    from safetensors.torch import save_file

    from ..utils import atomic_path

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"dover_config": json.dumps(asdict(model.config))})
    return path


def read_dover_config(path) -> DoverConfig | None:
    """The `DoverConfig` stored in a safetensors file's metadata by `save_dover_weights`, else None."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = (handle.metadata() or {}).get("dover_config")
    except Exception:  # unreadable files get their error from the loader, which names the problem
        return None
    return DoverConfig.from_dict(json.loads(stored)) if stored else None


class DoverQuality:
    """Curation filter: DOVER's fused quality in [0, 1]; rejects clips below `min_score` ("low_dover").

    Args:
        weights_path: `DOVER.pth` (a plain state dict, read with `weights_only=True`) or a safetensors copy.
        min_score: threshold on the fused score (0.5 is roughly an average user-generated video; tune per data).
        config: network / view sizes (default: the one stored in a safetensors file by `save_dover_weights`,
            else the released model).
        seed: seeds the random temporal and fragment offsets, so a clip always gets the same score.
    Scores written to the clip metadata: `dover` (fused), `dover_technical`, `dover_aesthetic` (raw branch means).
    """

    name = "dover"

    def __init__(self, weights_path, min_score: float = 0.3, config: DoverConfig | None = None,
                 device: str = "cpu", seed: int = 0, allow_pickle: bool = False):
        from ..utils import load_state_dict_file

        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1] (the fused DOVER score is a sigmoid), got {min_score}")
        self.config = config or read_dover_config(weights_path) or DoverConfig()
        self.model = DoverModel(self.config)
        load_dover_state(self.model, load_state_dict_file(weights_path, allow_pickle=allow_pickle), weights_path)
        self.model.eval().to(device)
        self.min_score, self.device, self.seed = min_score, device, seed

    def views(self, frames: np.ndarray):
        """The two normalised input tensors for uint8 frames [T, H, W, 3]."""
        c = self.config
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"DOVER needs uint8 frames shaped (T, H, W, 3), got {frames.dtype} {frames.shape}")
        rng = np.random.default_rng(self.seed)
        technical_idx = sample_frame_indices(len(frames), c.technical_frames, c.technical_clips, c.frame_interval, rng)
        aesthetic_idx = sample_frame_indices(len(frames), 1, c.aesthetic_frames, c.frame_interval, rng)
        technical = normalize_view(technical_view(frames[technical_idx], c, rng), c.technical_clips)
        aesthetic = normalize_view(aesthetic_view(frames[aesthetic_idx], c.aesthetic_size), 1)
        return technical.to(self.device), aesthetic.to(self.device)

    def score(self, frames) -> dict:
        with torch.inference_mode():
            technical_map, aesthetic_map = self.model(*self.views(frames))
        technical, aesthetic = float(technical_map.mean()), float(aesthetic_map.mean())
        return {"dover": fuse_scores(technical, aesthetic), "dover_technical": technical,
                "dover_aesthetic": aesthetic}

    def __call__(self, frames, fps=None):
        from .filters import FilterResult

        scores = self.score(frames)
        if scores["dover"] < self.min_score:
            return FilterResult(False, scores, "low_dover")
        return FilterResult(True, scores)
