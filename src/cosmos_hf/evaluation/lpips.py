"""LPIPS (Zhang et al. 2018, VGG variant, v0.1) as TokenBench uses it: per-frame distance, averaged over frames.

The network is written here (VGG16's convolutional layers, indexed as torchvision's, + the five learned 1x1 "lin"
layers); its weights come only from local files the user gives, never downloaded:
- `vgg_path`: torchvision's VGG16 ImageNet state dict (e.g. vgg16-397923af.pth; keys `features.N.weight|bias`),
- `lin_path`: the `lpips` package's weights/v0.1/vgg.pth (keys `linK.model.1.weight`, K = 0..4).
Both are read as plain state dicts (`weights_only=True`, or safetensors).

Per frame: inputs in [-1, 1] -> fixed shift/scale -> VGG16 activations after relu1_2, relu2_2, relu3_3, relu4_3,
relu5_3 -> unit-normalise each feature vector over channels -> squared difference -> weighted channel sum (lin)
-> mean over pixels -> sum over the five layers.
"""

import numpy as np
import torch
import torch.nn as nn

# Channel-wise shift and scale LPIPS applies to [-1, 1] inputs before VGG (ImageNet statistics in that range).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_SLICE_ENDS = (
    4,
    9,
    16,
    23,
    30,
)  # torchvision vgg16.features indices after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_CHANNELS = (64, 128, 256, 512, 512)


# VGG16 "D" configuration up to relu5_3: conv widths, "M" = 2x2 max pool. Module indices match torchvision's
# `vgg16().features`, so its state dict keys load unchanged.
_VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


def _vgg16_features() -> nn.Sequential:
    layers, channels = [], 3
    for item in _VGG16_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = item
    return nn.Sequential(*layers)


class _LinearHead(nn.Module):
    """`model.0` is dropout (inactive at eval), `model.1` the 1x1 conv: the lpips package's key layout."""

    def __init__(self, channels):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x):
        return self.model(x)


class LPIPS(nn.Module):
    """Learned perceptual distance between images in [-1, 1] shaped (N, 3, H, W); returns (N,)."""

    def __init__(self):
        super().__init__()
        self.features = _vgg16_features()
        assert len(self.features) == _SLICE_ENDS[-1]
        for parameter in self.features.parameters():
            parameter.requires_grad_(False)
        for k, channels in enumerate(_CHANNELS):
            self.add_module(f"lin{k}", _LinearHead(channels))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_files(cls, vgg_path, lin_path) -> "LPIPS":
        from ..utils import load_state_dict_file

        model = cls()
        vgg_state = {
            k[len("features.") :]: v for k, v in load_state_dict_file(vgg_path).items() if k.startswith("features.")
        }
        missing, _ = model.features.load_state_dict(vgg_state, strict=False)
        if missing:
            raise ValueError(f"{vgg_path} is not a torchvision VGG16 state dict (missing {missing[:4]})")
        lin_state = {k: v for k, v in load_state_dict_file(lin_path).items() if k.startswith("lin")}
        expected = {f"lin{k}.model.1.weight" for k in range(5)}
        if set(lin_state) != expected:
            raise ValueError(
                f"{lin_path} is not an LPIPS v0.1 lin-layer file: "
                f"expected keys {sorted(expected)}, got {sorted(lin_state)[:6]}"
            )
        model.load_state_dict(lin_state, strict=False)
        return model.eval()

    def _activations(self, x):
        x = (x - self.shift) / self.scale
        outputs, start = [], 0
        for end in _SLICE_ENDS:
            x = self.features[start:end](x)
            outputs.append(x)
            start = end
        return outputs

    @torch.no_grad()
    def forward(self, image_a, image_b):
        distance = 0.0
        for k, (fa, fb) in enumerate(zip(self._activations(image_a), self._activations(image_b))):
            fa = fa / (fa.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            distance = distance + getattr(self, f"lin{k}")((fa - fb) ** 2).mean(dim=(2, 3))
        return distance.reshape(-1)


def lpips_video(model: LPIPS, video_a, video_b, batch_size: int = 8) -> float:
    """Mean over frames of LPIPS between two uint8 (T, H, W, 3) videos."""
    video_a, video_b = np.asarray(video_a), np.asarray(video_b)
    if video_a.shape != video_b.shape or video_a.ndim != 4:
        raise ValueError(f"videos must share a (T, H, W, 3) shape, got {video_a.shape} and {video_b.shape}")
    device = next(model.parameters()).device
    values = []
    for start in range(0, len(video_a), batch_size):
        a = torch.from_numpy(video_a[start : start + batch_size]).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1
        b = torch.from_numpy(video_b[start : start + batch_size]).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1
        values.append(model(a, b).cpu())
    return float(torch.cat(values).mean())
