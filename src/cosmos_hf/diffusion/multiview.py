"""Multi-view Cosmos-Predict1 DiT (driving rigs): view embeddings, per-view cross-attention, optional trajectory.

Layout and numerics follow the reference's multi-view DiT (cosmos-predict1 `diffusion/networks/
general_dit_multiview.py`, `general_dit_video_conditioned_multiview.py`, `module/blocks.py`,
`module/position_embedding.py`):

* **views along time**: `hidden_states` is `[B, C, V*T, H, W]`, view-major (frames ``0..T-1`` are view 0, the next T
  view 1, ...). Self-attention spans all views' tokens (this is how views see each other); nothing else mixes them;
* **view embedding channels**: ``nn.Embedding(num_views, view_embed_dim)`` (reference `view_embeddings`, 6 views x 6
  channels in the released model) looked up for `view_indices` (default ``0..V-1``) and broadcast over each view's
  frames and pixels, concatenated to the input. With `add_frame_repeat_embedding` (the released Video2World model's
  `repeat_frame_embedding`, Linear(1 -> view_embed_dim)), a per-view scalar `frame_repeat` is embedded and added;
* **trajectory channels** (optional, `trajectory_dim` > 0): the flattened ego trajectory ``[B, trajectory_dim]``
  (192 = 64 waypoints x 3 in the reference) -> Linear -> `trajectory_embed_dim` channels broadcast over every view,
  frame and pixel, concatenated after the view channels. Not the reference: with `trajectory_mean`/`trajectory_std`
  (`set_trajectory_normalization`; the training script's `model.normalize_trajectory`) the Linear reads the
  standardised trajectory. A rig's path over a short clip spans centimetres, so without it the channels barely
  differ between trajectories and the nano model learns to ignore them;
* **per-view cross-attention**: view v's tokens attend only to view v's caption. `encoder_hidden_states` is
  ``[B, V*L, D]`` (view-major: tokens ``v*L .. v*L+L-1`` are view v's caption, the reference's layout) or
  ``[B, V, L, D]``; a shared caption is simply repeated V times;
* **per-view positions**: the 3D RoPE, and the extra absolute position embedding, restart for every view (each
  view's frames get temporal positions ``0..T-1``). The released models use a parameter-free sin-cos extra embedding
  (``extra_pos_embed_type="sincos"`` here); models grown from our Video2World DiTs keep their learnable one, per view.

Channel order: the reference concatenates ``[latent | condition mask | padding mask | view | trajectory]``; diffusers'
forward always appends the padding mask last, so here it is ``[latent | condition mask | view | trajectory | padding
mask]`` and the checkpoint converter permutes the patch-embedding columns accordingly. Everything is composition
around diffusers' `CosmosTransformer3DModel`: a RoPE wrapper, a position-embedding subclass with the same parameters, a
cross-attention processor that wraps diffusers' own, and extra channels passed through `condition_mask`.
"""

from __future__ import annotations

import torch
from diffusers import CosmosTransformer3DModel
# diffusers picks a pipeline component's loader by looking up `ModelMixin` in the module that defines its class
from diffusers import ModelMixin  # noqa: F401
from diffusers.configuration_utils import register_to_config
from diffusers.models.transformers.transformer_cosmos import (
    CosmosAttnProcessor2_0,
    CosmosLearnablePositionalEmbed,
    CosmosRotaryPosEmbed,
)
from torch import nn

from ..tokenizers.strict_loading import StrictLoadingMixin
from .camera_control import (
    _check_extra_config,
    base_config_dict,
    check_input_statistics,
    input_statistics,
    load_base_weights_with_new_patch_channels,
)

REFERENCE_TRAJECTORY_DIM = 192  # 64 ego waypoints x (x, y, z) in the reference's driving data


def _split_views(num_frames: int, num_views: int) -> int:
    if num_frames % num_views:
        raise ValueError(
            f"hidden_states has {num_frames} frames, which is not num_views ({num_views}) x frames per view; views are "
            "laid out along time, view-major: [B, C, V*T, H, W]"
        )
    return num_frames // num_views


def trajectory_statistics(trajectories, min_std: float = 1e-2) -> tuple[list[float], list[float]]:
    """(mean, std) per dimension of flattened trajectories `[N, trajectory_dim]` (or `[N, T, 3]`), for
    `set_trajectory_normalization`. std is floored at 1 cm: the first waypoint is always the origin and a rig's height
    does not change, and those dimensions must not be blown up when a user's path differs slightly."""
    trajectories = torch.as_tensor(trajectories)
    return input_statistics(trajectories.reshape(trajectories.shape[0], -1), min_std)


class CosmosMultiViewRotaryPosEmbed(nn.Module):
    """Wraps diffusers' `CosmosRotaryPosEmbed`: computes the RoPE of one view's `T` frames and tiles it over views."""

    def __init__(self, rope: CosmosRotaryPosEmbed, num_views: int):
        super().__init__()
        self.rope = rope
        self.num_views = num_views

    def forward(self, hidden_states: torch.Tensor, fps: int | None = None):
        frames_per_view = _split_views(hidden_states.shape[2], self.num_views)
        cos, sin = self.rope(hidden_states[:, :, :frames_per_view], fps=fps)  # [T*H*W, D] each
        return cos.repeat(self.num_views, 1), sin.repeat(self.num_views, 1)


class CosmosMultiViewLearnablePositionalEmbed(CosmosLearnablePositionalEmbed):
    """diffusers' learnable extra position embedding (same parameters), restarted for every view."""

    def __init__(self, hidden_size: int, max_size, patch_size, num_views: int, eps: float = 1e-6):
        super().__init__(hidden_size=hidden_size, max_size=max_size, patch_size=patch_size, eps=eps)
        self.num_views = num_views

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        frames_per_view = _split_views(hidden_states.shape[2], self.num_views)
        # the embedding is normalised per token, so one view's embedding is exactly its slice of a longer one
        return super().forward(hidden_states[:, :, :frames_per_view]).repeat(1, self.num_views, 1)


def sincos_1d(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """[sin(p w), cos(p w)] with w_i = 10000^(-i / (embed_dim/2)): the reference's 1D sin-cos table (float64)."""
    omega = 1.0 / 10000 ** (torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0))
    angles = positions.to(torch.float64)[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class CosmosMultiViewSinCosPositionalEmbed(nn.Module):
    """Parameter-free extra position embedding of the released multi-view models, restarted for every view.

    Model width D is split as the RoPE is (``d_h = d_w = D // 6 * 2``, ``d_t = D - 2 d_h``) and the channels are
    ``[t | h | w]`` 1D sin-cos tables of the (patched) frame, row and column index.
    """

    def __init__(self, hidden_size: int, max_size, patch_size, num_views: int):
        super().__init__()
        self.num_views = num_views
        self.patch_size = tuple(patch_size)
        len_t, len_h, len_w = (size // patch for size, patch in zip(max_size, patch_size))
        dim_h = hidden_size // 6 * 2
        dim_t = hidden_size - 2 * dim_h
        self.register_buffer("pos_emb_t", sincos_1d(dim_t, torch.arange(len_t)).float(), persistent=False)
        self.register_buffer("pos_emb_h", sincos_1d(dim_h, torch.arange(len_h)).float(), persistent=False)
        self.register_buffer("pos_emb_w", sincos_1d(dim_h, torch.arange(len_w)).float(), persistent=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, _, frames, height, width = hidden_states.shape
        frames_per_view = _split_views(frames, self.num_views)
        t, h, w = frames_per_view // self.patch_size[0], height // self.patch_size[1], width // self.patch_size[2]
        if t > self.pos_emb_t.shape[0] or h > self.pos_emb_h.shape[0] or w > self.pos_emb_w.shape[0]:
            raise ValueError(
                f"latent grid per view {(t, h, w)} (patched) exceeds the position table "
                f"{(self.pos_emb_t.shape[0], self.pos_emb_h.shape[0], self.pos_emb_w.shape[0])} (max_size)"
            )
        emb = torch.cat(
            [
                self.pos_emb_t[:t, None, None, :].expand(t, h, w, -1),
                self.pos_emb_h[None, :h, None, :].expand(t, h, w, -1),
                self.pos_emb_w[None, None, :w, :].expand(t, h, w, -1),
            ],
            dim=-1,
        ).flatten(0, 2)
        return emb.repeat(self.num_views, 1)[None].expand(batch, -1, -1).type_as(hidden_states)


class CosmosMultiViewCrossAttnProcessor:
    """Cross-attention in which each view's tokens attend only to that view's text tokens.

    Splits the video tokens `[B, V*N, D]` and the text `[B, V*L, D]` (both view-major) into `B*V` independent
    sequences and runs diffusers' `CosmosAttnProcessor2_0` on them — the reference's ``(v t) -> (v b)`` rearrange.
    """

    def __init__(self, num_views: int):
        self.num_views = num_views
        self.processor = CosmosAttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        if encoder_hidden_states is None:  # used as a self-attention processor: nothing to split
            return self.processor(attn, hidden_states, None, attention_mask, image_rotary_emb)
        if isinstance(encoder_hidden_states, tuple):
            raise ValueError("multi-view cross-attention takes text embeddings only, not (text, image) context")
        views = self.num_views
        batch, tokens, _ = hidden_states.shape
        text_tokens = encoder_hidden_states.shape[1]
        if tokens % views or text_tokens % views:
            raise ValueError(f"cannot split {tokens} video and {text_tokens} text tokens into {views} views")
        per_view_hidden = hidden_states.reshape(batch * views, tokens // views, -1)
        per_view_text = encoder_hidden_states.reshape(batch * views, text_tokens // views, -1)
        if attention_mask is not None:  # [B, 1, 1, V*L] -> [B*V, 1, 1, L]
            attention_mask = attention_mask.reshape(batch, 1, 1, views, text_tokens // views)
            attention_mask = attention_mask.permute(0, 3, 1, 2, 4).reshape(batch * views, 1, 1, -1)
        output = self.processor(attn, per_view_hidden, per_view_text, attention_mask, image_rotary_emb)
        return output.reshape(batch, tokens, -1)


# StrictLoadingMixin: `from_pretrained` refuses missing / unexpected weights (diffusers only logs them; a config
# without the frame-repeat embedding or the trajectory layer of the weights silently dropped them)
class CosmosMultiViewTransformer3DModel(StrictLoadingMixin, CosmosTransformer3DModel):
    r"""Multi-view Cosmos-Predict1 DiT: V camera views along time, view embeddings, per-view captions.

    Takes every argument of diffusers' `CosmosTransformer3DModel` plus:

    Args:
        num_views (`int`, defaults to 6): views per sample (the reference's `n_views`).
        view_embed_dim (`int`, defaults to 6): view-embedding channels concatenated to the input
            (`view_condition_dim`).
        trajectory_dim (`int`, defaults to 0): length of the flattened trajectory; 0 disables trajectory conditioning
            (the reference's `concat_traj_embedding` reads 192).
        trajectory_embed_dim (`int`, *optional*): trajectory channels (`traj_condition_dim`); defaults to
            `view_embed_dim` when `trajectory_dim` > 0.
        add_frame_repeat_embedding (`bool`, defaults to False): the reference's `add_repeat_frame_embedding`.
        trajectory_mean, trajectory_std (`list[float]`, *optional*): not the reference. Per-dimension statistics of
            the flattened trajectory; when set, the trajectory Linear reads ``(trajectory - mean) / std``
            (`set_trajectory_normalization`; the training script's `model.normalize_trajectory`).

    `in_channels` keeps its base meaning (latent + condition-mask channels); the patch embedding reads
    ``in_channels + view_embed_dim + trajectory_embed_dim (+ 1 padding mask)`` channels. With
    ``extra_pos_embed_type="sincos"`` the extra position embedding is the released models' parameter-free one.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 17,
        out_channels: int = 16,
        num_attention_heads: int = 32,
        attention_head_dim: int = 128,
        num_layers: int = 28,
        mlp_ratio: float = 4.0,
        text_embed_dim: int = 1024,
        adaln_lora_dim: int = 256,
        max_size: tuple[int, int, int] = (128, 240, 240),
        patch_size: tuple[int, int, int] = (1, 2, 2),
        rope_scale: tuple[float, float, float] = (2.0, 1.0, 1.0),
        concat_padding_mask: bool = True,
        extra_pos_embed_type: str | None = "learnable",
        use_crossattn_projection: bool = False,
        crossattn_proj_in_channels: int = 1024,
        encoder_hidden_states_channels: int = 1024,
        controlnet_block_every_n: int | None = None,
        img_context_dim_in: int | None = None,
        img_context_num_tokens: int = 256,
        img_context_dim_out: int = 2048,
        num_views: int = 6,
        view_embed_dim: int = 6,
        trajectory_dim: int = 0,
        trajectory_embed_dim: int | None = None,
        add_frame_repeat_embedding: bool = False,
        trajectory_mean: list[float] | None = None,
        trajectory_std: list[float] | None = None,
    ) -> None:
        if num_views < 1 or view_embed_dim < 0 or trajectory_dim < 0:
            raise ValueError(
                f"need num_views >= 1, view_embed_dim >= 0, trajectory_dim >= 0; got {num_views}, {view_embed_dim}, "
                f"{trajectory_dim}"
            )
        if extra_pos_embed_type not in (None, "learnable", "sincos"):
            raise ValueError(
                f"extra_pos_embed_type must be None, 'learnable' or 'sincos', got {extra_pos_embed_type!r}"
            )
        if add_frame_repeat_embedding and view_embed_dim == 0:
            raise ValueError("add_frame_repeat_embedding needs view_embed_dim > 0 (it is added to the view embedding)")
        if trajectory_embed_dim is None:
            trajectory_embed_dim = view_embed_dim if trajectory_dim > 0 else 0
        if trajectory_dim > 0 and trajectory_embed_dim < 1:
            raise ValueError(f"trajectory_dim {trajectory_dim} needs trajectory_embed_dim >= 1")
        if trajectory_dim == 0:
            trajectory_embed_dim = 0
        check_input_statistics(trajectory_mean, trajectory_std, trajectory_dim, "trajectory")
        super().__init__(
            in_channels=in_channels + view_embed_dim + trajectory_embed_dim,
            out_channels=out_channels,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            num_layers=num_layers,
            mlp_ratio=mlp_ratio,
            text_embed_dim=text_embed_dim,
            adaln_lora_dim=adaln_lora_dim,
            max_size=max_size,
            patch_size=patch_size,
            rope_scale=rope_scale,
            concat_padding_mask=concat_padding_mask,
            extra_pos_embed_type=extra_pos_embed_type,
            use_crossattn_projection=use_crossattn_projection,
            crossattn_proj_in_channels=crossattn_proj_in_channels,
            encoder_hidden_states_channels=encoder_hidden_states_channels,
            controlnet_block_every_n=controlnet_block_every_n,
            img_context_dim_in=img_context_dim_in,
            img_context_num_tokens=img_context_num_tokens,
            img_context_dim_out=img_context_dim_out,
        )
        # the parent's decorated __init__ re-registered in_channels with the new channels added: restore its meaning
        self.register_to_config(in_channels=in_channels, trajectory_embed_dim=trajectory_embed_dim)
        hidden_size = num_attention_heads * attention_head_dim

        self.rope = CosmosMultiViewRotaryPosEmbed(self.rope, num_views)
        if extra_pos_embed_type == "learnable":
            self.learnable_pos_embed = CosmosMultiViewLearnablePositionalEmbed(
                hidden_size, max_size, patch_size, num_views
            )
        elif extra_pos_embed_type == "sincos":
            # diffusers' forward calls `learnable_pos_embed` whenever extra_pos_embed_type is set
            self.learnable_pos_embed = CosmosMultiViewSinCosPositionalEmbed(
                hidden_size, max_size, patch_size, num_views
            )
        for block in self.transformer_blocks:
            block.attn2.set_processor(CosmosMultiViewCrossAttnProcessor(num_views))

        self.view_embeddings = nn.Embedding(num_views, view_embed_dim) if view_embed_dim > 0 else None
        self.frame_repeat_embedding = nn.Linear(1, view_embed_dim) if add_frame_repeat_embedding else None
        self.trajectory_embedding = nn.Linear(trajectory_dim, trajectory_embed_dim) if trajectory_dim > 0 else None

    @classmethod
    def from_video2world(cls, base: CosmosTransformer3DModel, **extra_config) -> "CosmosMultiViewTransformer3DModel":
        """A multi-view DiT that starts as `base`: every weight copied, zero patch-embed columns for the new channels.

        With one view it computes exactly what `base` computes. With V views it differs from running `base` on each
        view alone, because self-attention spans all views (as in the reference); cross-attention and positions are
        per view.
        """
        _check_extra_config(
            cls, extra_config,
            ["num_views", "view_embed_dim", "trajectory_dim", "trajectory_embed_dim", "add_frame_repeat_embedding",
             "trajectory_mean", "trajectory_std"],
        )
        config = {**base_config_dict(base), **extra_config}
        model = cls(**config)
        new_channels = model.config.view_embed_dim + model.config.trajectory_embed_dim
        load_base_weights_with_new_patch_channels(model, base, position=base.config.in_channels, count=new_channels)
        return model.train(base.training)

    def set_trajectory_normalization(self, mean, std) -> None:
        """Store per-dimension trajectory statistics in the config (saved with the model); the trajectory Linear then
        reads ``(trajectory - mean) / std``. Set them before training: the layer learns on that scale."""
        if self.trajectory_embedding is None:
            raise ValueError("this model was built with trajectory_dim=0: there is no trajectory to normalise")
        mean = [float(v) for v in mean]
        std = [float(v) for v in std]
        check_input_statistics(mean, std, self.config.trajectory_dim, "trajectory")
        self.register_to_config(trajectory_mean=mean, trajectory_std=std)

    def embed_views(self, batch, frames_per_view, height, width, view_indices=None, trajectory=None,
                    frame_repeat=None, dtype=None, device=None) -> torch.Tensor | None:
        """The view (+ trajectory) channels `[B, view_embed_dim + trajectory_embed_dim, V*T, H, W]`, or None."""
        config = self.config
        views = config.num_views
        channels = []
        if self.view_embeddings is not None:
            if view_indices is None:
                view_indices = torch.arange(views, device=device)
            view_indices = torch.as_tensor(view_indices, device=device)
            if view_indices.ndim == 1:
                view_indices = view_indices[None].expand(batch, -1)
            if view_indices.ndim != 2 or view_indices.shape != (batch, views):
                raise ValueError(
                    f"view_indices must be [num_views] = [{views}] or [B, num_views] = [{batch}, {views}], got shape "
                    f"{tuple(view_indices.shape)}"
                )
            if view_indices.is_floating_point() or view_indices.min() < 0 or view_indices.max() >= views:
                raise ValueError(f"view_indices must be integers in [0, {views - 1}], got {view_indices.tolist()}")
            embedding = self.view_embeddings(view_indices.long())  # [B, V, Dv]
            if self.frame_repeat_embedding is not None:
                if frame_repeat is None:
                    frame_repeat = torch.zeros(batch, views, device=device)
                frame_repeat = torch.as_tensor(frame_repeat, device=device)
                if frame_repeat.shape != (batch, views):
                    raise ValueError(f"frame_repeat must be [B, num_views] = [{batch}, {views}], got "
                                     f"{tuple(frame_repeat.shape)}")
                weight = self.frame_repeat_embedding.weight
                embedding = embedding + self.frame_repeat_embedding(frame_repeat[..., None].to(weight.dtype))
            embedding = embedding.permute(0, 2, 1)[:, :, :, None, None, None]  # [B, Dv, V, 1, 1, 1]
            embedding = embedding.expand(-1, -1, -1, frames_per_view, height, width).flatten(2, 3)
            channels.append(embedding)
        elif frame_repeat is not None:
            raise ValueError("frame_repeat given, but this model has no frame-repeat embedding")
        if self.trajectory_embedding is not None:
            if trajectory is None:
                raise ValueError(f"this model needs `trajectory` [B, {config.trajectory_dim}] (flattened)")
            trajectory = trajectory.reshape(trajectory.shape[0], -1) if trajectory.ndim > 2 else trajectory
            if trajectory.ndim != 2 or trajectory.shape != (batch, config.trajectory_dim):
                raise ValueError(
                    f"trajectory must have {config.trajectory_dim} values per sample ([B, {config.trajectory_dim}], "
                    f"or [B, ...] flattening to it), got shape {tuple(trajectory.shape)}"
                )
            if not torch.isfinite(trajectory).all():
                raise ValueError("trajectory contains NaN or infinite values")
            if config.get("trajectory_std") is not None:
                trajectory = (trajectory - trajectory.new_tensor(config["trajectory_mean"])) / trajectory.new_tensor(
                    config["trajectory_std"])
            embedding = self.trajectory_embedding(trajectory.to(self.trajectory_embedding.weight.dtype))  # [B, Dt]
            channels.append(embedding[:, :, None, None, None].expand(-1, -1, views * frames_per_view, height, width))
        elif trajectory is not None:
            raise ValueError("trajectory given, but this model was built with trajectory_dim=0")
        if not channels:
            return None
        return torch.cat(channels, dim=1).to(dtype)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        fps: int | None = None,
        condition_mask: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        view_indices: torch.Tensor | None = None,
        trajectory: torch.Tensor | None = None,
        frame_repeat: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
        **kwargs,
    ):
        """`CosmosTransformer3DModel.forward` on `hidden_states` `[B, C, V*T, H, W]` (views along time, view-major)
        with per-view text `encoder_hidden_states` `[B, V*L, D]` or `[B, V, L, D]`, optional `view_indices`
        (`[V]` or `[B, V]`, default ``0..V-1``), `trajectory` `[B, trajectory_dim]` and `frame_repeat` `[B, V]`."""
        views = self.config.num_views
        batch, _, frames, height, width = hidden_states.shape
        frames_per_view = _split_views(frames, views)
        if isinstance(encoder_hidden_states, tuple):
            raise ValueError("multi-view DiT takes text embeddings only, not (text, image) context")
        if encoder_hidden_states.ndim == 4:
            if encoder_hidden_states.shape[1] != views:
                raise ValueError(f"encoder_hidden_states [B, V, L, D] has {encoder_hidden_states.shape[1]} views, the "
                                 f"model {views}")
            encoder_hidden_states = encoder_hidden_states.flatten(1, 2)
        if encoder_hidden_states.ndim != 3 or encoder_hidden_states.shape[1] % views:
            raise ValueError(
                f"encoder_hidden_states must be [B, V*L, D] (view-major, {views} views) or [B, V, L, D], got shape "
                f"{tuple(encoder_hidden_states.shape)}"
            )
        if attention_mask is not None and attention_mask.shape[-1] != encoder_hidden_states.shape[1]:
            raise ValueError(f"attention_mask must be [B, V*L] = [B, {encoder_hidden_states.shape[1]}], got "
                             f"{tuple(attention_mask.shape)}")
        view_channels = self.embed_views(batch, frames_per_view, height, width, view_indices, trajectory,
                                         frame_repeat, dtype=hidden_states.dtype, device=hidden_states.device)
        extra = [c for c in (condition_mask, view_channels) if c is not None]
        return super().forward(
            hidden_states=hidden_states,
            timestep=timestep,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
            fps=fps,
            condition_mask=torch.cat(extra, dim=1) if extra else None,
            padding_mask=padding_mask,
            return_dict=return_dict,
            **kwargs,
        )


__all__ = [
    "CosmosMultiViewCrossAttnProcessor",
    "CosmosMultiViewLearnablePositionalEmbed",
    "CosmosMultiViewRotaryPosEmbed",
    "CosmosMultiViewSinCosPositionalEmbed",
    "CosmosMultiViewTransformer3DModel",
    "REFERENCE_TRAJECTORY_DIM",
    "trajectory_statistics",
]
