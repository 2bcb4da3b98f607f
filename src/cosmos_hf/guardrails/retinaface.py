"""RetinaFace (ResNet-50) face detector, the reference's face-blur detector, for use when its weights are given.

Architecture of the public Pytorch_Retinaface "Resnet50_Final.pth" checkpoint (which the reference loads):
a torchvision ResNet-50 body (layers 2-4), a 3-level FPN, one SSH context module per level, and 1x1-conv
heads for face/background scores, box offsets and 5 landmarks, with 2 anchors per location
(sizes 16/32, 64/128, 256/512 at strides 8/16/32). Parameter names match that checkpoint
(`body.*`, `fpn.output1.*`, `ssh1.conv3X3.*`, `ClassHead.0.conv1x1.*`, ...; a "module." prefix is stripped).

    detector = RetinaFaceDetector.from_checkpoint("Resnet50_Final.pth", device="cuda")
    pixelator = FacePixelator(detector=detector)

No weights ship here and none can be downloaded: the default detector stays OpenCV's Haar cascades.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils import load_state_dict_file

MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
BGR_MEAN = (104.0, 117.0, 123.0)


def _conv_bn(cin, cout, kernel=3, leaky=0.0, relu=True):
    layers = [nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.LeakyReLU(negative_slope=leaky, inplace=True))
    return nn.Sequential(*layers)


class FeaturePyramid(nn.Module):
    def __init__(self, in_channels=(512, 1024, 2048), out_channels=256):
        super().__init__()
        leaky = 0.0 if out_channels > 64 else 0.1
        self.output1 = _conv_bn(in_channels[0], out_channels, kernel=1, leaky=leaky)
        self.output2 = _conv_bn(in_channels[1], out_channels, kernel=1, leaky=leaky)
        self.output3 = _conv_bn(in_channels[2], out_channels, kernel=1, leaky=leaky)
        self.merge1 = _conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = _conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, c3, c4, c5):
        p5 = self.output3(c5)
        p4 = self.merge2(self.output2(c4) + F.interpolate(p5, size=c4.shape[-2:], mode="nearest"))
        p3 = self.merge1(self.output1(c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest"))
        return p3, p4, p5


class ContextModule(nn.Module):
    """SSH context module: parallel 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) receptive fields, concatenated."""

    def __init__(self, channels=256):
        super().__init__()
        leaky = 0.0 if channels > 64 else 0.1
        self.conv3X3 = _conv_bn(channels, channels // 2, relu=False)
        self.conv5X5_1 = _conv_bn(channels, channels // 4, leaky=leaky)
        self.conv5X5_2 = _conv_bn(channels // 4, channels // 4, relu=False)
        self.conv7X7_2 = _conv_bn(channels // 4, channels // 4, leaky=leaky)
        self.conv7x7_3 = _conv_bn(channels // 4, channels // 4, relu=False)

    def forward(self, x):
        branch5 = self.conv5X5_1(x)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(branch5), self.conv7x7_3(self.conv7X7_2(branch5))], 1))


class _Head(nn.Module):
    def __init__(self, channels, num_anchors, values_per_anchor):
        super().__init__()
        self.values_per_anchor = values_per_anchor
        self.conv1x1 = nn.Conv2d(channels, num_anchors * values_per_anchor, kernel_size=1)

    def forward(self, x):  # [B, A*V, H, W] -> [B, H*W*A, V] (anchor order: row, column, anchor)
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.values_per_anchor)


class RetinaFace(nn.Module):
    def __init__(self, channels: int = 256, num_anchors: int = 2):
        super().__init__()
        from torchvision.models import resnet50
        from torchvision.models._utils import IntermediateLayerGetter

        self.body = IntermediateLayerGetter(resnet50(weights=None), {"layer2": 1, "layer3": 2, "layer4": 3})
        self.fpn = FeaturePyramid((512, 1024, 2048), channels)
        self.ssh1, self.ssh2, self.ssh3 = ContextModule(channels), ContextModule(channels), ContextModule(channels)
        self.ClassHead = nn.ModuleList(_Head(channels, num_anchors, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(channels, num_anchors, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(channels, num_anchors, 10) for _ in range(3))

    def forward(self, bgr_minus_mean: torch.Tensor):
        """[B, 3, H, W] BGR minus mean -> (box offsets [B, N, 4], face probability [B, N], landmarks [B, N, 10])."""
        c3, c4, c5 = self.body(bgr_minus_mean).values()
        features = [ssh(p) for ssh, p in zip((self.ssh1, self.ssh2, self.ssh3), self.fpn(c3, c4, c5))]
        boxes = torch.cat([head(f) for head, f in zip(self.BboxHead, features)], 1)
        scores = torch.cat([head(f) for head, f in zip(self.ClassHead, features)], 1).softmax(-1)[..., 1]
        landmarks = torch.cat([head(f) for head, f in zip(self.LandmarkHead, features)], 1)
        return boxes, scores, landmarks


def prior_boxes(height: int, width: int) -> torch.Tensor:
    """Anchors [N, 4] as (cx, cy, w, h) relative to the image, in the heads' output order."""
    priors = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        for i in range(rows):
            for j in range(cols):
                for size in sizes:
                    priors.append(((j + 0.5) * step / width, (i + 0.5) * step / height, size / width, size / height))
    return torch.tensor(priors, dtype=torch.float32)


def decode_boxes(offsets: torch.Tensor, priors: torch.Tensor, variances=VARIANCES) -> torch.Tensor:
    """SSD-style box decoding: offsets [N, 4] relative to priors (cx, cy, w, h) -> (x1, y1, x2, y2) relative."""
    centers = priors[:, :2] + offsets[:, :2] * variances[0] * priors[:, 2:]
    sizes = priors[:, 2:] * torch.exp(offsets[:, 2:] * variances[1])
    return torch.cat([centers - sizes / 2, centers + sizes / 2], 1)


class RetinaFaceDetector:
    """Frame (uint8 RGB [H, W, 3]) -> face boxes [K, 4] (x1, y1, x2, y2 pixels), for `FacePixelator`."""

    def __init__(self, model: RetinaFace, confidence_threshold: float = 0.7, nms_threshold: float = 0.4,
                 device=None):
        if not 0.0 < confidence_threshold < 1.0 or not 0.0 < nms_threshold <= 1.0:
            raise ValueError(f"thresholds must be in (0, 1), got {confidence_threshold}, {nms_threshold}")
        self.model = model.eval().to(device or "cpu")
        self.confidence_threshold = confidence_threshold
        self.nms_threshold = nms_threshold
        self._priors = {}

    @classmethod
    def from_checkpoint(cls, path, allow_pickle: bool = False, **kwargs) -> "RetinaFaceDetector":
        """Load Pytorch_Retinaface's Resnet50_Final.pth (a plain state dict; read with weights_only)."""
        state = load_state_dict_file(path, allow_pickle=allow_pickle)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        model = RetinaFace()
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{path} is not a RetinaFace ResNet-50 checkpoint: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        return cls(model, **kwargs)

    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> np.ndarray:
        from torchvision.ops import nms

        height, width = frame.shape[:2]
        device = next(self.model.parameters()).device
        image = torch.from_numpy(np.ascontiguousarray(frame[..., ::-1])).to(device, torch.float32)
        image = (image - torch.tensor(BGR_MEAN, device=device)).permute(2, 0, 1)[None]
        offsets, scores, _ = self.model(image)
        # NaN scores fail the threshold and NaN boxes round to empty ones: both would read as "no face here"
        if not (torch.isfinite(scores).all() and torch.isfinite(offsets).all()):
            raise ValueError("the face detector returned NaN or inf scores or boxes (a broken or overflowed model)")
        if (height, width) not in self._priors:
            self._priors[(height, width)] = prior_boxes(height, width).to(device)
        priors = self._priors[(height, width)]
        if priors.shape[0] != offsets.shape[1]:
            raise ValueError(f"anchor count {priors.shape[0]} != head outputs {offsets.shape[1]} for {height}x{width}")
        boxes = decode_boxes(offsets[0], priors) * torch.tensor([width, height, width, height], device=device)
        keep = scores[0] > self.confidence_threshold
        boxes, kept_scores = boxes[keep], scores[0][keep]
        boxes = boxes[nms(boxes, kept_scores, self.nms_threshold)]
        return boxes.round().long().cpu().numpy().reshape(-1, 4)
