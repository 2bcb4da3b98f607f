"""Action-conditioned Video2World pipeline: roll a robot world model forward under a sequence of 7-D actions.

The model (`CosmosActionConditionedTransformer3DModel`, post-trained from a Video2World DiT) predicts one window
of `num_frames` frames whose first frames are given, conditioned on the actions of that window: action `t` takes
frame `t` to frame `t + 1` (Bridge format, `cosmos_hf.sim.push`), so a window of `num_frames` frames carries
`num_frames - 1` actions (`transformer.config.num_action_frames`). The pipeline rolls out autoregressively, as the
reference's action-conditioned sampling does: predict a chunk from the last conditioning frame(s) and the chunk's
actions, append it, take the newest frames as the next conditioning frames, repeat until the actions are used up.

Each chunk is one call of the Video2World pipeline (`CosmosVideo2WorldPipeline.__call__`: its checks, sampler,
guardrail and decoding); the actions reach the DiT through a scoped forward pre-hook
(`cosmos_hf.diffusion.post_training.extra_transformer_inputs`).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import EDMEulerScheduler
from diffusers.pipelines.cosmos.pipeline_output import CosmosPipelineOutput
from transformers import PreTrainedModel, PreTrainedTokenizerBase

# imported so that saved folders load: diffusers resolves our components through already-imported modules
from ..diffusion.action_conditioning import CosmosActionConditionedTransformer3DModel
from ..data.post_training_datasets import ACTION_PROMPT
from ..diffusion.post_training import extra_transformer_inputs
from ..guardrails.checker import CosmosSafetyChecker
from .pipeline_cosmos_text2world import CosmosVAE
from .pipeline_cosmos_video2world import CosmosVideo2WorldPipeline


ACTION_OUTPUT_TYPES = ("pil", "np", "pt")


class CosmosActionConditionedPipeline(CosmosVideo2WorldPipeline):
    r"""Robot-action-conditioned world model (Cosmos-Predict1 action post-training) with autoregressive rollout.

    Components and config are those of :class:`CosmosVideo2WorldPipeline`; the transformer is a
    `CosmosActionConditionedTransformer3DModel` (config `action_dim`, `num_action_frames`).
    """

    # every argument spelled out: diffusers reads the saved config back through this signature, and `from_pipe` keeps
    # a component only when its class is in the type hint
    # post-training trains with the last conditioning latent frame as the reference only
    supported_condition_references = ("last_latent_frame",)

    def __init__(
        self,
        text_encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        transformer: CosmosActionConditionedTransformer3DModel,
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

    def _model_action_shape(self):
        config = self.transformer.config
        if "num_action_frames" not in config or "action_dim" not in config:
            raise ValueError("the transformer has no action conditioning (num_action_frames / action_dim in its "
                             "config): load an action-conditioned checkpoint")
        return int(config["num_action_frames"]), int(config["action_dim"])

    def check_actions(self, actions) -> torch.Tensor:
        """Actions as a float tensor [B, N, action_dim]; errors name the expected shape."""
        _, action_dim = self._model_action_shape()
        if isinstance(actions, np.ndarray):
            actions = torch.from_numpy(actions)
        if not isinstance(actions, torch.Tensor):
            try:
                actions = torch.as_tensor(np.asarray(actions, dtype=np.float32))
            except (TypeError, ValueError):
                raise TypeError(f"actions must be an array [N, {action_dim}] or [B, N, {action_dim}], "
                                f"got {type(actions).__name__}") from None
        actions = actions.float()
        if actions.ndim == 2:
            actions = actions[None]
        if actions.ndim != 3 or actions.shape[-1] != action_dim:
            raise ValueError(f"actions must be shaped [N, {action_dim}] or [B, N, {action_dim}] (this model takes "
                             f"{action_dim}-D actions), got {tuple(actions.shape)}")
        if actions.shape[1] < 1:
            raise ValueError("actions must hold at least one action")
        if not torch.isfinite(actions).all():
            raise ValueError("actions contain NaN or inf")
        return actions

    @staticmethod
    def hold_actions(last_action: torch.Tensor, count: int) -> torch.Tensor:
        """`count` actions that keep the end effector still: zero motion, the gripper as the last action left it."""
        hold = torch.zeros(*last_action.shape[:-1], count, last_action.shape[-1], dtype=last_action.dtype)
        hold[..., -1] = last_action[..., -1:]
        return hold

    @torch.no_grad()
    def __call__(
        self,
        video=None,
        actions=None,
        prompt: str | list[str] | None = None,
        image=None,
        num_frames: int | None = None,
        num_inference_steps: int = 36,
        guidance_scale: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        **kwargs,
    ):
        r"""Roll out the world under `actions` from the conditioning frames.

        Args:
            video: conditioning frames (a tensor [B, 3, T, H, W] / [3, T, H, W] in [-1, 1], or a list of frames);
                `image`: one conditioning frame instead. The number of conditioning frames `c` (1, 5, 9, ... for a
                x4 temporal tokenizer) is also the number of frames each later chunk is conditioned on.
            actions: [N, 7] or [B, N, 7]; action t takes frame t to frame t + 1, counting the conditioning frames.
                The result has N + 1 frames: the c conditioning frames as given (not their tokenizer round trip),
                then N + 1 - c predicted ones.
            prompt: optional text; `None` is `ACTION_PROMPT` (cosmos_hf.data.post_training_datasets), the one prompt
                `train_diffusion.py --condition action` trains with under `data.captions: false` (the nano config): the
                actions, not a caption, say what happens.
            num_frames: the window length; must be `num_action_frames + 1` of the model (the default).
            Other arguments as :class:`CosmosVideo2WorldPipeline` (passed on to every chunk, e.g. `augment_sigma`,
            `condition_detail_transfer`); `generator` is used by the chunks in order, so a seeded generator makes the
            whole rollout reproducible.

        Returns `CosmosPipelineOutput` whose `.frames` holds all N + 1 frames (`"np"`: [B, N+1, H, W, 3] in [0, 1];
        `"pt"`: [B, N+1, 3, H, W]; `"pil"`: lists of images). Each chunk predicts `num_frames - c` frames; when the
        actions do not fill the last chunk, it is padded with `hold_actions` and the extra frames are dropped.
        """
        if output_type not in ACTION_OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {ACTION_OUTPUT_TYPES} for a rollout, got {output_type!r}")
        if actions is None:
            raise ValueError("pass `actions` ([N, 7] or [B, N, 7]): the rollout predicts one frame per action")
        for name in ("prompt_embeds", "negative_prompt_embeds", "latents", "height", "width"):
            if kwargs.get(name) is not None:
                raise ValueError(f"`{name}` is not supported by the action rollout")
        if kwargs.get("num_videos_per_prompt", 1) != 1:
            # each chunk would return more videos than the rollout conditions on; it crashed after the first chunk
            raise ValueError(f"num_videos_per_prompt is not supported by the action rollout (got "
                             f"{kwargs['num_videos_per_prompt']!r}): repeat the conditioning video / actions along "
                             f"the batch instead")
        num_action_frames, _ = self._model_action_shape()
        window = num_action_frames + 1 if num_frames is None else int(num_frames)
        if window != num_action_frames + 1:
            raise ValueError(f"num_frames must be num_action_frames + 1 = {num_action_frames + 1} for this model "
                             f"(a window of that many frames carries its {num_action_frames} actions), got {window}")
        actions = self.check_actions(actions)
        height, width = self.config.default_height, self.config.default_width
        prompts = None
        if prompt is not None:
            prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        video_batch = video.shape[0] if isinstance(video, torch.Tensor) and video.ndim == 5 else 1
        batch = max(actions.shape[0], len(prompts) if prompts else 1, video_batch)
        frames = self._conditioning_video(image, video, height, width, window, batch)  # [B, 3, c, H, W] in [-1, 1]
        if actions.shape[0] not in (1, batch):
            raise ValueError(f"actions batch {actions.shape[0]} does not match {batch} conditioning videos/prompts")
        actions = actions.expand(batch, -1, -1)
        if prompts is not None and len(prompts) not in (1, batch):
            raise ValueError(f"got {len(prompts)} prompts for {batch} conditioning videos")
        num_cond = frames.shape[2]
        total = actions.shape[1] + 1
        if total <= num_cond:
            raise ValueError(f"{actions.shape[1]} actions give {total} frames, no more than the {num_cond} "
                             f"conditioning frames: pass at least {num_cond} actions")
        chunk = window - num_cond
        num_chunks = -(-(total - num_cond) // chunk)
        padded = torch.cat([actions, self.hold_actions(actions[:, -1], num_chunks * chunk + num_cond - total)], 1)

        prompts = prompts or [ACTION_PROMPT]
        text = {"prompt": prompts * batch if len(prompts) == 1 else prompts}

        video = frames
        for index in range(num_chunks):
            start = index * chunk  # first frame of this window in the rollout
            window_actions = padded[:, start : start + window - 1]
            with extra_transformer_inputs(self.transformer, action=window_actions):
                out = super().__call__(
                    video=video[:, :, -num_cond:], num_frames=window, num_inference_steps=num_inference_steps,
                    guidance_scale=guidance_scale, generator=generator, output_type="pt", return_dict=False,
                    **text, **kwargs,
                )[0]
            predicted = out.permute(0, 2, 1, 3, 4).to(video) * 2 - 1  # [B, 3, window, H, W] in [-1, 1]
            video = torch.cat([video, predicted[:, :, num_cond:]], dim=2)
            if self.interrupt:  # a callback stopped sampling (`pipe._interrupt = True`): no further chunks
                break
        video = video[:, :, :total]
        # chunks already passed the guardrail; only the format conversion is left
        result = self.video_processor.postprocess_video(video, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (result,)
        return CosmosPipelineOutput(frames=result)
