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
from diffusers.pipelines.cosmos.pipeline_output import CosmosPipelineOutput
from diffusers.utils.torch_utils import randn_tensor

# imported so that saved folders load: diffusers resolves our components through already-imported modules
from ..diffusion.edm import denoise
from ..diffusion.multiview import CosmosMultiViewTransformer3DModel  # noqa: F401
from ..diffusion.post_training import extra_transformer_inputs, multiview_condition
from .input_checks import check_generator, check_number
from .pipeline_cosmos_video2world import CosmosVideo2WorldPipeline


MULTIVIEW_OUTPUT_TYPES = ("pil", "np", "pt")


class CosmosMultiViewPipeline(CosmosVideo2WorldPipeline):
    r"""Multi-view Cosmos-Predict1 world model (driving-rig post-training): per-view captions, optional conditioning
    frames per view and an optional rig trajectory.

    Components and config are those of :class:`CosmosVideo2WorldPipeline`; the transformer is a
    `CosmosMultiViewTransformer3DModel` (config `num_views`, `view_embed_dim`, `trajectory_dim`). Sizes and frame
    counts (`height`, `width`, `num_frames`) are per view.
    """

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
            guidance_scale: classifier-free guidance against "no text" (zero features); `None` = the config's.
            condition_detail_transfer: as in :class:`CosmosVideo2WorldPipeline`, per view (only with `video`).
        Returns `CosmosPipelineOutput` whose `.frames` follows the layout in the module docstring.
        """
        height, width, num_frames, fps, max_sequence_length = self._resolve_defaults(
            height, width, num_frames, fps, max_sequence_length
        )
        guidance_scale = self._resolve_guidance_scale(guidance_scale)
        if output_type not in MULTIVIEW_OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {MULTIVIEW_OUTPUT_TYPES}, got {output_type!r}")
        samples = self.view_prompts(prompt)
        flat_prompts = [caption for sample in samples for caption in sample]
        self.check_inputs(flat_prompts, None, height, width, num_frames, num_inference_steps, guidance_scale, 1,
                          output_type, fps=fps, generator=generator, max_sequence_length=max_sequence_length)
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

        text = self._get_t5_prompt_embeds(flat_prompts, max_sequence_length, device)
        prompt_embeds = self.views_text_embeds(text.unflatten(0, (batch, views)))
        negative_prompt_embeds = torch.zeros_like(prompt_embeds)  # "no text", as text dropout trains it
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps

        per_view_shape = self._latent_shape(batch * views, height, width, num_frames)  # [B*V, C, T', h, w]
        latent_frames = per_view_shape[2]
        shape = (batch, per_view_shape[1], views * latent_frames, *per_view_shape[3:])
        frames = None
        num_cond_latent = 0
        conditioning_latents = torch.zeros(shape, device=device)
        if video is not None:
            frames = self.views_conditioning_video(video, height, width, num_frames, batch).to(device)
            flat, num_cond_latent = self.encode_conditioning(frames.flatten(0, 1), num_frames, generator)
            conditioning_latents = flat.unflatten(0, (batch, views)).permute(0, 2, 1, 3, 4, 5).flatten(2, 3)
        elif condition_detail_transfer:
            condition_detail_transfer = False  # nothing to transfer without conditioning frames
        latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        latents = latents * self.scheduler.config.sigma_max
        options = dict(
            sigma_data=self.scheduler.config.sigma_data, fps=fps,
            condition_frame_channels=self.config.condition_frame_channels,
            residual_from_last_condition_frame=self.config.residual_from_last_condition_frame,
        )
        self._num_timesteps = len(timesteps)

        with self.progress_bar(total=len(timesteps)) as progress_bar, extra_transformer_inputs(
            self.transformer, trajectory=trajectory, view_indices=view_indices
        ):
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                self._current_timestep = t
                self.scheduler.scale_model_input(latents, t)  # sets the step index (the scaling happens in denoise)
                sigma = self.scheduler.sigmas[i]
                inject = bool(augment_sigma < sigma)  # the Video2World rule for the conditioning values
                noise = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
                condition = multiview_condition(conditioning_latents, views, num_cond_latent, augment_sigma, noise)
                x0 = denoise(self.transformer, latents, sigma, prompt_embeds, condition=condition,
                             use_condition_values=inject, **options)
                if self.do_classifier_free_guidance:
                    x0_uncond = denoise(self.transformer, latents, sigma, negative_prompt_embeds, condition=condition,
                                        use_condition_values=inject, **options)
                    x0 = x0 + self.guidance_scale * (x0 - x0_uncond)
                latents = self.scheduler.step(x0, t, latents, return_dict=False, pred_original_sample=x0)[0]
                progress_bar.update()

        self._current_timestep = None
        per_view_latents = latents.unflatten(2, (views, latent_frames)).permute(0, 2, 1, 3, 4, 5).flatten(0, 1)
        decoded = self._decode_latents(per_view_latents).float()
        if condition_detail_transfer:
            decoded = (decoded + self.condition_detail(frames.flatten(0, 1), num_frames)).clamp(-1.0, 1.0)
        result = self._views_to_output(decoded, batch, output_type, device)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (result,)
        return CosmosPipelineOutput(frames=result)
