"""Camera-controlled Video2World pipeline: continue an image or video along a given camera path.

The model (`CosmosCameraControlTransformer3DModel`, post-trained from a Video2World DiT) reads the camera path as
6-channel Plücker rays on the latent grid (`cosmos_hf.diffusion.camera_control.plucker_rays`: one ray per latent
pixel and latent frame, poses relative to the first frame, translations normalised), as Cosmos-Predict1's camera
post-training does. The path is either exact poses (`cam_to_world`, OpenCV: x right, y down, z forward, one per
output frame, as `cosmos_hf.sim.simulate_camera` records them) or joystick moves (`camera_moves`, turned into poses by
`joystick_trajectory`).

Sampling is the Video2World pipeline's (`CosmosVideo2WorldPipeline.__call__`: checks, sampler, guardrail, decoding);
the rays reach the DiT through a scoped forward pre-hook (`cosmos_hf.diffusion.post_training`).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import EDMEulerScheduler
from transformers import PreTrainedModel, PreTrainedTokenizerBase

# imported so that saved folders load: diffusers resolves our components through already-imported modules
from ..diffusion.camera_control import CosmosCameraControlTransformer3DModel
from ..diffusion.camera_control import check_rigid_poses, joystick_trajectory, latent_frame_poses, plucker_rays
from ..diffusion.post_training import extra_transformer_inputs
from ..guardrails.checker import CosmosSafetyChecker
from .pipeline_cosmos_text2world import CosmosVAE
from .pipeline_cosmos_video2world import CosmosVideo2WorldPipeline


def _as_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        try:
            tensor = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an array, got {type(value).__name__}") from None
    tensor = tensor.double()
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or inf")
    return tensor


class CosmosCameraControlPipeline(CosmosVideo2WorldPipeline):
    r"""Camera-controlled world generation (Cosmos-Predict1 camera post-training).

    Components and config are those of :class:`CosmosVideo2WorldPipeline`, plus `default_fov_degrees`: the vertical
    field of view of the intrinsics used when a call passes none.
    """

    # every argument spelled out: diffusers reads the saved config back through this signature, and `from_pipe` keeps
    # a component only when its class is in the type hint
    # post-training trains with the last conditioning latent frame as the reference only
    supported_condition_references = ("last_latent_frame",)

    def __init__(
        self,
        text_encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        transformer: CosmosCameraControlTransformer3DModel,
        vae: CosmosVAE,
        scheduler: EDMEulerScheduler,
        safety_checker: CosmosSafetyChecker | None = None,
        default_height: int = 704,
        default_width: int = 1280,
        default_num_frames: int = 121,
        default_fps: int = 30,
        max_sequence_length: int = 512,
        condition_frame_channels: bool = False,
        residual_from_last_condition_frame: bool = False,
        disable_safety_checker: bool = False,
        default_guidance_scale: float = 7.0,
        default_condition_detail_transfer: bool = False,
        default_condition_detail_gate: float | None = None,
        default_strength: float = 1.0,
        default_condition_keep_threshold: float | None = None,
        condition_reference: str = "last_latent_frame",
        default_fov_degrees: float = 50.0,
    ):
        super().__init__(
            text_encoder, tokenizer, transformer, vae, scheduler, safety_checker, default_height, default_width,
            default_num_frames, default_fps, max_sequence_length, condition_frame_channels,
            residual_from_last_condition_frame, disable_safety_checker, default_guidance_scale,
            default_condition_detail_transfer, default_condition_detail_gate, default_strength,
            default_condition_keep_threshold, condition_reference=condition_reference,
        )
        self.register_to_config(default_fov_degrees=default_fov_degrees)

    # ------------------------------------------------------------------ camera inputs
    def camera_path(self, cam_to_world, camera_moves, num_frames: int, batch: int) -> torch.Tensor:
        """[B, num_frames, 4, 4] camera-to-world poses from exact poses or joystick moves (exactly one of them)."""
        if (cam_to_world is None) == (camera_moves is None):
            raise ValueError("pass exactly one of `cam_to_world` ([T, 4, 4] poses, one per frame) or `camera_moves` "
                             "(joystick moves)")
        if camera_moves is not None:
            cam_to_world = joystick_trajectory(camera_moves, num_frames)
        poses = _as_tensor(cam_to_world, "cam_to_world")
        poses = poses[None] if poses.ndim == 3 else poses
        if poses.ndim != 4 or poses.shape[-2:] != (4, 4):
            raise ValueError(f"cam_to_world must be [T, 4, 4] or [B, T, 4, 4], got {tuple(poses.shape)}")
        if poses.shape[1] != num_frames:
            raise ValueError(f"the camera path has {poses.shape[1]} poses but num_frames={num_frames}: give one pose "
                             f"per output frame")
        if poses.shape[0] not in (1, batch):
            raise ValueError(f"cam_to_world batch {poses.shape[0]} does not match {batch} prompts/videos")
        check_rigid_poses(poses)  # before any model work (plucker_rays checks again, for training and direct calls)
        return poses.expand(batch, -1, -1, -1)

    def camera_intrinsics(self, intrinsics, num_frames: int, batch: int, height: int, width: int) -> torch.Tensor:
        """[B, 3, 3] or [B, T, 3, 3] pixel intrinsics at the output size (the config's fov when `None`)."""
        if intrinsics is None:
            from ..sim.world import intrinsics_from_fov

            intrinsics = intrinsics_from_fov(height, width, float(self.config.default_fov_degrees))
        k = _as_tensor(intrinsics, "intrinsics")
        if k.shape[-2:] != (3, 3) or k.ndim not in (2, 3, 4):
            raise ValueError(f"intrinsics must be [3, 3], [T, 3, 3] or [B, T, 3, 3], got {tuple(k.shape)}")
        if k.ndim == 2:
            return k[None].expand(batch, 3, 3)
        k = k[None] if k.ndim == 3 else k
        if k.shape[1] != num_frames:
            raise ValueError(f"got intrinsics for {k.shape[1]} frames but num_frames={num_frames}")
        if k.shape[0] not in (1, batch):
            raise ValueError(f"intrinsics batch {k.shape[0]} does not match {batch} prompts/videos")
        return k.expand(batch, -1, -1, -1)

    def plucker_input(self, cam_to_world, intrinsics, latent_size, image_size) -> torch.Tensor:
        """Plücker rays [B, 6, T', h, w] on the latent grid for pixel-frame poses [B, T, 4, 4] and intrinsics [B, 3, 3]
        or [B, T, 3, 3] (what training uses too)."""
        temporal = self.vae_scale_factor_temporal
        poses = latent_frame_poses(cam_to_world, temporal)
        if intrinsics.ndim == 4:  # per-frame intrinsics: the same frames as the poses (0, k, 2k, ...)
            intrinsics = intrinsics[:, ::temporal]
        else:  # [B, 3, 3]: one K per sample, for every frame
            intrinsics = intrinsics[:, None].expand(-1, poses.shape[1], -1, -1)
        return plucker_rays(intrinsics, poses, tuple(latent_size), tuple(image_size))

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        image=None,
        video=None,
        prompt: str | list[str] | None = None,
        cam_to_world=None,
        camera_moves=None,
        intrinsics=None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_videos_per_prompt: int = 1,
        **kwargs,
    ):
        r"""Continue `image` / `video` along a camera path.

        Args:
            cam_to_world: [T, 4, 4] or [B, T, 4, 4] OpenCV camera-to-world poses, one per output frame
                (T = `num_frames`, the conditioning frames included); only poses relative to the first frame matter.
            camera_moves: joystick moves instead of poses, e.g. `["forward", "left"]`
                (`cosmos_hf.diffusion.camera_control.joystick_trajectory`).
            intrinsics: [3, 3], [T, 3, 3] or [B, T, 3, 3] pixel intrinsics at the output size; `None` uses
                `default_fov_degrees`.
            Everything else as :class:`CosmosVideo2WorldPipeline` (`prompt`, `num_inference_steps`, `generator`,
            `output_type`, ...). Returns `CosmosPipelineOutput` with `.frames` as the Video2World pipeline's.
        """
        height = self.config.default_height if height is None else height
        width = self.config.default_width if width is None else width
        num_frames = self.config.default_num_frames if num_frames is None else num_frames
        prompts = 1 if prompt is None or isinstance(prompt, str) else len(prompt)
        if kwargs.get("prompt_embeds") is not None:
            prompts = kwargs["prompt_embeds"].shape[0]
        poses = self.camera_path(cam_to_world, camera_moves, num_frames, prompts)
        k = self.camera_intrinsics(intrinsics, num_frames, prompts, height, width)
        latent_size = (height // self.vae_scale_factor_spatial, width // self.vae_scale_factor_spatial)
        plucker = self.plucker_input(poses, k, latent_size, (height, width)).float()
        # one path per prompt; num_videos_per_prompt repeats each prompt's samples (as the text is repeated)
        with extra_transformer_inputs(self.transformer, plucker=plucker.repeat_interleave(num_videos_per_prompt, 0)):
            return super().__call__(image=image, video=video, prompt=prompt, height=height, width=width,
                                    num_frames=num_frames, num_videos_per_prompt=num_videos_per_prompt, **kwargs)
