"""Training losses of Cosmos-Tokenize1 (the paper's two-stage recipe).

Stage 1: L1 + perceptual (VGG16 features). Stage 2 adds the optical-flow loss, the Gram-matrix loss and an
adversarial loss from a 3D patch discriminator (hinge). FSQ needs no commitment loss.

What cannot be downloaded here, and what happens instead (documented in the README):
- VGG16 ImageNet weights: torchvision's VGG16 architecture is used; weights load from a local file
  (`vgg_weights=...`, the torchvision `vgg16-397923af.pth` state dict, read with weights_only). Without them the
  perceptual and Gram terms are disabled (a warning says so) — random VGG features are not a perceptual metric.
- RAFT weights (the reference's flow network): torchvision's `raft_small`/`raft_large` load from a local file when
  given (`raft_weights=...`). Without them the flow is estimated by a differentiable Lucas-Kanade solver (no weights):
  per-pixel least squares on spatial/temporal gradients over a window, bidirectional like the reference.
"""

import logging

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

# layer weights the reference uses to combine VGG feature differences (relu1_2 ... relu5_3)
VGG_LAYER_WEIGHTS = (1.0 / 2.6, 1.0 / 4.8, 1.0 / 3.7, 1.0 / 5.6, 10.0 / 1.5)
_VGG_SLICE_ENDS = (4, 9, 16, 23, 30)  # indices into torchvision vgg16().features after each relu block
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def video_to_frames(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B*T, C, H, W]; images [B, C, H, W] pass through."""
    if x.ndim == 4:
        return x
    return x.transpose(1, 2).flatten(0, 1)


class VGGFeatures(nn.Module):
    """Frozen VGG16 feature pyramid (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) on [-1, 1] images."""

    def __init__(self, weights_path=None):
        super().__init__()
        from torchvision.models import vgg16

        from ..utils import load_state_dict_file

        # Only the convolutional trunk is used: accept torchvision's full vgg16 state dict or just `features.*`.
        state = {k.removeprefix("features."): v for k, v in load_state_dict_file(weights_path).items()
                 if k.startswith("features.")}
        features = vgg16(weights=None).features
        features.load_state_dict(state)
        self.features = features[: _VGG_SLICE_ENDS[-1]].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images):
        x = ((images + 1) / 2 - self.mean) / self.std
        outputs, start = [], 0
        for end in _VGG_SLICE_ENDS:
            x = self.features[start:end](x)
            outputs.append(x)
            start = end
        return outputs


def chroma_l1_loss(recon, target):
    """L1 between the colour parts (each pixel minus its mean over RGB) of `[B,3,...]` reconstruction and target.

    Not in the reference recipe; experimental (`loss.chroma`, default 0). Why: where most of the scene is grey, small
    autoencoders spend their first thousands of steps on luminance edges and output grey. Weighted ~10 it gives a
    plain conv autoencoder colour within a few hundred steps, but collapses the nano Cosmos tokenizers to a
    near-constant output (README, "Initialisation and colour").
    """
    return ((recon - recon.mean(1, keepdim=True)) - (target - target.mean(1, keepdim=True))).abs().mean()


def _normalize_channels(features, eps=1e-10):
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def perceptual_loss(vgg: VGGFeatures, recon, target):
    """LPIPS-style distance with the reference's fixed layer weights (channel-normalised VGG features, L1)."""
    total = 0.0
    for weight, f_recon, f_target in zip(VGG_LAYER_WEIGHTS, vgg(video_to_frames(recon)), vgg(video_to_frames(target))):
        total = total + weight * (_normalize_channels(f_recon) - _normalize_channels(f_target)).abs().mean()
    return total


def gram_matrix(features):
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def gram_loss(vgg: VGGFeatures, recon, target):
    """Squared difference of VGG Gram matrices (texture statistics), reference layer weights."""
    total = 0.0
    for weight, f_recon, f_target in zip(VGG_LAYER_WEIGHTS, vgg(video_to_frames(recon)), vgg(video_to_frames(target))):
        total = total + weight * (gram_matrix(f_recon) - gram_matrix(f_target)).pow(2).mean()
    return total


def lucas_kanade_flow(frame0, frame1, window: int = 7, eps: float = 1e-3):
    """Dense, differentiable Lucas-Kanade flow from frame0 to frame1 ([N, C, H, W] -> [N, 2, H, W], pixels).

    Solves [sum Ix^2, sum IxIy; sum IxIy, sum Iy^2] [u v]^T = -[sum IxIt, sum IyIt] over a `window` box per pixel
    (channel-summed), with Tikhonov `eps` so flat regions give zero flow instead of NaN.
    """
    gray0, gray1 = frame0.mean(dim=1, keepdim=True), frame1.mean(dim=1, keepdim=True)
    average = (gray0 + gray1) / 2
    kernel_x = torch.tensor([[-0.5, 0.0, 0.5]], dtype=average.dtype, device=average.device).view(1, 1, 1, 3)
    ix = F.conv2d(F.pad(average, (1, 1, 0, 0), mode="replicate"), kernel_x)
    iy = F.conv2d(F.pad(average, (0, 0, 1, 1), mode="replicate"), kernel_x.transpose(2, 3))
    it = gray1 - gray0

    def box(t):
        return F.avg_pool2d(F.pad(t, (window // 2,) * 4, mode="replicate"), window, stride=1)

    sxx, syy, sxy = box(ix * ix) + eps, box(iy * iy) + eps, box(ix * iy)
    sxt, syt = box(ix * it), box(iy * it)
    det = sxx * syy - sxy * sxy
    u = (-syy * sxt + sxy * syt) / det
    v = (sxy * sxt - sxx * syt) / det
    return torch.cat([u, v], dim=1)


class RAFTFlow(nn.Module):
    """torchvision RAFT with weights from a local file (the reference's flow network)."""

    def __init__(self, weights_path, large: bool = False):
        super().__init__()
        from torchvision.models.optical_flow import raft_large, raft_small

        from ..utils import load_state_dict_file

        self.model = (raft_large if large else raft_small)(weights=None)
        self.model.load_state_dict(load_state_dict_file(weights_path))
        self.model.eval().requires_grad_(False)

    def forward(self, frame0, frame1):
        return self.model(frame0, frame1, num_flow_updates=6)[-1]


def bidirectional_flow(video, flow_fn=None):
    """Forward and backward flow between consecutive frames of [B, C, T, H, W] -> [B, 2, 2(T-1), H, W]."""
    flow_fn = flow_fn or lucas_kanade_flow
    b, c, t, h, w = video.shape
    first = video[:, :, :-1].transpose(1, 2).reshape(-1, c, h, w)
    second = video[:, :, 1:].transpose(1, 2).reshape(-1, c, h, w)
    forward = flow_fn(first, second).reshape(b, t - 1, 2, h, w)
    backward = flow_fn(second, first).reshape(b, t - 1, 2, h, w)
    return torch.cat([forward, backward], dim=1).transpose(1, 2)


def flow_loss(recon, target, flow_fn=None):
    """L1 between the optical flow of the reconstruction and of the input (videos with >= 2 frames, else 0)."""
    if recon.ndim != 5 or recon.shape[2] < 2:
        return recon.new_zeros(())
    return (bidirectional_flow(recon, flow_fn) - bidirectional_flow(target, flow_fn)).abs().mean()


class PatchDiscriminator3D(nn.Module):
    """A 3D PatchGAN: strided Conv3d + LeakyReLU stack giving one logit per spatio-temporal patch.

    Images are treated as 1-frame videos (temporal kernels are causal-padded so T=1 works).
    """

    def __init__(self, in_channels: int = 3, channels: int = 32, num_layers: int = 3):
        super().__init__()
        layers, current = [], in_channels
        for i in range(num_layers):
            out = channels * 2**i
            layers += [nn.Conv3d(current, out, kernel_size=(3, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1))]
            if i > 0:
                layers += [nn.GroupNorm(min(32, out // 4), out)]
            layers += [nn.LeakyReLU(0.2)]
            current = out
        layers += [nn.Conv3d(current, 1, kernel_size=(3, 3, 3), padding=(0, 1, 1))]
        self.layers = nn.Sequential(*layers)

    def forward(self, video):
        if video.ndim == 4:
            video = video.unsqueeze(2)
        x = video
        for layer in self.layers:
            if isinstance(layer, nn.Conv3d) and layer.kernel_size[0] > 1:
                x = torch.cat([x[:, :, :1].expand(-1, -1, layer.kernel_size[0] - 1, -1, -1), x], dim=2)
            x = layer(x)
        return x


def hinge_discriminator_loss(real_logits, fake_logits):
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits):
    return -fake_logits.mean()
