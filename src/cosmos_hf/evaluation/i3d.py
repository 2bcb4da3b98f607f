"""rFVD: Fréchet distance between I3D features of reference and reconstructed videos.

Two feature extractors:
- `load_i3d_torchscript(path)`: the standard `i3d_torchscript.pt` used by StyleGAN-V and TokenBench (the
  Kinetics-400 I3D from TF-Hub exported to TorchScript). TorchScript is the official distribution format of that
  network, so it is loaded with `torch.jit.load` — only from a local path the user gives (nothing is downloaded);
  it is called with `rescale=False, resize=False, return_features=True` and returns 400-d features (the logits
  before softmax). rFVD numbers comparable to TokenBench's need this file.
- `InceptionI3d`: the I3D architecture (Carreira & Zisserman 2017) written out in code with the module and
  parameter names of the widely used pytorch-i3d port, so its plain state dicts (e.g. rgb_imagenet.pt) load with
  `load_state_dict` (read with `weights_only=True`, or from safetensors). Features are the 400 class logits
  averaged over time. Its weights are not the TorchScript's, so its rFVD is a different (internally consistent)
  scale.

Preprocessing (TokenBench): frames in [0, 1] -> shorter side resized to 224 (bilinear) -> centre crop 224x224 ->
[-1, 1]. rFVD = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2}) over per-video feature vectors; it needs at
least 2 videos on each side.
"""

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

I3D_RESOLUTION = 224


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    # TF "SAME": total padding so that output = ceil(size / stride); the extra pixel goes at the end.
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


class MaxPool3dSamePadding(nn.MaxPool3d):
    """3D max pooling with TF-style SAME padding (zeros, as the pytorch-i3d port pads)."""

    def forward(self, x):
        pads = []
        for dim, kernel, stride in zip(reversed(x.shape[2:]), reversed(self.kernel_size), reversed(self.stride)):
            pads += list(_same_padding(dim, kernel, stride))
        return super().forward(F.pad(x, pads))


class Unit3D(nn.Module):
    """Conv3d (SAME padding, no bias by default) -> BatchNorm3d (eps 1e-3) -> ReLU."""

    def __init__(
        self,
        in_channels,
        output_channels,
        kernel_shape=(1, 1, 1),
        stride=(1, 1, 1),
        activation=True,
        use_batch_norm=True,
        use_bias=False,
    ):
        super().__init__()
        self.kernel_shape = tuple(kernel_shape)
        self.stride = tuple(stride)
        self.activation = activation
        self.conv3d = nn.Conv3d(
            in_channels, output_channels, self.kernel_shape, stride=self.stride, padding=0, bias=use_bias
        )
        self.bn = nn.BatchNorm3d(output_channels, eps=0.001, momentum=0.01) if use_batch_norm else None

    def forward(self, x):
        pads = []
        for dim, kernel, stride in zip(reversed(x.shape[2:]), reversed(self.kernel_shape), reversed(self.stride)):
            pads += list(_same_padding(dim, kernel, stride))
        x = self.conv3d(F.pad(x, pads))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    """Four branches: 1x1; 1x1->3x3x3; 1x1->3x3x3; maxpool 3x3x3 -> 1x1; concatenated on channels."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.b0 = Unit3D(in_channels, out_channels[0])
        self.b1a = Unit3D(in_channels, out_channels[1])
        self.b1b = Unit3D(out_channels[1], out_channels[2], kernel_shape=(3, 3, 3))
        self.b2a = Unit3D(in_channels, out_channels[3])
        self.b2b = Unit3D(out_channels[3], out_channels[4], kernel_shape=(3, 3, 3))
        self.b3a = MaxPool3dSamePadding(kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=0)
        self.b3b = Unit3D(in_channels, out_channels[5])

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, kind, arguments): the Inception-v1 stem and mixed blocks inflated to 3D, in forward order.
_I3D_LAYERS = [
    ("Conv3d_1a_7x7", "unit", dict(output_channels=64, kernel_shape=(7, 7, 7), stride=(2, 2, 2))),
    ("MaxPool3d_2a_3x3", "pool", dict(kernel_size=(1, 3, 3), stride=(1, 2, 2))),
    ("Conv3d_2b_1x1", "unit", dict(output_channels=64)),
    ("Conv3d_2c_3x3", "unit", dict(output_channels=192, kernel_shape=(3, 3, 3))),
    ("MaxPool3d_3a_3x3", "pool", dict(kernel_size=(1, 3, 3), stride=(1, 2, 2))),
    ("Mixed_3b", "mixed", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", "mixed", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", "pool", dict(kernel_size=(3, 3, 3), stride=(2, 2, 2))),
    ("Mixed_4b", "mixed", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", "mixed", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", "mixed", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", "mixed", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", "mixed", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", "pool", dict(kernel_size=(2, 2, 2), stride=(2, 2, 2))),
    ("Mixed_5b", "mixed", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", "mixed", (384, 192, 384, 48, 128, 128)),
]


class InceptionI3d(nn.Module):
    """Inflated Inception-v1 video classifier (I3D), RGB stream, with pytorch-i3d parameter names.

    `forward(x)` takes (B, 3, T, H, W) in [-1, 1] and returns logits (B, num_classes, T'); `features(x)` returns
    the time-averaged logits (B, num_classes) used for FVD. The final average pool is 2x7x7 as in the original at
    224x224 input; smaller inputs (tests) pool over whatever extent is left.
    """

    def __init__(self, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.num_classes = num_classes
        channels = in_channels
        self.layer_names = []
        for name, kind, args in _I3D_LAYERS:
            if kind == "unit":
                module = Unit3D(channels, **args)
                channels = args["output_channels"]
            elif kind == "pool":
                module = MaxPool3dSamePadding(padding=0, **args)
            else:
                module = InceptionModule(channels, args)
                channels = args[0] + args[2] + args[4] + args[5]
            self.add_module(name, module)
            self.layer_names.append(name)
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(channels, num_classes, activation=False, use_batch_norm=False, use_bias=True)

    def forward(self, x):
        for name in self.layer_names:
            x = getattr(self, name)(x)
        kernel = (min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4]))
        x = F.avg_pool3d(x, kernel, stride=1)
        x = self.logits(self.dropout(x))
        return x.mean(dim=(3, 4))  # (B, classes, T'); spatial extent is 1 at 224 input

    @torch.no_grad()
    def features(self, x):
        return self.forward(x).mean(dim=2)


def preprocess_for_i3d(video, resolution: int = I3D_RESOLUTION) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (3, T, resolution, resolution) in [-1, 1] (TokenBench's resize + centre crop)."""
    video = torch.as_tensor(np.asarray(video)).permute(3, 0, 1, 2).float() / 255.0  # (3, T, H, W) in [0, 1]
    height, width = video.shape[2:]
    scale = resolution / min(height, width)
    size = (resolution, math.ceil(width * scale)) if height < width else (math.ceil(height * scale), resolution)
    video = F.interpolate(video, size=size, mode="bilinear", align_corners=False)
    top = (video.shape[2] - resolution) // 2
    left = (video.shape[3] - resolution) // 2
    video = video[:, :, top : top + resolution, left : left + resolution]
    return (video - 0.5) * 2.0


class I3DFeatureExtractor:
    """Callable: uint8 video (T, H, W, 3) -> float64 feature vector, with either backend."""

    def __init__(self, model, kind: str, device: str = "cpu", resolution: int = I3D_RESOLUTION):
        if kind not in ("torchscript", "module"):
            raise ValueError(f"kind must be 'torchscript' or 'module', got {kind!r}")
        self.model = model.eval().to(device)
        self.kind = kind
        self.device = device
        self.resolution = resolution

    @torch.no_grad()
    def __call__(self, video) -> np.ndarray:
        x = preprocess_for_i3d(video, self.resolution).unsqueeze(0).to(self.device)
        if self.kind == "torchscript":
            features = self.model(x, rescale=False, resize=False, return_features=True)
        else:
            features = self.model.features(x)
        return features.reshape(-1).double().cpu().numpy()


def load_i3d_torchscript(path, device: str = "cpu") -> I3DFeatureExtractor:
    """The StyleGAN-V / TokenBench `i3d_torchscript.pt` from a local file (TorchScript is its official format)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"I3D TorchScript file not found: {path}. rFVD needs the standard i3d_torchscript.pt (as used by "
            "StyleGAN-V and TokenBench) downloaded by you to a local path; nothing is fetched automatically."
        )
    try:
        model = torch.jit.load(str(path), map_location=device)
    except Exception as err:
        raise ValueError(f"{path} is not a loadable TorchScript file: {err}") from err
    return I3DFeatureExtractor(model, "torchscript", device)


def load_i3d_state_dict(path, device: str = "cpu", num_classes: int = 400) -> I3DFeatureExtractor:
    """`InceptionI3d` with weights from a plain state dict (.safetensors, or .pt/.pth read with weights_only=True)."""
    from ..utils import load_state_dict_file

    model = InceptionI3d(num_classes=num_classes)
    state = load_state_dict_file(path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # absent from older checkpoints
    if missing or unexpected:
        raise ValueError(
            f"{path} is not an InceptionI3d state dict: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return I3DFeatureExtractor(model, "module", device)


def load_i3d(path, device: str = "cpu") -> I3DFeatureExtractor:
    """TorchScript archives (zip files holding code/) load as TorchScript; anything else as a state dict."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"I3D weights not found: {path}. Give the local path of i3d_torchscript.pt (StyleGAN-V/TokenBench) or "
            "of an InceptionI3d state dict; nothing is downloaded."
        )
    if path.suffix != ".safetensors" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.split("/")[1:2] == ["code"] for name in archive.namelist()):
                return load_i3d_torchscript(path, device)
    return load_i3d_state_dict(path, device)


def frechet_distance(mu_a, sigma_a, mu_b, sigma_b) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}) for Gaussians N(mu_a, S_a), N(mu_b, S_b).

    Tr((S_a S_b)^{1/2}) is computed as the sum of square roots of the eigenvalues of the symmetric PSD matrix
    S_a^{1/2} S_b S_a^{1/2} (same eigenvalues as S_a S_b), which is stable where a general sqrtm is not.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64).reshape(-1), np.asarray(mu_b, np.float64).reshape(-1)
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape or sigma_a.shape != (len(mu_a), len(mu_a)):
        raise ValueError(f"mismatched statistics: mu {mu_a.shape}/{mu_b.shape}, sigma {sigma_a.shape}/{sigma_b.shape}")
    eigenvalues, eigenvectors = np.linalg.eigh((sigma_a + sigma_a.T) / 2)
    sqrt_a = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
    middle = sqrt_a @ sigma_b @ sqrt_a
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * trace_sqrt)


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (N-1) of (N, D) features; N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"Fréchet distance needs at least 2 feature vectors (N, D), got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance_from_features(features_a, features_b) -> float:
    mu_a, sigma_a = feature_statistics(features_a)
    mu_b, sigma_b = feature_statistics(features_b)
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
