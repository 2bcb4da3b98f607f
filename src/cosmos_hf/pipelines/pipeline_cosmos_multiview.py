"""Multi-view world generation: V synchronised camera views, one caption per view, optional rig trajectory.

The model (`CosmosMultiViewTransformer3DModel`, post-trained from a Video2World DiT) denoises all views at once, laid
out along time (`[B, C, V*T, h, w]`, view-major): self-attention spans every view, each view's tokens cross-attend
only to its own caption, and positions restart per view (cosmos-predict1's multi-view DiT). With conditioning frames
(`video=`), the first frames *of every view* are given, as the reference's multi-view Video2World; without them the
pipeline generates every view from text (the model's condition-mask channel is then all zeros).

Output layout (documented here because diffusers has no multi-view convention): `.frames` is
* `"np"`: an array `[B, V, T, H, W, 3]` in [0, 1];
* `"pt"`: a tensor `[B, V, T, 3, H, W]`;
* `"pil"`: a list (batch) of lists (views) of lists of PIL images (frames);
view v of sample b is camera v of the rig (`cosmos_hf.sim.multiview`: front, front-left, front-right, rear, ...).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import EDMEulerScheduler
from diffusers.pipelines.cosmos.pipeline_output import CosmosPipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..diffusion.edm import denoise

# imported so that saved folders load: diffusers resolves our components through already-imported modules
from ..diffusion.multiview import CosmosMultiViewTransformer3DModel
from ..diffusion.post_training import extra_transformer_inputs, multiview_condition
from ..guardrails.checker import CosmosSafetyChecker
from .input_checks import check_generator, check_number
from .pipeline_cosmos_text2world import CosmosVAE
from .pipeline_cosmos_video2world import CosmosVideo2WorldPipeline


MULTIVIEW_OUTPUT_TYPES = ("pil", "np", "pt")


class CosmosMultiViewPipeline(CosmosVideo2WorldPipeline):
    r"""Multi-view Cosmos-Predict1 world model (driving-rig post-training): per-view captions, optional conditioning
    frames per view and an optional rig trajectory.

    Components and config are those of :class:`CosmosVideo2WorldPipeline`; the transformer is a
    `CosmosMultiViewTransformer3DModel` (config `num_views`, `view_embed_dim`, `trajectory_dim`). Sizes and frame
    counts (`height`, `width`, `num_frames`) are per view.
    """

    # every argument spelled out: diffusers reads the saved config back through this signature, and `from_pipe` keeps
    # a component only when its class is in the type hint
    # post-training trains with the last conditioning latent frame as the reference only
    supported_condition_references = ("last_latent_frame",)

    def __init__(
        self,
        text_encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        transformer: CosmosMultiViewTransformer3DModel,
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
    ):
        super().__init__(
            text_encoder, tokenizer, transformer, vae, scheduler, safety_checker, default_height, default_width,
            default_num_frames, default_fps, max_sequence_length, condition_frame_channels,
            residual_from_last_condition_frame, disable_safety_checker, default_guidance_scale,
            default_condition_detail_transfer, default_condition_detail_gate, default_strength,
            default_condition_keep_threshold, condition_reference=condition_reference,
        )

    @property
    def num_views(self) -> int:
        return int(self.transformer.config["num_views"])

    # ------------------------------------------------------------------ inputs
    def view_prompts(self, prompt) -> list[list[str]]:
        """Per-sample lists of V captions: `prompt` is V strings (one sample) or B lists of V strings."""
        views = self.num_views
        if isinstance(prompt, str):
            raise ValueError(f"this model has {views} views: pass one caption per view (a list of {views} strings), "
                             f"e.g. [prompt] * {views} for a shared caption")
        if not isinstance(prompt, (list, tuple)) or not prompt:
            raise ValueError(f"prompt must be a list of {views} captions (one per view) or a list of such lists")
        samples = [list(prompt)] if all(isinstance(p, str) for p in prompt) else [list(p) for p in prompt]
        for sample in samples:
            if len(sample) != views or not all(isinstance(p, str) for p in sample):
                raise ValueError(f"got {len(sample)} captions for a {views}-view model: pass exactly one caption "
                                 f"(a string) per view")
        return samples

    def views_text_embeds(self, text: torch.Tensor) -> torch.Tensor:
        """Per-view text features [B, V, L, D] -> the DiT's view-major layout [B, V*L, D]."""
        if text.ndim != 4 or text.shape[1] != self.num_views:
            raise ValueError(f"per-view text features must be [B, {self.num_views}, L, D], got {tuple(text.shape)}")
        return text.flatten(1, 2)

    def trajectory_input(self, trajectory, batch: int | None = None) -> torch.Tensor | None:
        """The rig trajectory flattened to [B, trajectory_dim] (None for a model without trajectory input)."""
        trajectory_dim = int(self.transformer.config.get("trajectory_dim") or 0)
        if trajectory is None:
            if trajectory_dim:
                raise ValueError(f"this model is conditioned on the rig trajectory: pass `trajectory` with "
                                 f"{trajectory_dim} values per sample (e.g. [T, 3] rig positions)")
            return None
        if not trajectory_dim:
            raise ValueError("`trajectory` given, but this model has no trajectory input (trajectory_dim=0)")
        trajectory = torch.as_tensor(np.asarray(trajectory, dtype=np.float32)) if not isinstance(
            trajectory, torch.Tensor) else trajectory.float()
        if batch is not None and trajectory.numel() == trajectory_dim:
            trajectory = trajectory.reshape(1, trajectory_dim).expand(batch, -1)
        trajectory = trajectory.reshape(trajectory.shape[0], -1)
        if trajectory.shape[1] != trajectory_dim or (batch is not None and trajectory.shape[0] != batch):
            raise ValueError(f"trajectory must hold {trajectory_dim} values per sample (e.g. [T, 3] rig positions "
                             f"with T = trajectory_dim / 3), got shape {tuple(trajectory.shape)}")
        if not torch.isfinite(trajectory).all():
            raise ValueError("trajectory contains NaN or inf")
        return trajectory

    def views_conditioning_video(self, video, height, width, num_frames, batch) -> torch.Tensor:
        """Per-view conditioning frames -> [B, V, 3, T_cond, H, W] in [-1, 1].

        `video`: a tensor [B, V, 3, T, H, W] / [V, 3, T, H, W] in [-1, 1], or a list of V per-view videos (each as
        `CosmosVideo2WorldPipeline` takes a video). Every view needs the same number of conditioning frames.
        """
        views = self.num_views
        if isinstance(video, torch.Tensor):
            frames = video[None] if video.ndim == 5 else video
            if frames.ndim != 6 or frames.shape[1] != views:
                raise ValueError(f"a multi-view video tensor must be [B, {views}, 3, T, H, W] or [{views}, 3, T, H, W]"
                                 f" ({views} views), got {tuple(video.shape)}")
            per_view = [frames[:, v] for v in range(views)]
        elif isinstance(video, (list, tuple)):
            if len(video) != views:
                raise ValueError(f"got conditioning videos for {len(video)} views; this model has {views}")
            per_view = list(video)
        else:
            raise TypeError(f"video must be a tensor [B, V, 3, T, H, W] or a list of {views} per-view videos, got "
                            f"{type(video).__name__}")
        per_view = [self._conditioning_video(None, v, height, width, num_frames, batch) for v in per_view]
        if len({v.shape[2] for v in per_view}) != 1:
            raise ValueError(f"every view needs the same number of conditioning frames, got "
                             f"{[v.shape[2] for v in per_view]}")
        return torch.stack(per_view, dim=1)

    def encode_prompt(self, prompt, max_sequence_length: int = 512, device=None, dtype=None):
        """Per-view captions -> `(prompt_embeds, negative_prompt_embeds)` in the DiT's layout `[B, V*L, D]`.

        `prompt` as `view_prompts` takes it; the unconditional branch is "no text" (zero features), as text dropout
        trains it (a multi-view call has no negative prompt).
        """
        samples = self.view_prompts(prompt)
        captions = [caption for sample in samples for caption in sample]
        text = self._get_t5_prompt_embeds(captions, max_sequence_length, device, dtype)
        prompt_embeds = self.views_text_embeds(text.unflatten(0, (len(samples), self.num_views)))
        return prompt_embeds, torch.zeros_like(prompt_embeds)

    def prepare_latents(
        self,
        video: torch.Tensor | None,
        batch_size: int,
        height: int = 704,
        width: int = 1280,
        num_frames: int = 121,
        device: torch.device | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ):
        """Starting latents and conditioning latents, views laid out along time `[B, C, V*T', h, w]`.

        `video`: per-view conditioning frames `[B, V, 3, T_cond, H, W]` (`views_conditioning_video`) or None (every
        view from text: zero conditioning latents). Returns `(latents, conditioning_latents, num_cond_latent)`:
        standard normal times `sigma_max`, the encoded frames (diffusers' order: encode, then draw), and the number
        of conditioning latent frames per view.
        """
        device = device or self._execution_device
        views = self.num_views
        per_view_shape = self._latent_shape(batch_size * views, height, width, num_frames)  # [B*V, C, T', h, w]
        latent_frames = per_view_shape[2]
        shape = (batch_size, per_view_shape[1], views * latent_frames, *per_view_shape[3:])
        num_cond_latent = 0
        conditioning_latents = torch.zeros(shape, device=device)
        if video is not None:
            flat, num_cond_latent = self.encode_conditioning(video.flatten(0, 1), num_frames, generator)
            conditioning_latents = flat.unflatten(0, (batch_size, views)).permute(0, 2, 1, 3, 4, 5).flatten(2, 3)
        latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        return latents * self.scheduler.config.sigma_max, conditioning_latents, num_cond_latent

    def _views_to_output(self, video: torch.Tensor, batch: int, output_type: str, device):
        """Decoded clips [B*V, 3, T, H, W] -> guardrail (per view) -> the documented multi-view layout."""
        clips = self._finish_video(video, output_type, device)
        views = self.num_views
        if output_type == "pil":
            return [clips[b * views : (b + 1) * views] for b in range(batch)]
        return clips.reshape(batch, views, *clips.shape[1:])

    # ------------------------------------------------------------------ call
    @torch.no_grad()
    def __call__(
        self,
        prompt: list[str] | list[list[str]] | None = None,
        video=None,
        trajectory=None,
        view_indices=None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 36,
        guidance_scale: float | None = None,
        augment_sigma: float = 0.001,
        fps: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        max_sequence_length: int | None = None,
        condition_detail_transfer: bool | None = None,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
    ):
        r"""Generate V synchronised views.

        Args:
            prompt: one caption per view (a list of V strings), or one such list per sample.
            video: optional conditioning frames per view (see `views_conditioning_video`); the same count for every
                view (1, 5, 9, ... frames for a x4 temporal tokenizer). Without it every view is generated from text.
            trajectory: the rig's path, `trajectory_dim` values per sample (e.g. [T, 3] positions in the rig's first
                frame, as `cosmos_hf.data.post_training_datasets.MultiViewClips` gives them); required exactly when
                the model has a trajectory input.
            view_indices: which learned view embedding each view uses (`[V]` or `[B, V]`, default 0..V-1).
            height, width, num_frames: per view (defaults from the config).
            guidance_scale: classifier-free guidance against "no text" (zero features), g > 1 as in
                :class:`CosmosText2WorldPipeline` (``x0_cond + g * (x0_cond - x0_uncond)``; 1 = none); `None` = the
                config's.
            condition_detail_transfer: as in :class:`CosmosVideo2WorldPipeline`, per view (only with `video`; the
                config's `default_condition_detail_gate` and `default_condition_keep_threshold` apply; the
                multi-view sampler always starts from noise, so a `default_strength` other than 1 is refused).
            callback_on_step_end, callback_on_step_end_tensor_inputs: as in diffusers (`denoising_loop`); the
                latents are in the view-major layout `[B, C, V*T', h, w]`. `pipe._interrupt = True` stops early.
        Returns `CosmosPipelineOutput` whose `.frames` follows the layout in the module docstring.
        """
        if self.config.get("default_strength", 1.0) != 1.0:
            raise ValueError(f"the multi-view pipeline samples from noise only: default_strength must be 1.0, got "
                             f"{self.config.default_strength}")
        # the saved detail defaults, range-checked before sampling as a Video2World call checks them
        detail_gate = self._detail_gate(None)
        keep_threshold = self._keep_threshold(None)
        height, width, num_frames, fps, max_sequence_length = self._resolve_defaults(
            height, width, num_frames, fps, max_sequence_length
        )
        guidance_scale = self._resolve_guidance_scale(guidance_scale)
        if output_type not in MULTIVIEW_OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {MULTIVIEW_OUTPUT_TYPES}, got {output_type!r}")
        samples = self.view_prompts(prompt)
        flat_prompts = [caption for sample in samples for caption in sample]
        self.check_inputs(flat_prompts, None, height, width, num_frames, num_inference_steps, guidance_scale, 1,
                          output_type, fps=fps, generator=generator, max_sequence_length=max_sequence_length,
                          callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs)
        augment_sigma = check_number("augment_sigma", augment_sigma, minimum=0,
                                     note="noise level of the conditioning latents")
        if condition_detail_transfer is None:
            condition_detail_transfer = self.config.get("default_condition_detail_transfer", False)
        batch, views = len(samples), self.num_views
        check_generator(generator, batch)
        trajectory = self.trajectory_input(trajectory, batch)
        self._guidance_scale = guidance_scale
        self._current_timestep = None
        self._interrupt = False
        device = self._execution_device
        self._check_prompt_safety(flat_prompts, device)

        prompt_embeds, negative_prompt_embeds = self.encode_prompt(prompt, max_sequence_length, device)
        self.set_sampling_timesteps(num_inference_steps, device=device)
        frames = None
        if video is not None:
            frames = self.views_conditioning_video(video, height, width, num_frames, batch).to(device)
        elif condition_detail_transfer:
            condition_detail_transfer = False  # nothing to transfer without conditioning frames
        latents, conditioning_latents, num_cond_latent = self.prepare_latents(frames, batch, height, width,
                                                                              num_frames, device, generator)
        latent_frames = latents.shape[2] // views
        options = dict(
            sigma_data=self.scheduler.config.sigma_data, fps=fps,
            condition_frame_channels=self.config.condition_frame_channels,
            residual_from_last_condition_frame=self.config.residual_from_last_condition_frame,
        )
        step_noise = {}

        def denoise_branch(latents, sigma, text_embeds, conditional):
            if conditional:  # one augmentation noise per step, shared by both branches
                step_noise["noise"] = randn_tensor(latents.shape, generator=generator, device=device,
                                                   dtype=torch.float32)
            condition = multiview_condition(conditioning_latents, views, num_cond_latent, augment_sigma,
                                            step_noise["noise"])
            # the Video2World rule: below the augmentation noise the conditioning values are not injected
            return denoise(self.transformer, latents, sigma, text_embeds, condition=condition,
                           use_condition_values=bool(augment_sigma < sigma), **options)

        with extra_transformer_inputs(self.transformer, trajectory=trajectory, view_indices=view_indices):
            latents = self.denoising_loop(latents, denoise_branch, prompt_embeds, negative_prompt_embeds,
                                          callback_on_step_end, callback_on_step_end_tensor_inputs)

        per_view_latents = latents.unflatten(2, (views, latent_frames)).permute(0, 2, 1, 3, 4, 5).flatten(0, 1)
        decoded = self._decode_latents(per_view_latents).float()
        if condition_detail_transfer:
            detail = self.condition_detail(frames.flatten(0, 1), num_frames, decoded=decoded, gate=detail_gate,
                                           keep_threshold=keep_threshold)
            decoded = (decoded + detail).clamp(-1.0, 1.0)
        result = self._views_to_output(decoded, batch, output_type, device)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (result,)
        return CosmosPipelineOutput(frames=result)
