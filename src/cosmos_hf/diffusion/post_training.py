"""What the post-trained world-model pipelines and `train_diffusion.py --condition camera|action|multiview` share.

* `extra_transformer_inputs`: a scoped forward pre-hook that hands a conditioned DiT its extra inputs (`plucker=`,
  `action=`, `view_indices=`, `trajectory=`) on every call inside the block. The Video2World denoising loop and
  `cosmos_hf.diffusion.edm.denoise` then stay the single sampling / training code path for every condition.
* `MultiViewVideoCondition`: Video2World conditioning for views laid out along time (`[B, C, V*T, h, w]`): the
  conditioning frames are the first n latent frames *of every view*, and "the last conditioning frame" (the extra
  input channels of `condition_frame_channels`) is taken per view.
* the training glue: the conditioned DiT around a Video2World one (`conditioned_transformer`) and the pipeline around
  it (`pipeline_from_video2world`; `cosmos_hf.pipelines.post_training.build_post_training_pipeline` puts them
  together), turn a batch into (latents, text, forward kwargs) (`post_training_inputs`), pre-encode a dataset once
  (`cache_post_training_latents`) and the training module (`PostTrainingDenoiserModule`).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .edm import VideoCondition, sample_lognormal_sigma

POST_TRAINING_CONDITIONS = ("camera", "action", "multiview")


# inputs that may come without a batch dimension, shared by every sample: name -> rank of that form
# (the multi-view pipeline documents `view_indices` as [V] or [B, V]; a [V] tensor is not a batch of V samples)
_UNBATCHED_RANKS = {"view_indices": 1}


def _match_batch(value, batch: int):
    """Repeat a per-sample input to the call's batch (num_videos_per_prompt repeats samples one after another)."""
    if not isinstance(value, torch.Tensor) or value.shape[0] == batch:
        return value
    if batch % value.shape[0]:
        raise ValueError(f"an extra transformer input of batch {value.shape[0]} does not divide the batch {batch}")
    return value.repeat_interleave(batch // value.shape[0], dim=0)


@contextmanager
def extra_transformer_inputs(transformer: nn.Module, **inputs):
    """Inside the block every `transformer(...)` call also receives `inputs` (None values are left out)."""
    inputs = {name: value for name, value in inputs.items() if value is not None}

    def add_inputs(module, args, kwargs):
        hidden_states = kwargs.get("hidden_states", args[0] if args else None)
        batch = hidden_states.shape[0]
        dtype = hidden_states.dtype
        extra = {}
        for name, value in inputs.items():
            if not (isinstance(value, torch.Tensor) and value.ndim == _UNBATCHED_RANKS.get(name)):
                value = _match_batch(value, batch)
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                value = value.to(hidden_states.device, dtype)
            elif isinstance(value, torch.Tensor):
                value = value.to(hidden_states.device)
            extra[name] = value
        return args, {**kwargs, **extra}

    handle = transformer.register_forward_pre_hook(add_inputs, with_kwargs=True)
    try:
        yield transformer
    finally:
        handle.remove()


# ---------------------------------------------------------------------------------------------------------- multiview
@dataclass
class MultiViewVideoCondition(VideoCondition):
    """`VideoCondition` for `num_views` views laid out along time; the reference frame is taken per view."""

    num_views: int = 1

    def last_frame_reference(self) -> torch.Tensor:
        batch, channels, frames, height, width = self.latents.shape
        views = self.num_views
        per_view = lambda x: x.reshape(x.shape[0], x.shape[1], views, frames // views, *x.shape[3:])  # noqa: E731
        latents = per_view(self.latents)  # [B, C, V, T, h, w]
        indicator = per_view(self.indicator)[:, 0, :, :, 0, 0]  # [B, V, T]
        num_cond = indicator.sum(dim=2).long()  # [B, V]
        index = (num_cond - 1).clamp(min=0)
        gathered = torch.gather(latents, 3, index[:, None, :, None, None, None].expand(
            batch, channels, views, 1, height, width))  # [B, C, V, 1, h, w]
        gathered = gathered * (num_cond > 0).to(gathered.dtype)[:, None, :, None, None, None]
        return gathered.expand(-1, -1, -1, frames // views, -1, -1).reshape(batch, channels, frames, height, width)


def multiview_condition(latents: torch.Tensor, num_views: int, num_condition_frames: int,
                        augment_sigma: torch.Tensor | float, noise: torch.Tensor | None = None, generator=None,
                        drop_condition: torch.Tensor | None = None) -> MultiViewVideoCondition:
    """Condition on the first `num_condition_frames` latent frames of each of `num_views` views (along time)."""
    batch, _, frames, height, width = latents.shape
    if frames % num_views:
        raise ValueError(f"{frames} latent frames cannot be split into {num_views} views")
    per_view = frames // num_views
    if not 0 <= num_condition_frames <= per_view:
        raise ValueError(f"number of conditioning latent frames must be in [0, {per_view}], got {num_condition_frames}")
    device = latents.device
    in_view = torch.arange(frames, device=device) % per_view
    indicator = (in_view < num_condition_frames).to(latents.dtype)[None, None, :, None, None].expand(
        batch, 1, frames, 1, 1).clone()
    mask = indicator.expand(batch, 1, frames, height, width).clone()
    cond_latents = latents
    if drop_condition is not None and drop_condition.any():
        keep = (~drop_condition).to(latents.dtype)[:, None, None, None, None]
        mask, cond_latents = mask * keep, latents * keep
    augment_sigma = torch.as_tensor(augment_sigma, dtype=torch.float32, device=device).reshape(-1).expand(batch)
    if noise is None:
        noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype).to(device)
    return MultiViewVideoCondition(indicator, mask, cond_latents, augment_sigma.clone(), noise, num_views=num_views)


def sample_multiview_condition(objective, latents, num_views, generator=None) -> MultiViewVideoCondition:
    """The training-time condition of `EDMObjective.sample_condition`, per view: first-random-n latent frames of
    every view, log-normal augmentation sigma, condition dropout."""
    cfg = objective.config
    per_view = latents.shape[2] // num_views
    high = min(cfg.max_condition_frames, per_view)
    low = min(cfg.min_condition_frames, high)
    num_cond = int(torch.randint(low, high + 1, (1,), generator=generator).item())
    batch = latents.shape[0]
    augment_sigma = cfg.augment_sigma_multiplier * sample_lognormal_sigma(
        batch, cfg.augment_sigma_p_mean, cfg.augment_sigma_p_std, generator=generator).to(latents.device)
    drop = None
    if cfg.condition_dropout > 0:
        drop = (torch.rand(batch, generator=generator) < cfg.condition_dropout).to(latents.device)
    return multiview_condition(latents, num_views, num_cond, augment_sigma, generator=generator, drop_condition=drop)


# ---------------------------------------------------------------------------------------------------------- training
# names that moved to cosmos_hf.pipelines.post_training (they name the pipeline classes, and this package must not
# import cosmos_hf.pipelines, which imports it), resolved on first use (PEP 562) for older callers
_MOVED_TO_PIPELINES = ("post_training_pipeline_class", "build_post_training_pipeline")


def __getattr__(name):
    if name in _MOVED_TO_PIPELINES:
        import importlib

        return getattr(importlib.import_module("cosmos_hf.pipelines.post_training"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def conditioned_transformer(condition: str, base_transformer, model: dict, data: dict):
    """The conditioned DiT built around a Video2World DiT (`from_video2world`): its weights are kept, the new
    inputs start at zero so the untrained model is the Video2World model."""
    if condition == "camera":
        from .camera_control import CosmosCameraControlTransformer3DModel

        return CosmosCameraControlTransformer3DModel.from_video2world(base_transformer)
    if condition == "action":
        from .action_conditioning import CosmosActionConditionedTransformer3DModel

        num_action_frames = model.get("num_action_frames") or int(data["num_frames"]) - 1
        per_latent_frame = model.get("actions_per_latent_frame")
        return CosmosActionConditionedTransformer3DModel.from_video2world(
            base_transformer, action_dim=int(model.get("action_dim") or 7), num_action_frames=int(num_action_frames),
            fix_timestep_action_path=bool(model.get("fix_timestep_action_path", False)),
            actions_per_latent_frame=None if per_latent_frame is None else int(per_latent_frame))
    if condition == "multiview":
        from .multiview import CosmosMultiViewTransformer3DModel

        return CosmosMultiViewTransformer3DModel.from_video2world(
            base_transformer, num_views=int(model["num_views"]), view_embed_dim=int(model["view_embed_dim"]),
            trajectory_dim=int(model.get("trajectory_dim") or 0))
    raise ValueError(f"condition must be one of {list(POST_TRAINING_CONDITIONS)}, got {condition!r}")


def pipeline_from_video2world(cls, base, transformer, safety_checker=None, **options):
    """A post-trained pipeline of class `cls` around `transformer`, sharing the Video2World pipeline `base`'s text
    encoder, tokenizer, vae and scheduler, with `base`'s config where `cls` accepts it (`options` override it).

    This is diffusers' `cls.from_pipe(base, transformer=transformer, ...)` (no weights are copied). The guardrail is
    not taken from `base`: `safety_checker=None` gives the default `CosmosSafetyChecker()` unless `options` has
    `disable_safety_checker=True`. Every component ends in the transformer's dtype (from_pipe casts the pipeline).
    """
    # post-trained models take the last conditioning latent frame as their reference, whatever `base` used
    options.setdefault("condition_reference", "last_latent_frame")
    return cls.from_pipe(base, transformer=transformer, safety_checker=safety_checker, dtype=transformer.dtype,
                         **options)


def check_objective_matches_pipeline(objective: dict, pipe) -> None:
    """The training objective must parameterise the model as the pipeline samples it (same sigma_data and options)."""
    from .edm import EDMConfig

    objective = EDMConfig.from_dict(objective)
    if not objective.video2world:
        raise ValueError("post-training continues a Video2World model: set objective.video2world=true")
    if abs(pipe.scheduler.config.sigma_data - objective.sigma_data) > 1e-12:
        raise ValueError(f"objective.sigma_data={objective.sigma_data} differs from the pipeline's scheduler "
                         f"sigma_data={pipe.scheduler.config.sigma_data}")
    if objective.condition_reference != "last_latent_frame":
        # a base trained with the still-frame reference is post-trained onto the last latent frame (no weight
        # shape depends on it)
        raise ValueError(f"post-training supports condition_reference='last_latent_frame' only, got "
                         f"{objective.condition_reference!r}")
    for name in ("condition_frame_channels", "residual_from_last_condition_frame"):
        if bool(getattr(objective, name)) != bool(pipe.config.get(name, False)):
            raise ValueError(f"objective.{name}={getattr(objective, name)} but the pretrained pipeline was trained "
                             f"with {name}={pipe.config.get(name, False)}: set objective.{name} to match")


def encode_videos(pipe, videos: torch.Tensor) -> torch.Tensor:
    """[B, 3, T, H, W] in [-1, 1] -> normalised diffusion latents [B, C, T', h, w] (a posterior sample)."""
    with torch.no_grad():
        posterior = pipe.vae.encode(videos.to(pipe.vae.dtype)).latent_dist
        return pipe.normalize_latents(posterior.sample().float())


def post_training_inputs(pipe, batch: dict, condition: str, max_sequence_length: int, device):
    """(latents [B, C, T', h, w], text features, conditioned-DiT forward kwargs) of a batch.

    A batch from `cache_post_training_latents` already holds them (`latents`, `text` + the kwargs).
    """
    if "latents" in batch:
        inputs = {key: value.to(device) for key, value in batch.items() if key not in ("latents", "text")}
        return batch["latents"].to(device), batch["text"].to(device), inputs
    videos = batch["video"].to(device)
    with torch.no_grad():
        if condition == "multiview":
            batch_size, views = videos.shape[:2]
            latents = encode_videos(pipe, videos.flatten(0, 1))  # [B*V, C, T', h, w]
            latents = latents.unflatten(0, (batch_size, views)).permute(0, 2, 1, 3, 4, 5).flatten(2, 3)
            captions = [caption for per_view in batch["caption"] for caption in per_view]
            text = pipe._get_t5_prompt_embeds(captions, max_sequence_length, device=device, dtype=torch.float32)
            text = pipe.views_text_embeds(text.unflatten(0, (batch_size, views)))
            if not pipe.transformer.config.get("trajectory_dim"):
                return latents, text, {}
            return latents, text, {"trajectory": pipe.trajectory_input(batch["trajectory"].to(device))}
        latents = encode_videos(pipe, videos)
        text = pipe._get_t5_prompt_embeds(batch["caption"], max_sequence_length, device=device, dtype=torch.float32)
        if condition == "action":
            return latents, text, {"action": batch["actions"].to(device)}
        if condition == "camera":
            # rays in float64 on the CPU (cheap at latent size), then moved: the geometry needs no accelerator
            plucker = pipe.plucker_input(batch["cam_to_world"].cpu(), batch["intrinsics"].cpu(),
                                         latents.shape[-2:], videos.shape[-2:])
            return latents, text, {"plucker": plucker.to(device)}
    raise ValueError(f"condition must be one of {list(POST_TRAINING_CONDITIONS)}, got {condition!r}")


def cache_post_training_latents(dataset, pipe, condition: str, max_sequence_length: int, device,
                                batch_size: int = 16) -> list[dict]:
    """Encode every clip once (latents, text features, DiT inputs), kept in memory on the CPU."""
    from ..data.post_training_datasets import collate_post_training

    items = []
    for start in range(0, len(dataset), batch_size):
        batch = collate_post_training([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        latents, text, inputs = post_training_inputs(pipe, batch, condition, max_sequence_length, device)
        for i in range(len(latents)):
            items.append({"latents": latents[i].cpu(), "text": text[i].cpu(),
                          **{key: value[i].cpu() for key, value in inputs.items()}})
    return items


class PostTrainingDenoiserModule(nn.Module):
    """Conditioned DiT + EDM objective in one module (what accelerate wraps); the condition's inputs reach the DiT
    through `extra_transformer_inputs`, multi-view batches get the per-view Video2World condition."""

    def __init__(self, transformer, objective, num_views: int | None = None):
        super().__init__()
        self.transformer = transformer
        self.objective = objective
        self.num_views = num_views

    def forward(self, latents, encoder_hidden_states, fps=None, **condition_inputs):
        condition = None
        if self.num_views:
            condition = sample_multiview_condition(self.objective, latents, self.num_views)
        with extra_transformer_inputs(self.transformer, **condition_inputs):
            return self.objective(self.transformer, latents, encoder_hidden_states, fps=fps, condition=condition)


def new_parameter_names(transformer) -> list[str]:
    """Parameters a conditioned DiT has beyond its Video2World base (new embedders, a wider patch embedding).

    LoRA post-training trains these fully (like peft's `modules_to_save`): they start at zero and a low-rank update
    of the base layers cannot stand in for them. Found by comparison with a plain `CosmosTransformer3DModel` of the
    same base config, built on the meta device (no memory, no weights). Call before adding adapters.
    """
    import inspect

    from diffusers import CosmosTransformer3DModel

    accepted = inspect.signature(CosmosTransformer3DModel.__init__).parameters
    base_config = {key: value for key, value in transformer.config.items() if key in accepted}
    with torch.device("meta"):
        base = CosmosTransformer3DModel(**base_config)
    base_shapes = {name: parameter.shape for name, parameter in base.named_parameters()}
    return [name for name, parameter in transformer.named_parameters() if base_shapes.get(name) != parameter.shape]
