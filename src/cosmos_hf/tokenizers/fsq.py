"""Finite Scalar Quantization (Mentzer et al., 2023), as Cosmos-Tokenize1 uses it.

Each of the `len(levels)` channels is squashed into a bounded range, rounded to one of `levels[i]` integer values
(straight-through gradient) and rescaled to [-1, 1]. The codebook is implicit: index = sum_i digit_i * basis_i with
basis = cumprod([1] + levels[:-1]), so levels (8, 8, 8, 5, 5, 5) give 64,000 codes and no codebook parameters.

The arithmetic below follows the reference (cosmos_predict1 FSQuantizer) operation by operation so indices are
bit-identical, including the per-level offset that centres even level counts and the 1e-3 margin in `bound`.
"""

import torch
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn


def round_ste(z: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through gradient (identity in the backward pass)."""
    return z + (z.round() - z).detach()


class FSQ(nn.Module):
    """Finite scalar quantizer over channel dimension 1 (`[B, D, ...]` with `D == len(levels)`).

    `forward(z)` returns `(indices [B, ...] int64, codes [B, D, ...] in [-1, 1])`.
    Buffers are not persistent: the quantizer is fully defined by `levels`.
    """

    def __init__(self, levels=(8, 8, 8, 5, 5, 5), eps: float = 1e-3):
        super().__init__()
        levels = [int(level) for level in levels]
        if not levels or any(level < 2 for level in levels):
            raise ValueError(f"FSQ levels must be a non-empty list of integers >= 2, got {levels}")
        self.levels = levels
        self.eps = eps
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.int32), persistent=False)
        basis = torch.cumprod(torch.tensor([1] + levels[:-1]), dim=0, dtype=torch.int32)
        self.register_buffer("_basis", basis, persistent=False)

    def code_range(self):
        """(low, high) per channel of the codes: low = -1, high = (L - 1 - L // 2) / (L // 2) (0.75 for L = 8)."""
        half_width = self._levels // 2
        return -torch.ones(self.dim), (self._levels - 1 - half_width).cpu().float() / half_width.cpu()

    @property
    def codebook_size(self) -> int:
        size = 1
        for level in self.levels:
            size *= level
        return size

    @property
    def dim(self) -> int:
        return len(self.levels)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash channel-last `z [..., D]` into each level's range (tanh with the reference's offset and margin)."""
        half_l = (self._levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        return (z + shift).tanh() * half_l - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Channel-last `z [..., D]` -> codes in [-1, 1] (straight-through rounding)."""
        quantized = round_ste(self.bound(z))
        half_width = self._levels // 2
        return quantized / half_width

    # called directly, not through forward: accelerate's offload hooks must still bring the level buffers in
    @apply_forward_hook
    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """Channel-last codes `[..., D]` -> int64 indices `[...]`."""
        if codes.shape[-1] != self.dim:
            raise ValueError(f"codes must have {self.dim} channels in the last dimension, got {codes.shape[-1]}")
        half_width = self._levels // 2
        digits = (codes * half_width + half_width).float()
        return (digits * self._basis).sum(dim=-1).to(torch.int32).long()

    @apply_forward_hook
    def indices_to_codes(self, indices: torch.Tensor, channel_first: bool = True) -> torch.Tensor:
        """int indices `[B, ...]` -> codes `[B, D, ...]` (or `[..., D]` with `channel_first=False`) in [-1, 1]."""
        if indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ValueError(f"indices must be an integer tensor, got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(
                f"token indices must lie in [0, {self.codebook_size}), got values in "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        indices = indices.to(self._basis.device)  # where the level buffers live (also under CPU offload)
        digits = (indices.unsqueeze(-1) // self._basis) % self._levels
        half_width = self._levels // 2
        codes = (digits - half_width) / half_width
        if channel_first and codes.ndim >= 3:
            codes = codes.movedim(-1, 1)
        return codes.float()

    def forward(self, z: torch.Tensor):
        if z.shape[1] != self.dim:
            raise ValueError(f"FSQ expects {self.dim} channels in dimension 1, got shape {tuple(z.shape)}")
        z_last = z.movedim(1, -1).float()  # quantize in fp32 whatever the model dtype: indices must not depend on it
        codes = self.quantize(z_last)
        indices = self.codes_to_indices(codes)
        return indices, codes.movedim(-1, 1)
