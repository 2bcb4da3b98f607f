"""Action-conditioned Cosmos-Predict1 DiT (robot actions -> AdaLN modulation), as Video2World-Sample-ActionCond.

The reference (cosmos-predict1 `diffusion/training/networks/general_dit_action.py`,
`ActionConditionalVideoExtendGeneralDIT`) adds two timm-style MLPs to a Video2World DiT (D = model width):

* ``action_embedder_B_D``:  Linear(7 -> 4D), GELU(tanh), Linear(4D -> D)   (keys `fc1`, `fc2`, with biases)
* ``action_embedder_B_3D``: Linear(7 -> 4D), GELU(tanh), Linear(4D -> 3D)

and feeds them the action of the first predicted frame only (``action[:, 0, :]``: the released model predicts one
frame per step). Its forward then does, in this order::

    timesteps_B_D, adaln_lora_B_3D = t_embedder(timesteps)
    affline_emb_B_D = timesteps_B_D                      # the AdaLN input is taken here ...
    timesteps_B_D = timesteps_B_D + action_embedder_B_D(action)      # ... so this sum is never used
    adaln_lora_B_3D = adaln_lora_B_3D + action_embedder_B_3D(action)

so, as written, **only the AdaLN-LoRA path receives the action**: the B_D embedding is computed (and trained with
a zero gradient) but not added to the timestep embedding that the AdaLN layers normalise. This model matches that by
default; ``fix_timestep_action_path=True`` also adds the B_D embedding to the timestep embedding before its RMSNorm
(what the reference's docstring, "action embedding is added to timestep embedding", describes).

In diffusers' `CosmosTransformer3DModel` the reference's ``timesteps_B_D`` is the sinusoidal projection inside
`time_embed` (``embedded_timestep = norm(proj)``) and ``adaln_lora_B_3D`` is `temb`. The action embeddings are added
there by :class:`CosmosActionTimestepEmbedding`, a `CosmosEmbedding` with the same weights; the rest of diffusers'
forward is reused unchanged.
"""

from __future__ import annotations

import torch
from diffusers import CosmosTransformer3DModel
# diffusers picks a pipeline component's loader by looking up `ModelMixin` in the module that defines its class
from diffusers import ModelMixin  # noqa: F401
from diffusers.configuration_utils import register_to_config
from diffusers.models.transformers.transformer_cosmos import CosmosEmbedding
from torch import nn

from ..tokenizers.strict_loading import StrictLoadingMixin
from .camera_control import (
    _check_extra_config,
    base_config_dict,
    check_input_statistics,
    input_statistics,
    load_base_weights,
)


class CosmosActionEmbedder(nn.Module):
    """Two-layer MLP (timm `Mlp` layout: `fc1`, tanh-GELU, `fc2`, biases) from flattened actions to AdaLN inputs."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, action: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(action)))


def action_statistics(actions, min_std: float = 1e-3) -> tuple[list[float], list[float]]:
    """(mean, std) per action dimension of `actions` `[..., dim]` (std floored at `min_std`), for
    `set_action_normalization`."""
    return input_statistics(actions, min_std)


class CosmosActionTimestepEmbedding(CosmosEmbedding):
    """diffusers' `CosmosEmbedding` (same submodules and weights) whose outputs receive action embeddings.

    The model sets `action_embeddings = (embedding_B_D or None, embedding_B_3D)` for the duration of one forward;
    `embedding_B_D` (only with the fix) is added to the sinusoidal projection before the RMSNorm, `embedding_B_3D` to
    the AdaLN-LoRA embedding `temb`. Rows are repeated when the timestep is per frame (`[B, 1, T, 1, 1]`).
    """

    def __init__(self, embedding_dim: int, condition_dim: int) -> None:
        super().__init__(embedding_dim, condition_dim)
        self.action_embeddings = None

    def forward(self, hidden_states: torch.Tensor, timestep: torch.Tensor):
        if self.action_embeddings is None:
            return super().forward(hidden_states, timestep)
        embedding_B_D, embedding_B_3D = self.action_embeddings
        repeats = timestep.shape[0] // embedding_B_3D.shape[0]  # per-frame timesteps: B*T rows, frame-minor
        timesteps_proj = self.time_proj(timestep).type_as(hidden_states)
        temb = self.t_embedder(timesteps_proj) + embedding_B_3D.repeat_interleave(repeats, 0).type_as(hidden_states)
        if embedding_B_D is not None:
            timesteps_proj = timesteps_proj + embedding_B_D.repeat_interleave(repeats, 0).type_as(hidden_states)
        embedded_timestep = self.norm(timesteps_proj)
        return temb, embedded_timestep


# StrictLoadingMixin: `from_pretrained` refuses missing / unexpected weights (diffusers only logs them)
class CosmosActionConditionedTransformer3DModel(StrictLoadingMixin, CosmosTransformer3DModel):
    r"""Cosmos-Predict1 DiT conditioned on robot actions through the AdaLN(-LoRA) modulation.

    Takes every argument of diffusers' `CosmosTransformer3DModel` (`adaln_lora_dim` > 0, as Predict1) plus:

    Args:
        action_dim (`int`, defaults to 7): features of one action (the reference: end-effector translation 3,
            rotation 3, gripper 1).
        num_action_frames (`int`, defaults to 1): actions per sample; they are flattened to ``num_action_frames *
            action_dim`` inputs of the embedders. 1 is the reference (one predicted frame, the embedders read 7).
        action_hidden_dim (`int`, *optional*): hidden width of the embedders; default 4 x model width (reference).
        fix_timestep_action_path (`bool`, defaults to False): also add `action_embedder_B_D`'s output to the
            timestep embedding (the reference computes it but never uses it; see the module docstring).
        actions_per_latent_frame (`int`, *optional*): not the reference. With k (the VAE's temporal compression,
            4 for the nano tokenizers) the actions modulate each latent frame separately instead of the whole clip
            with one vector: latent frame j >= 1 reads its own k actions (those that lead into its frames) and the
            sum of all actions up to its last frame (where the end effector should be by then, relative to the first
            frame); latent frame 0 reads zeros. The embedders then take ``(k + 1) * action_dim`` inputs and the
            timestep is given per frame. A window of N actions must have ``1 + N / k`` latent frames. `None` (the
            default) keeps the reference: one embedding of all actions for every frame.
        action_mean, action_std (`list[float]`, *optional*): not the reference. Per-dimension statistics of the
            training actions; the embedders then read ``(action - mean) / std``. Raw end-effector deltas are a few
            millimetres per frame beside a 0/1 gripper value, so without this the translation barely moves the
            embedders' input (`set_action_normalization`; the training script's `model.normalize_actions`).
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
        action_dim: int = 7,
        num_action_frames: int = 1,
        action_hidden_dim: int | None = None,
        fix_timestep_action_path: bool = False,
        actions_per_latent_frame: int | None = None,
        action_mean: list[float] | None = None,
        action_std: list[float] | None = None,
    ) -> None:
        if action_dim < 1 or num_action_frames < 1:
            raise ValueError(
                f"action_dim and num_action_frames must be >= 1, got {action_dim} and {num_action_frames}"
            )
        if actions_per_latent_frame is not None:
            if actions_per_latent_frame < 1 or num_action_frames % actions_per_latent_frame:
                raise ValueError(f"actions_per_latent_frame must be >= 1 and divide num_action_frames "
                                 f"({num_action_frames}), got {actions_per_latent_frame}")
            if patch_size[0] != 1:
                raise ValueError(f"actions_per_latent_frame needs a temporal patch size of 1, got {patch_size[0]}")
        check_input_statistics(action_mean, action_std, action_dim, "action")
        super().__init__(
            in_channels=in_channels,
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
        hidden_size = num_attention_heads * attention_head_dim
        self.time_embed = CosmosActionTimestepEmbedding(hidden_size, hidden_size)
        if actions_per_latent_frame is None:
            action_features = action_dim * num_action_frames
        else:  # the latent frame's own actions + the running sum of all actions so far
            action_features = action_dim * (actions_per_latent_frame + 1)
        action_hidden_dim = action_hidden_dim or 4 * hidden_size
        self.action_embedder_B_D = CosmosActionEmbedder(action_features, action_hidden_dim, hidden_size)
        self.action_embedder_B_3D = CosmosActionEmbedder(action_features, action_hidden_dim, 3 * hidden_size)

    @classmethod
    def from_video2world(
        cls, base: CosmosTransformer3DModel, **extra_config
    ) -> "CosmosActionConditionedTransformer3DModel":
        """An action-conditioned DiT that starts as `base`: every weight copied, the embedders' last layers zero.

        Zero `fc2` layers make the action embeddings 0, so the new model computes exactly what `base` computes for
        any action (their gradients are non-zero, so training moves them on the first step).
        """
        _check_extra_config(
            cls, extra_config,
            ["action_dim", "num_action_frames", "action_hidden_dim", "fix_timestep_action_path",
             "actions_per_latent_frame", "action_mean", "action_std"],
        )
        model = cls(**{**base_config_dict(base), **extra_config})
        for embedder in (model.action_embedder_B_D, model.action_embedder_B_3D):
            nn.init.zeros_(embedder.fc2.weight)
            nn.init.zeros_(embedder.fc2.bias)
        load_base_weights(model, base)
        return model.train(base.training)

    def set_action_normalization(self, mean, std) -> None:
        """Store per-dimension action statistics in the config (saved with the model); the embedders then read
        ``(action - mean) / std``. Set them before training: the embedders learn on that scale."""
        mean = [float(v) for v in mean]
        std = [float(v) for v in std]
        check_input_statistics(mean, std, self.config.action_dim, "action")
        self.register_to_config(action_mean=mean, action_std=std)

    def action_features(self, action: torch.Tensor) -> torch.Tensor:
        """The embedders' input for `action` `[B, N, dim]`: `[B, N * dim]` (reference) or, with
        `actions_per_latent_frame` k, `[B * (1 + N / k), (k + 1) * dim]` (frame-minor rows; see the class docstring)."""
        if self.config.get("action_std") is not None:
            mean = action.new_tensor(self.config["action_mean"])
            action = (action - mean) / action.new_tensor(self.config["action_std"])
        action = action.to(self.action_embedder_B_3D.fc1.weight.dtype)
        k = self.config.get("actions_per_latent_frame")
        if k is None:
            return action.flatten(1)
        batch, num_actions, dim = action.shape
        own = action.reshape(batch, num_actions // k, k * dim)
        running_sum = action.cumsum(dim=1)[:, k - 1 :: k]  # summed up to each latent frame's last frame
        features = torch.cat([own, running_sum], dim=2)
        first = features.new_zeros(batch, 1, features.shape[2])  # latent frame 0 is the first frame: no action yet
        return torch.cat([first, features], dim=1).flatten(0, 1)

    def embed_action(self, action: torch.Tensor):
        """(B_D embedding, or None when the reference quirk is kept; B_3D embedding) for `action` `[B, N, dim]`."""
        action = self.action_features(action)
        embedding_B_3D = self.action_embedder_B_3D(action)
        embedding_B_D = self.action_embedder_B_D(action)  # computed either way, as the reference does
        if self.config.fix_timestep_action_path:
            return embedding_B_D, embedding_B_3D
        # the reference's unused B_D embedding: kept in the graph with weight 0 (adds exactly 0) so that it gets a zero
        # gradient, as in the reference, instead of none (DDP refuses parameters that take no part in the loss)
        return None, embedding_B_3D + 0.0 * embedding_B_D.sum(dim=1, keepdim=True)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        fps: int | None = None,
        condition_mask: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        action: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
        **kwargs,
    ):
        """`CosmosTransformer3DModel.forward` with `action` `[B, num_action_frames, action_dim]` (required)."""
        shape = (hidden_states.shape[0], self.config.num_action_frames, self.config.action_dim)
        if action is None:
            raise ValueError(f"{type(self).__name__} needs `action` of shape [B, num_action_frames, action_dim] = "
                             f"{list(shape)}")
        if action.ndim == 2 and self.config.num_action_frames == 1:
            action = action[:, None]
        if action.ndim != 3 or action.shape[2] != shape[2]:
            raise ValueError(f"action must be [B, num_action_frames, {shape[2]}] (action_dim {shape[2]}), got "
                             f"shape {tuple(action.shape)}")
        if action.shape[1] != shape[1]:
            raise ValueError(f"this model takes {shape[1]} actions per sample (num_action_frames), got "
                             f"{action.shape[1]}")
        if action.shape[0] != shape[0]:
            raise ValueError(f"action batch size {action.shape[0]} differs from hidden_states' {shape[0]}")
        if not torch.isfinite(action).all():
            raise ValueError("action contains NaN or infinite values")
        k = self.config.get("actions_per_latent_frame")
        if k is not None:
            latent_frames = hidden_states.shape[2]
            if latent_frames != 1 + shape[1] // k:
                raise ValueError(f"with actions_per_latent_frame={k}, {shape[1]} actions need 1 + {shape[1]} / {k} = "
                                 f"{1 + shape[1] // k} latent frames, got {latent_frames}")
            if timestep.ndim == 1:  # one noise level per sample -> the same level for each frame, modulated per frame
                timestep = timestep.reshape(-1, 1, 1, 1, 1).expand(shape[0], 1, latent_frames, 1, 1)
        self.time_embed.action_embeddings = self.embed_action(action)
        try:
            return super().forward(
                hidden_states=hidden_states,
                timestep=timestep,
                encoder_hidden_states=encoder_hidden_states,
                attention_mask=attention_mask,
                fps=fps,
                condition_mask=condition_mask,
                padding_mask=padding_mask,
                return_dict=return_dict,
                **kwargs,
            )
        finally:
            self.time_embed.action_embeddings = None


__all__ = ["CosmosActionConditionedTransformer3DModel", "CosmosActionEmbedder", "CosmosActionTimestepEmbedding",
           "action_statistics"]
