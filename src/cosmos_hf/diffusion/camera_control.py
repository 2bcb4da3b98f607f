"""Camera-controlled Cosmos-Predict1 DiT: Plücker-ray conditioning on the latent grid.

Camera control post-trains a Video2World DiT with 6 extra input channels: for every latent pixel and latent frame, the
Plücker coordinates of the camera ray through that pixel. The reference (cosmos-predict1
`diffusion/training/models/extend_model.py` + `networks/general_dit_video_conditioned.py`) concatenates
``[latent 16 | condition mask 1 | Plücker 6]`` and the DiT appends the padding-mask channel, so its patch embedding
(`net.x_embedder.proj.1.weight`) reads 24 channels. :class:`CosmosCameraControlTransformer3DModel` keeps exactly that
channel order on top of diffusers' `CosmosTransformer3DModel`: it hands ``cat([condition_mask, plucker])`` to the
parent's forward as the condition mask, and the parent appends the padding mask last.

Ray convention (documented because papers differ): cameras are OpenCV (x right, y down, z forward, as
`cosmos_hf.sim`); a ray is (moment, direction) = (o x d, d) with d the unit direction in the frame of the first
camera and o the camera centre there — the order CameraCtrl's ``ray_condition`` (``cat([cross(o, d), d])``) and the
post-training issue use. Poses are made relative to the first latent frame (``c2w[0]^-1 @ c2w[t]``), and camera
centres are scaled so that the largest distance between two of them is 1 (a static or rotating-only camera is left
unscaled), which makes the rays independent of the scene's metric scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from diffusers import CosmosTransformer3DModel
# diffusers picks a pipeline component's loader by looking up `ModelMixin` in the module that defines its class
from diffusers import ModelMixin  # noqa: F401
from diffusers.configuration_utils import register_to_config

from ..tokenizers.strict_loading import StrictLoadingMixin

PLUCKER_CHANNELS = 6
JOYSTICK_MOVES = ("forward", "back", "left", "right", "turn_left", "turn_right", "up", "down", "stay")
# keys of a diffusers config that are bookkeeping, not constructor arguments
_PRIVATE_CONFIG_KEYS = ("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values")


# ---------------------------------------------------------------------------------------------------- camera geometry


def _as_float64_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must be a float tensor or array, got dtype {value.dtype}")
    value = value.to(torch.float64)
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return value


def latent_frame_poses(cam_to_world, temporal_compression: int) -> torch.Tensor:
    """Camera poses of the latent frames from the poses of the pixel frames (`[T, 4, 4]` or `[B, T, 4, 4]`).

    Cosmos' causal video tokenizers encode ``1 + k * n`` pixel frames into ``1 + n`` latent frames (k the temporal
    compression): latent frame 0 is pixel frame 0 alone, latent frame t >= 1 summarises pixel frames
    ``k(t-1)+1 .. kt``. Each latent frame takes the pose of its last pixel frame, i.e. pixel frames ``0, k, 2k, ...``
    (the first frame then every k-th). The reference reads precomputed `plucker_embeddings_downsample` from its data
    loader, whose frame choice is not in the public code; this is the choice consistent with the causal tokenizer.
    """
    poses = _as_float64_tensor(cam_to_world, "cam_to_world")
    if poses.ndim not in (3, 4) or poses.shape[-2:] != (4, 4):
        raise ValueError(f"cam_to_world must be [T, 4, 4] or [B, T, 4, 4], got shape {tuple(poses.shape)}")
    if int(temporal_compression) != temporal_compression or temporal_compression < 1:
        raise ValueError(f"temporal_compression must be a positive integer, got {temporal_compression}")
    k = int(temporal_compression)
    num_frames = poses.shape[-3]
    if (num_frames - 1) % k != 0:
        raise ValueError(
            f"a causal video tokenizer with temporal compression {k} needs 1 + {k}*n pixel frames, got {num_frames}"
        )
    return poses[..., ::k, :, :]


# bottom rows and the zeros of K are exact in any real camera file (float32 rounding aside)
_EXACT_TOLERANCE = 1e-6
# rotations: what float32 poses composed over a few hundred steps keep
_ROTATION_TOLERANCE = 1e-3


def check_rigid_poses(poses: torch.Tensor) -> None:
    """Refuse [..., 4, 4] poses that are not rigid (checked in float64): a transposed, scaled, sheared or mirrored
    pose gives plausible-looking wrong rays. `plucker_rays` and the Camera pipeline's inputs both go through it."""
    poses = poses.double()
    rotations = poses[..., :3, :3]
    identity = torch.eye(3, dtype=poses.dtype)
    orthogonality = (rotations.transpose(-1, -2) @ rotations - identity).abs().amax().item()
    determinant = torch.linalg.det(rotations).amin().item()
    bottom = (poses[..., 3, :] - poses.new_tensor([0.0, 0.0, 0.0, 1.0])).abs().amax().item()
    if orthogonality > _ROTATION_TOLERANCE or determinant < 0 or bottom > _EXACT_TOLERANCE:
        raise ValueError(
            f"cam_to_world must hold rigid poses: a rotation (R^T R = I within {_ROTATION_TOLERANCE:g}, det R = +1) "
            "and a translation over a bottom row [0, 0, 0, 1] (a transposed pose has its translation in the bottom "
            f"row); got max |R^T R - I| = {orthogonality:.3g}, min det R = {determinant:.3g}, bottom-row error "
            f"{bottom:.3g}"
        )


def _relative_normalised_poses(cam_to_world: torch.Tensor) -> torch.Tensor:
    """[B, T, 4, 4] poses relative to frame 0, camera centres scaled to a largest pairwise distance of 1."""
    relative = torch.linalg.inv(cam_to_world[:, :1]) @ cam_to_world
    centres = relative[..., :3, 3]  # [B, T, 3]
    largest_distance = torch.cdist(centres, centres).flatten(1).amax(dim=1)  # [B]
    # a camera that only rotates (or stands still) has no scale to normalise: leave its centres as they are
    scale = torch.where(largest_distance > 1e-8, largest_distance, torch.ones_like(largest_distance))
    relative = relative.clone()
    relative[..., :3, 3] = centres / scale[:, None, None]
    return relative


def plucker_rays(intrinsics, cam_to_world, latent_size, image_size=None) -> torch.Tensor:
    """Plücker coordinates (moment o x d, unit direction d) of the ray through every latent pixel: `[B, 6, T, h, w]`.

    Args:
        intrinsics: OpenCV K in pixels of `image_size`: `[3, 3]` (shared by all frames), `[T, 3, 3]` or `[B, T, 3, 3]`
            (same leading dims as `cam_to_world`).
        cam_to_world: OpenCV camera-to-world poses of the LATENT frames, `[T, 4, 4]` or `[B, T, 4, 4]` (map a
            pixel-frame trajectory with :func:`latent_frame_poses` first).
        latent_size: `(h, w)` of the latent grid.
        image_size: `(H, W)` of the images K refers to; defaults to `latent_size` (K given in latent pixels).

    Latent pixel (i, j) covers image pixels ``[i*H/h, (i+1)*H/h) x [j*W/w, (j+1)*W/w)``; its ray goes through the
    centre of that block, i.e. image coordinates ``((j + 0.5) W/w - 0.5, (i + 0.5) H/h - 0.5)`` (OpenCV puts pixel
    centres on integer coordinates). Poses are made relative to the first frame and their centres normalised (see the
    module docstring). Computed in float64, returned as float32.
    """
    poses = _as_float64_tensor(cam_to_world, "cam_to_world")
    if poses.ndim == 3:
        poses = poses[None]
    if poses.ndim != 4 or poses.shape[-2:] != (4, 4):
        raise ValueError(f"cam_to_world must be [T, 4, 4] or [B, T, 4, 4], got shape {tuple(poses.shape)}")
    batch, frames = poses.shape[:2]
    if frames < 1:
        raise ValueError("cam_to_world needs at least one frame")
    K = _as_float64_tensor(intrinsics, "intrinsics")
    if K.shape[-2:] != (3, 3) or K.ndim not in (2, 3, 4):
        raise ValueError(f"intrinsics must be [3, 3], [T, 3, 3] or [B, T, 3, 3], got shape {tuple(K.shape)}")
    if K.ndim == 2:
        K = K.expand(batch, frames, 3, 3)
    elif K.ndim == 3:
        if K.shape[0] != frames:
            raise ValueError(f"intrinsics [T, 3, 3] has {K.shape[0]} frames but cam_to_world has {frames}")
        K = K[None].expand(batch, frames, 3, 3)
    elif K.shape[:2] != (batch, frames):
        raise ValueError(f"intrinsics leading dims {tuple(K.shape[:2])} differ from cam_to_world's {(batch, frames)}")
    if (K[..., 0, 0] <= 0).any() or (K[..., 1, 1] <= 0).any():
        raise ValueError("intrinsics must have positive focal lengths fx, fy")
    # a transposed K (cx, cy in the bottom row) keeps fx, fy > 0 and inverts fine, but bends every ray
    lower = torch.stack([K[..., 1, 0], K[..., 2, 0], K[..., 2, 1], K[..., 2, 2] - 1], dim=-1).abs().amax().item()
    if lower > _EXACT_TOLERANCE:
        raise ValueError(
            "intrinsics must be OpenCV K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]] (second row starting with 0, bottom "
            f"row [0, 0, 1]; a transposed K has cx, cy in the bottom row); got an entry {lower:.3g} off"
        )
    check_rigid_poses(poses)
    h, w = _pair(latent_size, "latent_size")
    H, W = (h, w) if image_size is None else _pair(image_size, "image_size")

    ys = (torch.arange(h, dtype=torch.float64) + 0.5) * (H / h) - 0.5
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) * (W / w) - 0.5
    v, u = torch.meshgrid(ys, xs, indexing="ij")
    pixels = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # [h, w, 3] homogeneous pixel coordinates
    directions_camera = torch.einsum("btij,hwj->bthwi", torch.linalg.inv(K), pixels)

    relative = _relative_normalised_poses(poses)
    rotation, centre = relative[..., :3, :3], relative[..., :3, 3]
    directions = torch.einsum("btij,bthwj->bthwi", rotation, directions_camera)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    origins = centre[:, :, None, None, :].expand_as(directions)
    moments = torch.cross(origins, directions, dim=-1)
    rays = torch.cat([moments, directions], dim=-1)  # [B, T, h, w, 6]
    return rays.permute(0, 4, 1, 2, 3).contiguous().float()


def _pair(size, name: str) -> tuple[int, int]:
    if isinstance(size, int) or len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise ValueError(f"{name} must be a pair of positive integers (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def _rotation_about_y(degrees: float) -> torch.Tensor:
    a = math.radians(degrees)
    return torch.tensor(
        [[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]], dtype=torch.float64
    )


def joystick_trajectory(
    moves: str | Sequence[str],
    num_frames: int,
    step: float = 0.1,
    turn_degrees: float = 5.0,
    start_cam_to_world=None,
) -> torch.Tensor:
    """A camera path from joystick moves: `[num_frames, 4, 4]` OpenCV cam_to_world poses (float32).

    `moves` is one move for every step, or a list of ``num_frames - 1`` moves (move k takes frame k to frame k+1),
    each one of `JOYSTICK_MOVES`. Moves are in the camera's own frame (OpenCV: x right, y down, z forward):
    "forward"/"back" translate by `step` along +z/-z, "right"/"left" along +x/-x, "down"/"up" along +y/-y;
    "turn_left"/"turn_right" yaw by `turn_degrees` about the camera's y axis (turn_left swings the view towards -x).
    Frame 0 is `start_cam_to_world` (identity by default).
    """
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames}")
    num_frames = int(num_frames)
    if isinstance(moves, str):
        moves = [moves] * (num_frames - 1)
    moves = list(moves)
    if len(moves) != num_frames - 1:
        raise ValueError(
            f"need one move per frame step ({num_frames - 1} for {num_frames} frames) or a single move, got "
            f"{len(moves)}"
        )
    unknown = sorted({m for m in moves if m not in JOYSTICK_MOVES})
    if unknown:
        raise ValueError(f"unknown joystick moves {unknown}; valid moves: {list(JOYSTICK_MOVES)}")
    if not (math.isfinite(step) and math.isfinite(turn_degrees)):
        raise ValueError(f"step and turn_degrees must be finite, got {step} and {turn_degrees}")
    start = torch.eye(4, dtype=torch.float64)
    if start_cam_to_world is not None:
        start = _as_float64_tensor(start_cam_to_world, "start_cam_to_world")
        if start.shape != (4, 4):
            raise ValueError(f"start_cam_to_world must be [4, 4], got shape {tuple(start.shape)}")
    translations = {
        "forward": (0.0, 0.0, step), "back": (0.0, 0.0, -step), "right": (step, 0.0, 0.0),
        "left": (-step, 0.0, 0.0), "down": (0.0, step, 0.0), "up": (0.0, -step, 0.0),
    }
    poses = [start]
    for move in moves:
        local = torch.eye(4, dtype=torch.float64)  # the move expressed in the current camera's frame
        if move in translations:
            local[:3, 3] = torch.tensor(translations[move], dtype=torch.float64)
        elif move == "turn_left":
            local[:3, :3] = _rotation_about_y(-turn_degrees)
        elif move == "turn_right":
            local[:3, :3] = _rotation_about_y(turn_degrees)
        poses.append(poses[-1] @ local)
    return torch.stack(poses).float()


# ---------------------------------------------------------------------------------------------------- model helpers


def base_config_dict(model: CosmosTransformer3DModel) -> dict:
    """Constructor kwargs of a diffusers model's config (bookkeeping keys removed)."""
    return {k: v for k, v in dict(model.config).items() if k not in _PRIVATE_CONFIG_KEYS}


def insert_zero_input_channels(
    patch_embed_weight: torch.Tensor, patch_volume: int, position: int, count: int
) -> torch.Tensor:
    """Insert `count` zero input channels at channel index `position` of a `CosmosPatchEmbed.proj` weight.

    The patch embedding flattens each patch channel-major (``c * p_t * p_h * p_w + ...``), so a channel is a block of
    `patch_volume` consecutive columns. Zero columns make the new channels invisible: the model computes what it
    computed before, whatever the new channels hold.
    """
    out_features, in_features = patch_embed_weight.shape
    if in_features % patch_volume:
        raise ValueError(f"patch-embed width {in_features} is not a multiple of the patch volume {patch_volume}")
    channels = patch_embed_weight.reshape(out_features, in_features // patch_volume, patch_volume)
    zeros = channels.new_zeros(out_features, count, patch_volume)
    expanded = torch.cat([channels[:, :position], zeros, channels[:, position:]], dim=1)
    return expanded.reshape(out_features, -1)


def load_base_weights(model, base, state: dict | None = None):
    """Copy `state` (default: `base.state_dict()`) into `model` (non-strict: new layers keep their own init) and
    give every parameter the device and dtype its counterpart has in `base` (new ones: `base`'s dtype), so a bf16 base
    with float32-kept modules gives the same mix. Returns the names of the parameters `base` did not have."""
    state = base.state_dict() if state is None else state
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"base weights without a place in {type(model).__name__}: {unexpected}")
    base_params = dict(base.named_parameters())
    for name, param in model.named_parameters():
        reference = base_params.get(name)
        dtype = reference.dtype if reference is not None else base.dtype
        param.data = param.data.to(device=base.device, dtype=dtype)
    for name, buffer in model.named_buffers():
        buffer.data = buffer.data.to(device=base.device)
    return missing


def load_base_weights_with_new_patch_channels(model, base, position: int, count: int):
    """Copy every weight of `base` into `model`; the patch embedding gains `count` zero channels at `position`."""
    state = base.state_dict()
    key = "patch_embed.proj.weight"
    patch_volume = math.prod(base.config.patch_size)
    state[key] = insert_zero_input_channels(state[key], patch_volume, position, count)
    return load_base_weights(model, base, state)


def check_input_statistics(mean, std, dim: int, name: str) -> None:
    """Validate per-dimension input statistics (`{name}_mean`, `{name}_std`) stored in a model config."""
    if (mean is None) != (std is None):
        raise ValueError(f"{name}_mean and {name}_std must be given together")
    if std is None:
        return
    if len(mean) != dim or len(std) != dim:
        raise ValueError(f"{name}_mean and {name}_std need {dim} values ({name}_dim), got {len(mean)} and {len(std)}")
    if not all(math.isfinite(v) for v in [*mean, *std]) or min(std) <= 0:
        raise ValueError(f"{name}_mean must be finite and {name}_std finite and > 0, got {list(mean)} / {list(std)}")


def input_statistics(values, min_std: float = 1e-3) -> tuple[list[float], list[float]]:
    """(mean, std) per dimension of `values` `[..., dim]`; std is floored at `min_std` so that a dimension that
    never varies in the data (a fixed wrist roll, a rig's constant height) is not blown up at inference."""
    values = torch.as_tensor(values, dtype=torch.float64)
    values = values.reshape(-1, values.shape[-1])
    return values.mean(0).tolist(), values.std(0).clamp(min=min_std).tolist()


def _check_extra_config(cls, extra_config: dict, allowed: Sequence[str]):
    unknown = sorted(set(extra_config) - set(allowed))
    if unknown:
        raise TypeError(f"{cls.__name__}.from_video2world got unknown options {unknown}; valid: {sorted(allowed)}")


# ---------------------------------------------------------------------------------------------------- the model


# StrictLoadingMixin: `from_pretrained` refuses missing / unexpected weights (diffusers only logs them)
class CosmosCameraControlTransformer3DModel(StrictLoadingMixin, CosmosTransformer3DModel):
    r"""Cosmos-Predict1 DiT conditioned on camera rays (Plücker coordinates per latent pixel and frame).

    Takes every argument of diffusers' `CosmosTransformer3DModel` plus:

    Args:
        camera_channels (`int`, defaults to 6): channels of the camera conditioning (6 Plücker coordinates).

    `in_channels` keeps its base meaning (latent channels + the condition-mask channel of a Video2World model + any
    condition-frame channels); the patch embedding reads ``in_channels + camera_channels (+ 1 padding mask)``
    channels, in the order ``[hidden_states | condition_mask | plucker | padding_mask]`` — the reference's 24-channel
    layout for a 16-channel latent.
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
        camera_channels: int = PLUCKER_CHANNELS,
    ) -> None:
        if camera_channels < 1:
            raise ValueError(f"camera_channels must be >= 1, got {camera_channels}")
        super().__init__(
            in_channels=in_channels + camera_channels,
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
        # the parent's decorated __init__ re-registered in_channels with the camera channels added: restore the base
        # meaning so that save_pretrained / from_pretrained round-trip
        self.register_to_config(in_channels=in_channels)

    @classmethod
    def from_video2world(
        cls, base: CosmosTransformer3DModel, **extra_config
    ) -> "CosmosCameraControlTransformer3DModel":
        """A camera-control DiT that starts as `base`: every weight copied, zero patch-embed columns for the rays.

        The zero columns make the new model compute exactly what `base` computes, whatever the Plücker input, so
        post-training starts from the Video2World model (the new columns learn from the first step on).
        """
        _check_extra_config(cls, extra_config, ["camera_channels"])
        config = {**base_config_dict(base), **extra_config}
        model = cls(**config)
        # the rays sit after the base's own input channels (latent, condition mask, ...), before the padding mask
        load_base_weights_with_new_patch_channels(model, base, position=base.config.in_channels,
                                                  count=model.config.camera_channels)
        return model.train(base.training)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        fps: int | None = None,
        condition_mask: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        plucker: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
        **kwargs,
    ):
        """`CosmosTransformer3DModel.forward` with `plucker` `[B, camera_channels, T, H, W]` (required; see
        :func:`plucker_rays`), on the same latent grid as `hidden_states`."""
        if plucker is None:
            raise ValueError(
                f"{type(self).__name__} needs `plucker`: camera rays [B, {self.config.camera_channels}, T, H, W] on "
                "the latent grid (see cosmos_hf.diffusion.plucker_rays)"
            )
        batch, _, frames, height, width = hidden_states.shape
        expected = (batch, self.config.camera_channels, frames, height, width)
        if plucker.ndim != 5 or tuple(plucker.shape) != expected:
            raise ValueError(f"plucker must have shape {expected} (like hidden_states), got {tuple(plucker.shape)}")
        if not torch.isfinite(plucker).all():
            raise ValueError("plucker contains NaN or infinite values")
        plucker = plucker.to(hidden_states.dtype)
        extra_channels = plucker if condition_mask is None else torch.cat([condition_mask, plucker], dim=1)
        return super().forward(
            hidden_states=hidden_states,
            timestep=timestep,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
            fps=fps,
            condition_mask=extra_channels,
            padding_mask=padding_mask,
            return_dict=return_dict,
            **kwargs,
        )


__all__ = [
    "CosmosCameraControlTransformer3DModel",
    "JOYSTICK_MOVES",
    "joystick_trajectory",
    "latent_frame_poses",
    "plucker_rays",
]
