"""Per-frame video content safety classifier (post-guard): image embeddings + an MLP head over 7 classes.

The reference embeds each frame with SigLIP (google/siglip-so400m-patch14-384, 1152-d, L2-normalised) and
classifies it with a 3-layer MLP (1152 -> 512 -> 256 -> 7, BatchNorm + ReLU); a video is unsafe as soon
as one checked frame is not class 0 ("Safe"). `VideoSafetyHead` keeps the reference's parameter names
(`layers.{0,1,3,4,6}`), so `VideoSafetyHead.from_reference_checkpoint("safety_filter.pt")` loads its weights.

    classifier = VideoContentSafetyClassifier.from_pretrained("google/siglip-so400m-patch14-384", "path/to/head")
    verdict = classifier.check(frames)            # frames: uint8 [T, H, W, 3]

Train a head on your own labelled embeddings with training/train_safety_head.py. Unlike the reference, a frame
that fails to classify blocks the video (fail closed) instead of being skipped.
"""

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from ..utils import load_state_dict_file
from .categories import VIDEO_SAFETY_CLASSES
from .core import GuardrailVerdict, resolve_pretrained_path, run_guard_fail_closed


class VideoSafetyHead(ModelMixin, ConfigMixin):
    """MLP classifier on frame embeddings: Linear-BN-ReLU blocks then a Linear to `num_classes` logits.

    Args:
        input_size: embedding width (1152 for SigLIP so400m).
        hidden_sizes: widths of the hidden blocks (reference: 512, 256).
        class_names: one name per class; index 0 must be the safe class.
    """

    @register_to_config
    def __init__(
        self,
        input_size: int = 1152,
        hidden_sizes: tuple = (512, 256),
        class_names: tuple = VIDEO_SAFETY_CLASSES,
    ):
        super().__init__()
        if input_size < 1 or not hidden_sizes or any(h < 1 for h in hidden_sizes):
            raise ValueError(f"input_size and hidden_sizes must be positive, got {input_size}, {hidden_sizes}")
        if len(class_names) < 2:
            raise ValueError(f"need at least 2 classes (index 0 = safe), got {list(class_names)}")
        blocks, width = [], input_size
        for hidden in hidden_sizes:
            blocks += [torch.nn.Linear(width, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.ReLU()]
            width = hidden
        blocks.append(torch.nn.Linear(width, len(class_names)))
        self.layers = torch.nn.Sequential(*blocks)

    @property
    def num_classes(self) -> int:
        return len(self.config.class_names)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        if embeddings.ndim != 2 or embeddings.shape[-1] != self.config.input_size:
            raise ValueError(
                f"embeddings must be shaped (N, {self.config.input_size}), got {tuple(embeddings.shape)}"
            )
        return self.layers(embeddings)

    @classmethod
    def from_reference_checkpoint(cls, path, allow_pickle: bool = False, **config) -> "VideoSafetyHead":
        """Load the reference's `safety_filter.pt` ({"model": {"network.layers.0.weight": ...}}) or a state dict."""
        state = load_state_dict_file(path, allow_pickle=allow_pickle)
        state = {k.removeprefix("network."): v for k, v in state.items()}
        if "layers.0.weight" not in state:
            raise ValueError(f"{path} does not look like a video safety head (no 'layers.0.weight' key)")
        config.setdefault("input_size", state["layers.0.weight"].shape[1])
        linear_keys = sorted(
            (k for k in state if k.startswith("layers.") and k.endswith(".weight") and state[k].ndim == 2),
            key=lambda k: int(k.split(".")[1]),
        )
        config.setdefault("hidden_sizes", tuple(state[k].shape[0] for k in linear_keys[:-1]))
        head = cls(**config)
        if state[linear_keys[-1]].shape[0] != head.num_classes:
            raise ValueError(
                f"{path} has {state[linear_keys[-1]].shape[0]} classes, config names {head.num_classes}"
            )
        head.load_state_dict(state, strict=True)
        return head.eval()


class SiglipFrameEmbedder(torch.nn.Module):
    """L2-normalised image embeddings from a transformers SigLIP (or any model with image features).

    Works with a full `SiglipModel` (uses `get_image_features`) or a vision tower alone (its pooled output).
    """

    def __init__(self, model, image_processor):
        super().__init__()
        self.model = model.eval()
        self.image_processor = image_processor

    @classmethod
    def from_pretrained(cls, name_or_path, dtype=torch.float32, device=None, local_files_only: bool = True,
                        cache_dir=None):
        from transformers import AutoImageProcessor, AutoModel

        path = resolve_pretrained_path(name_or_path, cache_dir=cache_dir, local_files_only=local_files_only)
        model = AutoModel.from_pretrained(path, dtype=dtype, cache_dir=cache_dir)
        processor = AutoImageProcessor.from_pretrained(path, cache_dir=cache_dir)
        if device is not None:
            model = model.to(device)
        return cls(model, processor)

    @property
    def device(self):
        return next(self.model.parameters()).device

    @torch.no_grad()
    def forward(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames [N, H, W, 3] -> float embeddings [N, D] with unit norm."""
        pixel_values = self.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
        pixel_values = pixel_values.to(self.device, dtype=next(self.model.parameters()).dtype)
        if hasattr(self.model, "get_image_features"):
            features = self.model.get_image_features(pixel_values=pixel_values)
        else:
            features = self.model(pixel_values=pixel_values)
        if not torch.is_tensor(features):  # transformers 5 returns a ModelOutput
            features = features.pooler_output
        features = features.float()
        return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def validate_frames(frames) -> np.ndarray:
    """Frames as uint8 [T, H, W, 3]; raises ValueError naming the problem otherwise."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be shaped (T, H, W, 3), got {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("frames must contain at least one frame")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 in [0, 255], got {frames.dtype}")
    return frames


class VideoContentSafetyClassifier(torch.nn.Module):
    """Blocks a video when any checked frame is classified as anything but class 0 ("Safe").

    Args:
        embedder: frames -> embeddings (e.g. `SiglipFrameEmbedder`).
        head: `VideoSafetyHead` on those embeddings.
        frame_stride: check every `frame_stride`-th frame (1 = every frame, the reference's default for arrays).
        batch_size: frames embedded per forward pass.
    """

    def __init__(self, embedder, head: VideoSafetyHead, frame_stride: int = 1, batch_size: int = 16):
        super().__init__()
        if frame_stride < 1 or batch_size < 1:
            raise ValueError(f"frame_stride and batch_size must be >= 1, got {frame_stride}, {batch_size}")
        self.embedder = embedder
        self.head = head.eval()
        self.frame_stride = frame_stride
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, encoder_name_or_path, head_path, device=None, local_files_only=True, cache_dir=None,
                        **kwargs):
        """SigLIP from `encoder_name_or_path`; the head from a `save_pretrained` folder or a reference .pt file."""
        from pathlib import Path

        embedder = SiglipFrameEmbedder.from_pretrained(
            encoder_name_or_path, local_files_only=local_files_only, cache_dir=cache_dir
        )
        head_path = Path(head_path)
        if head_path.is_dir():
            head = VideoSafetyHead.from_pretrained(head_path)
        else:
            head = VideoSafetyHead.from_reference_checkpoint(head_path)
        classifier = cls(embedder, head, **kwargs)
        return classifier.to(device) if device is not None else classifier

    @torch.no_grad()
    def classify_frames(self, frames: np.ndarray) -> list[int]:
        """Predicted class index of each frame in `frames` (uint8 [T, H, W, 3])."""
        head_param = next(self.head.parameters())
        predictions = []
        for start in range(0, len(frames), self.batch_size):
            embeddings = self.embedder(frames[start : start + self.batch_size])
            logits = self.head(embeddings.to(head_param.device, head_param.dtype))
            # argmax reads a NaN as the largest value, and all-NaN logits as class 0 ("Safe"): refuse them instead
            if not torch.isfinite(logits).all():
                raise ValueError("the safety head returned NaN or inf logits (a broken or overflowed model)")
            predictions += logits.argmax(dim=-1).tolist()
        return predictions

    def _check(self, frames) -> GuardrailVerdict:
        frames = validate_frames(frames)
        indices = list(range(0, len(frames), self.frame_stride))
        classes = self.classify_frames(frames[indices])
        names = self.head.config.class_names
        per_frame = {i: names[c] for i, c in zip(indices, classes)}
        for i, c in zip(indices, classes):
            if c != 0:
                return GuardrailVerdict(
                    False, "video_classifier", f"frame {i} classified as {names[c]}", details={"frames": per_frame}
                )
        return GuardrailVerdict(
            True, "video_classifier", f"{len(indices)} frames classified Safe", details={"frames": per_frame}
        )

    def check(self, frames) -> GuardrailVerdict:
        """Verdict for a video; any error blocks it (fail closed) and is named in the reason."""
        return run_guard_fail_closed("video_classifier", self._check, frames)
