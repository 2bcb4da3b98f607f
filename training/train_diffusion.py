#!/usr/bin/env python
"""Train a Cosmos-Predict1 diffusion world model (Text2World or Video2World) with the EDM objective.

    accelerate launch training/train_diffusion.py --config training/configs/diffusion_tiny_t2w.yaml
    accelerate launch --config_file training/accelerate/ddp.yaml training/train_diffusion.py --config ...
    accelerate launch training/train_diffusion.py --config ... --resume_from_checkpoint latest

Modes (config `model`):
* pre-training from scratch: `transformer: <preset name or dict>`, `text_encoder: minilm | <folder>`,
  `vae: <AutoencoderKLCosmos folder> | null` (null = pixel space);
* post-training from a pipeline folder (`pretrained_pipeline: <folder>`): full fine-tuning, or LoRA when
  `training.lora` is set (peft `add_adapter`; saved with `save_lora_weights`, loadable with `load_lora_weights`).

Data (config `data.type`, read by `cosmos_hf.data.build_dataset`): `folder` (videos/*.mp4 + metas/*.txt captions
with the same stem), `webdataset` (tar shards with .mp4 + .txt), `physics` (clips simulated on the fly by
`cosmos_hf.sim`), `clips` (a clip archive from `cosmos-hf sim export-clips`: the same clips as `physics` with the same
seed_offset, views and size, for machines without pybullet).

Diffusion decoder of the autoregressive WFM (config `model.condition: dv_tokens`, or `--condition dv_tokens`): the
DiT learns CV-tokenizer latents conditioned on the clip's DV tokens (`model.dv_tokenizer: <folder>`), embedded
64,000 -> 32 channels (zero-initialised) and resized per frame onto the latent grid; the DiT input is
[latents | token embedding] (+ diffusers' padding mask), the token ids of a share `model.token_dropout` (0.2) of the
samples are replaced by id 0, and the decoder samples with sigma 80 -> 0.02 (`cosmos_hf.diffusion.diffusion_decoder`,
all as cosmos-predict1's decoder); it saves a `CosmosDiffusionDecoderPipeline`.

Post-training takes the architecture (pipeline kind, text length, sigma_data, Video2World input options) from the
pipeline folder, not from the YAML (`adopt_pretrained_architecture`).

Outputs in `output_dir`: `checkpoint-<step>/` (safetensors + JSON, no pickle, written atomically; a resumed run
continues the data order, RNG states and EMA exactly, see cosmos_hf.training_utils), `config.yaml`,
`train_log.jsonl` (`training.log_with` adds accelerate trackers under `logs/`), `validation/*.mp4`, and at the end
`pipeline/` (full model with a model card, Hub layout) or `pytorch_lora_weights.safetensors` (LoRA).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from cosmos_hf.data import (
    build_dataset,
    clip_sampling_weights,
    latent_cache_key,
    load_tensor_cache,
    save_tensor_cache,
)
from cosmos_hf.data import collate_videos as collate
from cosmos_hf.training_utils import (
    WallClockBudget,
    build_lr_scheduler,
    check_no_later_checkpoints,
    epoch_data_loader,
    every,
    optimizer_step,
    fork_rng_state,
    read_log,
    resume_training_state,
    save_checkpoint,
    setup_accelerator,
    truncate_log,
)
from cosmos_hf.training_utils import load_config as load_training_config
from cosmos_hf.training_utils import model_card as hub_model_card
from cosmos_hf.utils import positive_int
from torch.utils.data import IterableDataset

logger = logging.getLogger("train_diffusion")

DEFAULT_CONFIG = {
    "output_dir": "outputs/diffusion",
    "seed": 0,
    "model": {
        "pipeline": "text2world",  # text2world | video2world
        "pretrained_pipeline": None,
        "transformer": "tiny",  # preset in cosmos_hf.diffusion.nano.NANO_TRANSFORMER_CONFIGS, or a kwargs dict
        "text_encoder": "minilm",  # "minilm" (bundled all-MiniLM-L6-v2), "tiny-t5" (random, tests), or a folder
        "vae": None,  # AutoencoderKLCosmos folder, "tiny" (random, tests), or null for pixel space
        "pixel_latents_mean": None,  # pixel space: per-RGB normalisation (like a VAE's latent statistics)
        "pixel_latents_std": None,
        "max_sequence_length": 64,
        "scheduler": {"sigma_min": 0.002, "sigma_max": 80.0},
        "default_guidance_scale": 7.0,  # saved pipeline's call default (diffusers' 7.0; 1.0 for the nano models)
        "default_condition_detail_transfer": False,  # video2world: saved pipeline's call default (see the pipeline)
        "default_strength": 1.0,  # video2world: saved call default of `strength` (1.0 = from pure noise)
        "default_condition_keep_threshold": None,  # video2world: saved call default of `condition_keep_threshold`
        # diffusion decoder (autoregressive WFM): condition on DV tokens of the clip
        "condition": None,  # null | dv_tokens | camera | action | multiview (post-training, see below)
        "dv_tokenizer": None,  # CosmosDiscreteVideoTokenizer folder, or "tiny" (random, tests)
        "token_embedding_dim": 32,
        "token_dropout": 0.2,  # share of samples whose token ids all become id 0 (the reference's CFG dropout)
        "chunk_latent_frames": None,  # decoder pipeline default: denoise in chunks of this many latent frames
        "chunk_blend": "pixel",  # decoder pipeline default: "pixel" (the reference's seams) or "latent" (aligned)
        # post-trained world models (condition camera | action | multiview, from a Video2World pretrained_pipeline)
        "action_dim": 7,  # action: Bridge-format end-effector actions
        "num_action_frames": None,  # action: actions per window (null = data.num_frames - 1)
        "fix_timestep_action_path": False,  # action: also feed the timestep path (the reference does not)
        "actions_per_latent_frame": None,  # action: k = modulate each latent frame by its own k actions (not the
                                           # reference, which embeds all actions as one vector)
        "normalize_actions": False,  # action: standardise actions with the training data's per-dimension mean/std
        "num_views": 6,  # multiview: cameras of the rig (laid out along time)
        "view_embed_dim": 32,  # multiview: width of the learned view embedding
        "trajectory_dim": None,  # multiview: width of the rig-trajectory input (null = no trajectory input)
        "normalize_trajectory": False,  # multiview: standardise the trajectory with the training data's mean/std
    },
    "objective": {},  # cosmos_hf.diffusion.edm.EDMConfig fields
    "data": {
        "type": "folder",  # folder | webdataset | physics | clips (cosmos_hf.data.build_dataset)
        "path": None,
        "num_frames": 17,
        "height": 64,
        "width": 64,
        "fps": 24,
        "frame_stride": 1,
        "num_clips": None,  # physics / post-training: clips per epoch (seed = index; null = 1000); clips: the
                            # archive's first N (null = all of it)
        "scenes": None,  # physics: subset of cosmos_hf.sim SCENES
        "scene_weights": None,  # physics / clips: {scene: weight}, how often each scene's clips are drawn (others 1)
        "views": [0],  # physics: camera views (0..3) cycled over clips; the nano v0.1 models saw only view 0
        "seed_offset": 0,  # physics: first simulator seed (hold out other seeds for evaluation)
        "cache_latents": False,
        "num_workers": 0,
        # post-training data (cosmos_hf.data.post_training_datasets): simulated up front in a process pool
        "sim_workers": None,  # processes simulating the clips (null = all CPU cores)
        "captions": True,  # action: false = one prompt for every clip (the action pipeline's default prompt);
                          # camera / multiview: "scene" = captions that do not say how the camera / rig moves
        "push_policies": None,  # action: subset of random / scripted / goal (null = all, cycled)
        "push_views": None,  # action: camera views 0..3 of the push task (null = all, cycled)
        "camera_trajectory": None,  # camera: orbit | dolly | pan (null = drawn per clip)
    },
    "training": {
        "max_train_steps": 100,
        "batch_size": 1,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-4,
        "lr_scheduler": "constant_with_warmup",  # diffusers' get_scheduler name (training_utils.LR_SCHEDULERS)
        "lr_warmup_steps": 0,
        "adam_betas": [0.9, 0.99],
        "adam_weight_decay": 0.1,
        "adam_epsilon": 1e-10,
        "max_grad_norm": 1.0,
        "mixed_precision": None,  # set through accelerate (config file / --mixed_precision)
        "gradient_checkpointing": False,
        "ema_decay": None,  # e.g. 0.999; EMA weights are the ones saved
        "image_batch_probability": 0.0,  # joint image + video training: share of single-frame batches
        "checkpointing_steps": 50,
        "checkpoints_total_limit": 3,
        "lora": None,  # {"rank": 8, "alpha": 8, "target_modules": [...], "dropout": 0.0}
        "log_every": 10,
        "log_with": [],  # accelerate trackers besides train_log.jsonl, e.g. [tensorboard]
    },
    "validation": {
        "every_steps": 0,  # 0 = only at the end (if prompts given)
        "prompts": [],
        "num_inference_steps": 10,
        "guidance_scale": 1.0,
        "condition_frames": 1,  # video2world: conditioning frames taken from the first training clip
        "seed": 0,
    },
}

LORA_TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]
POST_TRAINING_CONDITIONS = ("camera", "action", "multiview")  # cosmos_hf.diffusion.post_training


# ---------------------------------------------------------------------------------------------------------- config
def load_config(path, overrides=()) -> dict:
    config = load_training_config(path, DEFAULT_CONFIG, overrides)
    if config["data"]["num_clips"] is None and config["data"]["type"] != "clips":
        # a clip archive is read whole unless num_clips is set; simulated data needs a count
        config["data"]["num_clips"] = 1000
    if config["model"]["pipeline"] not in ("text2world", "video2world"):
        raise ValueError(f"model.pipeline must be text2world or video2world, got {config['model']['pipeline']!r}")
    if config["model"].get("condition") not in (None, "dv_tokens", *POST_TRAINING_CONDITIONS):
        raise ValueError(f"model.condition must be null, dv_tokens or one of {list(POST_TRAINING_CONDITIONS)}, got "
                         f"{config['model']['condition']!r}")
    if config["model"].get("condition") in POST_TRAINING_CONDITIONS and config["model"]["pipeline"] != "video2world":
        raise ValueError(f"model.condition={config['model']['condition']} post-trains a Video2World model: "
                         f"model.pipeline must be video2world")
    if config["model"].get("condition") in POST_TRAINING_CONDITIONS and config["validation"]["prompts"]:
        raise ValueError("validation.prompts is not supported with model.condition camera/action/multiview (the "
                         "samples need cameras, actions or views): set validation.prompts=[] and evaluate the saved "
                         "pipeline with training/report_post_trained.py")
    if config["training"]["lora"] is not None:
        config["training"]["lora"] = lora_settings(config["training"]["lora"])
    if config["model"].get("condition") == "dv_tokens":
        if config["model"]["pipeline"] != "text2world":
            raise ValueError("model.condition=dv_tokens trains the diffusion decoder: model.pipeline must be text2world")
        if not config["model"].get("dv_tokenizer") and not config["model"].get("pretrained_pipeline"):
            raise ValueError("model.condition=dv_tokens needs model.dv_tokenizer (a DV tokenizer folder)")
    return config


LORA_DEFAULTS = {"rank": 8, "alpha": None, "dropout": 0.0, "target_modules": LORA_TARGET_MODULES}


def lora_settings(lora) -> dict:
    """`training.lora` checked and completed (alpha defaults to the rank). Its keys used to be read with `.get`, so a
    misspelt or peft-named key (`r: 16`, `lora_alpha: 32`) was silently the default rank 8 / alpha 8."""
    if not isinstance(lora, dict) or not lora:
        raise ValueError(f"training.lora must be a mapping with keys {', '.join(LORA_DEFAULTS)} (e.g. {{rank: 8}}), "
                         f"or null for full fine-tuning; got {lora!r}")
    unknown = sorted(set(lora) - set(LORA_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} in training.lora; valid keys: "
                         f"{', '.join(LORA_DEFAULTS)}")
    settings = {**LORA_DEFAULTS, "target_modules": list(LORA_TARGET_MODULES), **lora}
    rank, dropout, targets = settings["rank"], settings["dropout"], settings["target_modules"]
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"training.lora.rank must be an integer >= 1, got {rank!r}")
    if settings["alpha"] is None:
        settings["alpha"] = rank
    alpha = settings["alpha"]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < float("inf"):
        raise ValueError(f"training.lora.alpha must be a finite number > 0 (the update is scaled by alpha / rank), "
                         f"got {alpha!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"training.lora.dropout must be a number in [0, 1), got {dropout!r}")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"training.lora.target_modules must be a non-empty list of module names (e.g. "
                         f"{LORA_TARGET_MODULES}), got {targets!r}")
    return settings


# ---------------------------------------------------------------------------------------------------------- model
class DVTokenDecoderTrainingModule(nn.Module):
    """Diffusion decoder training: DiT + token embedder + DV-token-conditioned EDM objective in one module."""

    def __init__(self, transformer, token_embedder, objective):
        super().__init__()
        self.transformer = transformer
        self.token_embedder = token_embedder
        self.objective = objective

    def forward(self, latents, encoder_hidden_states, fps=None, tokens=None):
        return self.objective(self.transformer, latents, encoder_hidden_states, tokens=tokens,
                              token_embedder=self.token_embedder, fps=fps)


def build_decoder_pipeline(config: dict):
    """The diffusion decoder pipeline (DV tokens -> CV latents): loaded, or created around a new DiT."""
    from cosmos_hf.diffusion.diffusion_decoder import (
        CosmosDiffusionDecoderPipeline,
        CosmosDVTokenEmbedder,
        decoder_scheduler,
    )
    from cosmos_hf.tokenizers import CosmosDiscreteVideoTokenizer

    model = config["model"]
    if model.get("pretrained_pipeline"):
        return CosmosDiffusionDecoderPipeline.from_pretrained(model["pretrained_pipeline"])
    if model["dv_tokenizer"] == "tiny":
        from cosmos_hf.tokenizers.configs import from_config_name

        torch.manual_seed(0)
        dv_tokenizer = from_config_name("DV4x8x8", channels=8, channels_mult=[1, 2, 2], num_res_blocks=1,
                                        z_channels=16).eval()
    else:
        dv_tokenizer = CosmosDiscreteVideoTokenizer.from_pretrained(model["dv_tokenizer"]).eval()
    # the plain Text2World build gives text encoder, VAE, scheduler and the DiT preset; the DiT is rebuilt wider
    base = build_pipeline({**config, "model": {**model, "condition": None}})
    from diffusers import CosmosTransformer3DModel

    embed_dim = int(model["token_embedding_dim"])
    transformer_kwargs = dict(base.transformer.config)
    transformer_kwargs = {k: v for k, v in transformer_kwargs.items() if not k.startswith("_")}
    transformer_kwargs["in_channels"] = base.vae.config.latent_channels + embed_dim  # + diffusers' padding mask
    transformer = CosmosTransformer3DModel(**transformer_kwargs)
    token_embedder = CosmosDVTokenEmbedder(vocab_size=dv_tokenizer.codebook_size, embedding_dim=embed_dim)
    # the decoder's sampler: EDM Euler, Karras sigmas from sigma_max down to model.scheduler.sigma_min, final sigma 0
    scheduler = decoder_scheduler(sigma_data=base.scheduler.config.sigma_data,
                                  sigma_min=model["scheduler"]["sigma_min"], sigma_max=model["scheduler"]["sigma_max"])
    return CosmosDiffusionDecoderPipeline(
        base.text_encoder, base.tokenizer, transformer, base.vae, scheduler, token_embedder,
        dv_tokenizer=dv_tokenizer, safety_checker=None,
        **{key: base.config[key] for key in ("default_height", "default_width", "default_num_frames", "default_fps",
                                             "max_sequence_length")},
        chunk_latent_frames=model.get("chunk_latent_frames"), chunk_blend=model.get("chunk_blend") or "pixel",
    )


class DenoiserTrainingModule(nn.Module):
    """Transformer + EDM objective in one module, so accelerate wraps (DDP/FSDP) a single thing."""

    def __init__(self, transformer, objective):
        super().__init__()
        self.transformer = transformer
        self.objective = objective

    def forward(self, latents, encoder_hidden_states, fps=None, still_references=None):
        return self.objective(self.transformer, latents, encoder_hidden_states, fps=fps,
                              still_references=still_references)


PIPELINE_KINDS = {"CosmosText2WorldPipeline": "text2world", "CosmosVideo2WorldPipeline": "video2world"}


def adopt_pretrained_architecture(config: dict) -> dict:
    """Post-training: the architecture options come from the pipeline folder trained on, not from the YAML.

    The folder's model_index.json and scheduler config decide `model.pipeline`, `model.max_sequence_length` and the
    objective options that shape the DiT's input or output (`video2world`, `condition_frame_channels`,
    `residual_from_last_condition_frame`, `sigma_data`). Without this, LoRA on the bundled Video2World (trained with
    condition_frame_channels: 34 input channels) fed it the reference's 18 (issue #17). An `objective` value the YAML
    sets explicitly and the folder contradicts is an error naming both.
    """
    folder = Path(config["model"]["pretrained_pipeline"])
    index_path, scheduler_path = folder / "model_index.json", folder / "scheduler" / "scheduler_config.json"
    for path in (index_path, scheduler_path):
        if not path.is_file():
            raise ValueError(f"--pretrained_pipeline {folder} is not a diffusion pipeline folder (no {path.name})")
    index = json.loads(index_path.read_text())
    class_name = index.get("_class_name")
    class_name = class_name[-1] if isinstance(class_name, list) else class_name
    if class_name not in PIPELINE_KINDS:
        raise ValueError(f"--pretrained_pipeline {folder} holds a {class_name}; this script post-trains "
                         f"{sorted(PIPELINE_KINDS)} (model.condition=dv_tokens for the diffusion decoder)")
    kind = PIPELINE_KINDS[class_name]
    from_folder = {"video2world": kind == "video2world",
                   "sigma_data": float(json.loads(scheduler_path.read_text())["sigma_data"])}
    if kind == "video2world":
        for name in ("condition_frame_channels", "residual_from_last_condition_frame"):
            from_folder[name] = bool(index.get(name, False))
    objective = config["objective"]
    if kind == "video2world" and "condition_reference" not in objective:
        # the folder's reference frame unless the config names one (it changes no weight shape: a config may
        # fine-tune a model onto the other reference); post-training (camera / action / multi-view) trains with the
        # last conditioning latent frame, whatever the base used
        reference = index.get("condition_reference", "last_latent_frame")
        objective = {**objective, "condition_reference": "last_latent_frame" if post_training_condition(config)
                     else reference}
    conflicts = [f"objective.{name}={objective[name]!r} but the pipeline has {value!r}"
                 for name, value in from_folder.items() if name in objective and objective[name] != value]
    if conflicts:
        raise ValueError(f"the config contradicts the pipeline it post-trains ({folder}): {'; '.join(conflicts)}. "
                         "Post-training takes these from the pipeline: remove them from the config")
    config = copy.deepcopy(config)
    config["objective"] = {**objective, **from_folder}
    config["model"]["pipeline"] = kind
    if index.get("max_sequence_length"):
        config["model"]["max_sequence_length"] = int(index["max_sequence_length"])
    return config


def pipeline_class(kind: str):
    from cosmos_hf.pipelines.pipeline_cosmos_text2world import CosmosText2WorldPipeline
    from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline

    return CosmosVideo2WorldPipeline if kind == "video2world" else CosmosText2WorldPipeline


def build_pipeline(config: dict):
    """Load (post-training) or create (pre-training) the pipeline whose transformer is trained."""
    from diffusers import CosmosTransformer3DModel, EDMEulerScheduler

    from cosmos_hf.diffusion.edm import EDMConfig
    from cosmos_hf.diffusion.nano import tiny_cosmos_vae, tiny_t5_text_encoder, transformer_config
    from cosmos_hf.diffusion.pixel_space import CosmosPixelSpaceAutoencoder
    from cosmos_hf.diffusion.text_encoding import load_text_encoder
    from cosmos_hf.tokenizers.convert import load_tokenizer, to_diffusers_autoencoder

    model, data = config["model"], config["data"]
    objective = EDMConfig.from_dict(config["objective"])
    cls = pipeline_class(model["pipeline"])
    if (model["pipeline"] == "video2world") != objective.video2world:
        raise ValueError("objective.video2world must be true exactly when model.pipeline is video2world")
    if model.get("pretrained_pipeline"):
        pipe = cls.from_pretrained(model["pretrained_pipeline"])
        if abs(pipe.scheduler.config.sigma_data - objective.sigma_data) > 1e-12:
            raise ValueError(f"objective.sigma_data={objective.sigma_data} differs from the pipeline's scheduler "
                             f"sigma_data={pipe.scheduler.config.sigma_data}")
        if objective.video2world:
            # not an architecture option: a config may change it, and the saved pipeline must sample as trained
            pipe.register_to_config(condition_reference=objective.condition_reference)
        return pipe
    if model["text_encoder"] == "tiny-t5":
        tokenizer, text_encoder = tiny_t5_text_encoder()
    else:
        tokenizer, text_encoder = load_text_encoder(model["text_encoder"])
    if model["vae"] == "required":
        raise ValueError("this config trains in a tokenizer's latent space: set model.vae to an AutoencoderKLCosmos "
                         "folder (e.g. the nano CV tokenizer), e.g. --set model.vae=<folder>")
    if model["vae"] is None:
        vae = CosmosPixelSpaceAutoencoder(latents_mean=model.get("pixel_latents_mean"),
                                          latents_std=model.get("pixel_latents_std"))
    elif model["vae"] == "tiny":
        vae = tiny_cosmos_vae()
    else:
        # through our loader: diffusers' from_pretrained would keep the folder's `legacy_mode` key (with a warning)
        # and write it into the saved pipeline's vae config
        vae = to_diffusers_autoencoder(load_tokenizer(model["vae"]))
    transformer = CosmosTransformer3DModel(**transformer_config(
        model["transformer"], vae.config.latent_channels, text_encoder.config.hidden_size
        if hasattr(text_encoder.config, "hidden_size") else text_encoder.config.d_model,
        video2world=objective.video2world, condition_frame_channels=objective.condition_frame_channels,
    ))
    scheduler = EDMEulerScheduler(
        sigma_min=model["scheduler"]["sigma_min"], sigma_max=model["scheduler"]["sigma_max"],
        sigma_data=objective.sigma_data, sigma_schedule="karras", num_train_timesteps=1000,
        prediction_type="epsilon", rho=7.0, final_sigmas_type="sigma_min",
    )
    kwargs = dict(default_height=data["height"], default_width=data["width"], default_num_frames=data["num_frames"],
                  default_fps=int(data["fps"]), max_sequence_length=model["max_sequence_length"],
                  default_guidance_scale=float(model["default_guidance_scale"]))
    if objective.video2world:
        kwargs.update(condition_frame_channels=objective.condition_frame_channels,
                      residual_from_last_condition_frame=objective.residual_from_last_condition_frame,
                      condition_reference=objective.condition_reference,
                      default_condition_detail_transfer=bool(model["default_condition_detail_transfer"]),
                      default_strength=float(model["default_strength"]),
                      default_condition_keep_threshold=model["default_condition_keep_threshold"])
    return cls(text_encoder, tokenizer, transformer, vae, scheduler, safety_checker=None, **kwargs)


# ---------------------------------------------------------------------------------------------------------- training
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="EDM training of Cosmos-Predict1 diffusion world models")
    parser.add_argument("--config", required=True, help="YAML config (see training/configs/diffusion_*.yaml)")
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--max_train_steps", type=positive_int, default=None)
    parser.add_argument("--pretrained_pipeline", default=None, help="post-train from this pipeline folder")
    parser.add_argument("--condition", choices=["dv_tokens", *POST_TRAINING_CONDITIONS], default=None,
                        help="dv_tokens: train the autoregressive WFM's diffusion decoder; camera / action / "
                             "multiview: post-train a Video2World --pretrained_pipeline into a camera-controlled, "
                             "action-conditioned or multi-view model (same as model.condition)")
    parser.add_argument("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint-<step> folder")
    parser.add_argument("--max_train_minutes", type=float, default=None,
                        help="stop by this wall-clock budget (for a lent machine): after 30 steps, max_train_steps "
                             "and a cosine schedule are shortened to what fits (training_utils.WallClockBudget)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set training.learning_rate=3e-4")
    return parser.parse_args(argv)


def encode_batch(pipe, batch, config, device, cache=None):
    """(latents in diffusion space [B,C,T,H,W], text features [B,L,D]) for a batch of videos + captions."""
    videos = batch["video"].to(device)
    with torch.no_grad():
        posterior = pipe.vae.encode(videos.to(pipe.vae.dtype)).latent_dist
        latents = pipe.normalize_latents(posterior.sample().float())
        text = pipe._get_t5_prompt_embeds(batch["caption"], config["model"]["max_sequence_length"], device=device,
                                          dtype=torch.float32)
    return latents, text


def objective_config(config: dict):
    from cosmos_hf.diffusion.edm import EDMConfig

    return EDMConfig.from_dict(config["objective"])


def uses_still_references(config: dict) -> bool:
    return objective_config(config).condition_reference == "still_frame"


def max_condition_frames(config: dict) -> int:
    return objective_config(config).max_condition_frames


def still_frame_references(pipe, videos: torch.Tensor, max_condition_frames: int) -> torch.Tensor:
    """`objective.condition_reference: still_frame`: [B, N, C, h, w], entry n-1 the pipeline's
    `encode_still_reference` for n conditioning latent frames (a still video of pixel frame (n-1) * temporal factor),
    so training sees exactly the reference the pipeline computes at inference."""
    temporal = pipe.vae_scale_factor_temporal
    if (max_condition_frames - 1) * temporal >= videos.shape[2]:
        raise ValueError(f"objective.max_condition_frames={max_condition_frames} needs more than "
                         f"{(max_condition_frames - 1) * temporal} frames per clip, got {videos.shape[2]}")
    with torch.no_grad():
        references = [pipe.encode_still_reference(videos[:, :, n * temporal : n * temporal + 1].to(pipe.vae.dtype))
                      for n in range(max_condition_frames)]
    return torch.stack(references, dim=1)


def resolve_config(args) -> dict:
    """The YAML config with `--set` overrides, then the command-line options; post-training takes the architecture
    from the pipeline folder (`adopt_pretrained_architecture`)."""
    if args.condition:  # same as model.condition in the YAML (validated with the rest of the config)
        args.overrides = [*args.overrides, f"model.condition={args.condition}"]
    config = load_config(args.config, args.overrides)
    if args.output_dir:
        config["output_dir"] = args.output_dir
    if args.max_train_steps is not None:
        config["training"]["max_train_steps"] = args.max_train_steps
    if args.pretrained_pipeline:
        config["model"]["pretrained_pipeline"] = args.pretrained_pipeline
    if config["training"]["lora"] and not config["model"].get("pretrained_pipeline"):
        # only the adapter is saved (pytorch_lora_weights.safetensors): an adapter on a new, random DiT is useless
        # without that DiT, which was not saved
        raise ValueError("training.lora trains an adapter on a trained pipeline: set model.pretrained_pipeline (or "
                         "--pretrained_pipeline), or set training.lora=null to train the whole model")
    if config["model"].get("pretrained_pipeline") and not config["model"].get("condition"):
        config = adopt_pretrained_architecture(config)
    return config


def post_training_condition(config: dict) -> str | None:
    condition = config["model"].get("condition")
    return condition if condition in POST_TRAINING_CONDITIONS else None


def build_training_pipeline(config: dict, device):
    """The pipeline whose DiT is trained (plain, diffusion decoder, or post-trained), its frozen encoders on `device`,
    and LoRA / gradient checkpointing applied to the DiT as the config asks."""
    from cosmos_hf.diffusion import post_training

    condition = post_training_condition(config)
    if condition:  # camera / action / multiview: the Video2World DiT becomes the conditioned one
        pipe = post_training.build_post_training_pipeline(config)
    elif config["model"].get("condition") == "dv_tokens":
        pipe = build_decoder_pipeline(config)
    else:
        pipe = build_pipeline(config)
    pipe.set_progress_bar_config(disable=True)
    # the pipeline's own argument checks: frame count vs VAE, size vs patch and transformer max_size
    data = config["data"]
    pipe.check_call_inputs("-", None, data["height"], data["width"], data["num_frames"], 1, 1.0, 1, "np")
    pipe.text_encoder.to(device).requires_grad_(False)
    pipe.vae.to(device).requires_grad_(False).eval()
    transformer, lora = pipe.transformer, config["training"].get("lora")  # checked and completed by load_config
    if lora:
        from peft import LoraConfig

        # post-training: the conditioned DiT's new layers are trained fully beside the LoRA (peft's modules_to_save)
        new_parameters = post_training.new_parameter_names(transformer) if condition else []
        transformer.requires_grad_(False)
        transformer.add_adapter(LoraConfig(
            r=lora["rank"], lora_alpha=float(lora["alpha"]), lora_dropout=float(lora["dropout"]),
            init_lora_weights=True, target_modules=list(lora["target_modules"]),
        ))
        for name, parameter in transformer.named_parameters():
            if name in new_parameters:
                parameter.requires_grad_(True)
    if config["training"]["gradient_checkpointing"]:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    return pipe


def build_training_module(config: dict, pipe, device) -> nn.Module:
    """DiT (+ token embedder) + EDM objective in one module, so accelerate wraps (DDP/FSDP) a single thing."""
    from cosmos_hf.diffusion import post_training
    from cosmos_hf.diffusion.edm import EDMObjective

    condition = post_training_condition(config)
    if config["model"].get("condition") == "dv_tokens":
        from cosmos_hf.diffusion.diffusion_decoder import DVTokenConditionedEDMObjective

        pipe.dv_tokenizer.to(device).requires_grad_(False).eval()
        pipe.token_embedder.requires_grad_(not config["training"].get("lora")).train()
        objective = DVTokenConditionedEDMObjective(config["objective"], config["model"]["token_dropout"])
        return DVTokenDecoderTrainingModule(pipe.transformer, pipe.token_embedder, objective)
    if condition:
        num_views = pipe.transformer.config["num_views"] if condition == "multiview" else None
        return post_training.PostTrainingDenoiserModule(pipe.transformer, EDMObjective(config["objective"]),
                                                        num_views=num_views)
    return DenoiserTrainingModule(pipe.transformer, EDMObjective(config["objective"]))


def build_training_data(config: dict, pipe, module, device, accelerator):
    """(dataset, DataLoader kwargs): the clips of `data:` (cosmos_hf.data), optionally pre-encoded once (cached
    latents + text features)."""
    data, condition = config["data"], post_training_condition(config)
    if condition:  # physics-world clips with actions / camera poses / rigs, simulated up front
        if data.get("scene_weights"):
            raise ValueError(f"data.scene_weights weighs physics scenes; the {condition} post-training data has none")
        sample_weights = None
        from cosmos_hf.data.post_training_datasets import build_post_training_dataset, collate_post_training
        from cosmos_hf.diffusion import post_training

        dataset = build_post_training_dataset(condition, data, num_views=getattr(module, "num_views", None))
        if condition == "action" and config["model"].get("normalize_actions"):
            from cosmos_hf.diffusion.action_conditioning import action_statistics

            # computed from the same simulated clips on every (re)start, so a resumed run gets the same values
            mean, std = action_statistics(np.concatenate([clip["actions"] for clip in dataset.clips]))
            accelerator.unwrap_model(module).transformer.set_action_normalization(mean, std)
            logger.info("action normalisation: mean %s, std %s", np.round(mean, 4), np.round(std, 4))
        if condition == "multiview" and config["model"].get("normalize_trajectory"):
            from cosmos_hf.diffusion.multiview import trajectory_statistics

            mean, std = trajectory_statistics(np.stack([clip["trajectory"] for clip in dataset.clips]))
            accelerator.unwrap_model(module).transformer.set_trajectory_normalization(mean, std)
            logger.info("trajectory normalisation: mean %s, std %s", np.round(mean, 3), np.round(std, 3))
        if data["cache_latents"]:
            dataset = post_training.cache_post_training_latents(dataset, pipe, condition,
                                                                config["model"]["max_sequence_length"], device)
        collate_fn = collate_post_training
    else:
        dataset = build_dataset(data, training=True)
        sample_weights = clip_sampling_weights(dataset, data.get("scene_weights"))  # before caching: a list then
        if data["cache_latents"]:
            dataset = cache_latents(dataset, pipe, config, device, Path(config["output_dir"]), accelerator)
        collate_fn = collate
    return dataset, dict(collate_fn=None if data["cache_latents"] else collate_fn, num_workers=data["num_workers"],
                         sample_weights=sample_weights)


def train_step(module, pipe, batch, config, accelerator, optimizer, lr_scheduler, trainable):
    """One forward/backward/optimizer step (inside `accelerator.accumulate`); returns the objective's outputs."""
    from cosmos_hf.diffusion import post_training

    device, data, condition = accelerator.device, config["data"], post_training_condition(config)
    dv_condition = config["model"].get("condition") == "dv_tokens"
    extra_inputs = {}
    if condition:  # latents, text and the conditioned DiT's extra inputs (plucker / action / ...)
        latents, text, extra_inputs = post_training.post_training_inputs(
            pipe, batch, condition, config["model"]["max_sequence_length"], device)
    elif data["cache_latents"]:
        latents, text = batch["latents"].to(device), batch["text"].to(device)
        if dv_condition:
            extra_inputs["tokens"] = batch["tokens"].to(device)
        if "still_references" in batch:
            extra_inputs["still_references"] = batch["still_references"].to(device)
    else:
        if random.random() < config["training"]["image_batch_probability"]:  # joint image + video batches
            frame = random.randrange(batch["video"].shape[2])
            batch = {**batch, "video": batch["video"][:, :, frame : frame + 1]}
        latents, text = encode_batch(pipe, batch, config, device)
        if dv_condition:
            with torch.no_grad():
                extra_inputs["tokens"] = pipe.dv_tokenizer.tokenize(batch["video"].to(device, pipe.dv_tokenizer.dtype))
        if uses_still_references(config) and latents.shape[2] > 1:
            extra_inputs["still_references"] = still_frame_references(
                pipe, batch["video"].to(device), max_condition_frames(config))
    out = module(latents, text, fps=data["fps"], **extra_inputs)
    optimizer_step(accelerator, out["loss"], trainable, config["training"]["max_grad_norm"], optimizer, lr_scheduler)
    return out


def main(argv=None):
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    from cosmos_hf.data import write_video

    args = parse_args(argv)
    config = resolve_config(args)
    train_cfg, val_cfg = config["training"], config["validation"]
    output_dir = Path(config["output_dir"])
    check_no_later_checkpoints(output_dir, args.resume_from_checkpoint)  # before config.yaml is written
    accelerator = setup_accelerator(config, "train_diffusion")  # seeds every process differently (its own noise)
    device = accelerator.device

    pipe = build_training_pipeline(config, device)
    module = build_training_module(config, pipe, device)
    trainable = [p for p in module.parameters() if p.requires_grad]
    accelerator.print(f"processes: {accelerator.num_processes} ({accelerator.distributed_type}); "
                      f"trainable parameters: {sum(p.numel() for p in trainable):,} "
                      f"(transformer total {sum(p.numel() for p in pipe.transformer.parameters()):,})")
    dataset, loader_kwargs = build_training_data(config, pipe, module, device, accelerator)

    optimizer = torch.optim.AdamW(trainable, lr=train_cfg["learning_rate"], betas=tuple(train_cfg["adam_betas"]),
                                  weight_decay=train_cfg["adam_weight_decay"], eps=train_cfg["adam_epsilon"])
    max_steps = train_cfg["max_train_steps"]
    lr_scheduler = build_lr_scheduler(optimizer, train_cfg, accelerator.num_processes,
                                      max_train_steps=lambda: max_steps)  # read at every step: the budget may cut it
    # the data loader is not prepared by accelerate: each epoch's order (and each process's share) comes from the
    # seed and the epoch, so a resumed run continues it exactly (training_utils.epoch_data_loader)
    module, optimizer, lr_scheduler = accelerator.prepare(module, optimizer, lr_scheduler)
    ema = None
    if train_cfg["ema_decay"]:
        ema = EMAModel([p for p in accelerator.unwrap_model(module).transformer.parameters() if p.requires_grad],
                       decay=float(train_cfg["ema_decay"]))
    training_state = dict(models=[module], optimizers=[optimizer], schedulers=[lr_scheduler],
                          objects={"ema": ema} if ema is not None else {})
    resumed = resume_training_state(accelerator, args.resume_from_checkpoint, output_dir, **training_state)
    global_step = resumed["global_step"]
    epoch, batches_in_epoch = resumed.get("epoch", 0), resumed.get("batches_in_epoch", 0)  # the data position
    if ema is not None:
        ema.to(device)  # loaded on the CPU
    truncate_log(output_dir / "train_log.jsonl", global_step, accelerator)  # later steps are trained again

    progress = tqdm(range(max_steps), initial=global_step, desc="steps", disable=not accelerator.is_local_main_process)
    validation_clip = first_video(dataset) if val_cfg["prompts"] else None  # the same clip, resumed or not
    budget = WallClockBudget(args.max_train_minutes, global_step, time.time())
    while global_step < max_steps:
        loader = epoch_data_loader(dataset, train_cfg["batch_size"], config["seed"], epoch, batches_in_epoch,
                                   accelerator, **loader_kwargs)
        for batch in loader:
            batches_in_epoch += 1
            if validation_clip is None:
                validation_clip = batch["video"][:1].cpu() if "video" in batch else None
            budget.before_step(global_step)
            with accelerator.accumulate(module):
                out = train_step(module, pipe, batch, config, accelerator, optimizer, lr_scheduler, trainable)
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            max_steps = progress.total = budget.steps_that_fit(global_step, max_steps, accelerator)
            if ema is not None:
                ema.step([p for p in accelerator.unwrap_model(module).transformer.parameters() if p.requires_grad])
            loss = accelerator.gather(out["loss"].detach()[None]).mean().item()
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr_scheduler.get_last_lr()[0]:.2e}")
            if every(global_step, train_cfg["log_every"]) or global_step in (1, max_steps):
                accelerator.log({"loss": loss, "edm_loss": out["edm_loss"].item(), "mse": out["mse"].item()},
                                step=global_step)
            if every(global_step, train_cfg["checkpointing_steps"]):
                save_checkpoint(accelerator, output_dir, global_step, train_cfg["checkpoints_total_limit"],
                                **training_state, train_state={"epoch": epoch, "batches_in_epoch": batches_in_epoch})
            if val_cfg["every_steps"] and global_step % val_cfg["every_steps"] == 0:
                with fork_rng_state():  # sampling must not shift the training noise (resume == uninterrupted)
                    run_validation(accelerator, module, pipe, ema, config, validation_clip, output_dir, global_step,
                                   write_video)
            if global_step >= max_steps:
                break
        else:  # the epoch is done
            if batches_in_epoch == 0:  # an IterableDataset smaller than one batch (map-style: the sampler checks)
                raise ValueError(f"the training data gave no batch of training.batch_size {train_cfg['batch_size']}: "
                                 "it has fewer clips than one batch; add clips or lower training.batch_size")
            epoch, batches_in_epoch = epoch + 1, 0

    accelerator.wait_for_everyone()
    if train_cfg["checkpointing_steps"] and not (output_dir / f"checkpoint-{global_step}").exists():
        save_checkpoint(accelerator, output_dir, global_step, train_cfg["checkpoints_total_limit"], **training_state,
                        train_state={"epoch": epoch, "batches_in_epoch": batches_in_epoch})
    save_final(accelerator, module, pipe, ema, config, output_dir, global_step)
    if val_cfg["prompts"] and accelerator.is_main_process:
        run_validation(accelerator, module, pipe, ema, config, validation_clip, output_dir, global_step, write_video)
    accelerator.end_training()
    return 0


def first_video(dataset):
    """The first clip of a map-style dataset as [1,3,T,H,W] (the validation conditioning), or None."""
    if isinstance(dataset, IterableDataset) or len(dataset) == 0:
        return None
    item = dataset[0]
    return item["video"][None] if isinstance(item, dict) and "video" in item else None


def cache_latents(dataset, pipe, config, device, output_dir, accelerator):
    """Encode every clip once (first frames, no random crop) and keep latents + text features (+ the DV tokens for
    the diffusion decoder) in memory; the cache file records `latent_cache_key` and is refused for other data."""
    if isinstance(dataset, IterableDataset):
        raise ValueError("data.cache_latents needs a map-style dataset (folder, physics or clips), not webdataset")
    dv_condition = config["model"].get("condition") == "dv_tokens"
    key = latent_cache_key(config)
    cache_path = output_dir / "latent_cache.safetensors"
    tensors = load_tensor_cache(cache_path, key, what="data or encoders")
    if tensors is not None and dv_condition and "tokens" not in tensors:
        raise ValueError(f"{cache_path} has no DV tokens (it was made for a model without model.condition="
                         f"dv_tokens); delete it or use another output_dir")
    if tensors is None:
        if hasattr(dataset, "random_start"):
            dataset.random_start = False
        latents, texts, tokens = [], [], []
        for index in range(len(dataset)):
            item = collate([dataset[index]])
            lat, txt = encode_batch(pipe, item, config, device)
            latents.append(lat[0].cpu())
            texts.append(txt[0].cpu())
            if dv_condition:
                with torch.no_grad():
                    ids = pipe.dv_tokenizer.tokenize(item["video"].to(device, pipe.dv_tokenizer.dtype))
                tokens.append(ids[0].cpu())
        tensors = {"latents": torch.stack(latents), "text": torch.stack(texts)}
        if dv_condition:
            tensors["tokens"] = torch.stack(tokens)
        if accelerator.is_main_process:
            save_tensor_cache(cache_path, tensors, key)
    held = tensors["still_references"].shape[1] if "still_references" in tensors else 0
    if uses_still_references(config) and held < max_condition_frames(config):
        # added to an existing cache too (or redone for more conditioning lengths than it holds): they depend on the
        # same clips and encoder, so the key does not change
        if hasattr(dataset, "random_start"):
            dataset.random_start = False
        tensors["still_references"] = torch.cat([
            still_frame_references(pipe, collate([dataset[index]])["video"].to(device),
                                   max_condition_frames(config)).cpu()
            for index in range(len(dataset))])
        if accelerator.is_main_process:
            save_tensor_cache(cache_path, tensors, key)
    accelerator.print(f"cached latents {tuple(tensors['latents'].shape)}")
    names = [name for name in ("latents", "text", "tokens", "still_references") if name in tensors]
    return [dict(zip(names, values)) for values in zip(*(tensors[name] for name in names))]


def _transformer_for_saving(accelerator, module, ema):
    """A plain copy of the trained transformer (EMA weights if EMA is on), gathered from DDP/FSDP."""
    state = accelerator.get_state_dict(module)
    unwrapped = accelerator.unwrap_model(module).transformer
    transformer = copy.deepcopy(unwrapped) if not hasattr(unwrapped, "_fsdp_wrapped_module") else unwrapped
    if accelerator.is_main_process and state is not None:
        prefix = "transformer."
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        transformer.load_state_dict(own, strict=False)
        if ema is not None:
            ema.copy_to([p for p in transformer.parameters() if p.requires_grad])
    return transformer.eval()


def save_final(accelerator, module, pipe, ema, config, output_dir: Path, step: int | None = None):
    from peft.utils import get_peft_model_state_dict

    from cosmos_hf.utils import atomic_path

    transformer = _transformer_for_saving(accelerator, module, ema)
    embedder = None
    if hasattr(pipe, "token_embedder"):  # diffusion decoder: the token embedder is trained with the DiT
        state = accelerator.get_state_dict(module)  # collective under FSDP: every process calls it
        embedder = copy.deepcopy(accelerator.unwrap_model(module).token_embedder).eval()
        if state is not None:
            embedder.load_state_dict({k[len("token_embedder."):]: v for k, v in state.items()
                                      if k.startswith("token_embedder.")})
    if not accelerator.is_main_process:
        return
    if config["training"].get("lora"):
        lora_state = get_peft_model_state_dict(transformer)
        with atomic_path(output_dir / "pytorch_lora_weights.safetensors") as tmp:
            type(pipe).save_lora_weights(tmp.parent, transformer_lora_layers=lora_state, weight_name=tmp.name)
        accelerator.print(f"saved LoRA weights to {output_dir / 'pytorch_lora_weights.safetensors'}")
    merged_lora = bool(config["training"].get("lora")) and config["model"].get("condition") in POST_TRAINING_CONDITIONS
    if merged_lora:
        # post-training trains the new input layers fully, so the LoRA file alone is not the model: the pipeline
        # is saved too, with the LoRA merged into the DiT
        transformer.fuse_lora()
        transformer.unload_lora()
    if not config["training"].get("lora") or merged_lora:
        final = copy.copy(pipe)
        final.register_modules(transformer=transformer)
        if embedder is not None:
            final.register_modules(token_embedder=embedder)
        with atomic_path(output_dir / "pipeline", is_dir=True) as tmp:
            final.save_pretrained(tmp)
            (tmp / "README.md").write_text(model_card(config, type(pipe).__name__, output_dir, step))
        accelerator.print(f"saved pipeline to {output_dir / 'pipeline'}")


def _data_description(data: dict, condition: str | None = None) -> str:
    if condition in ("camera", "action", "multiview"):  # post-training data come from the matching sim task
        task = {"camera": "camera task", "action": "push task", "multiview": "multi-camera rig"}[condition]
        first = int(data.get("seed_offset") or 0)
        return f"physics world {task}, {data.get('num_clips')} clips (simulator seeds {first}..{first + data.get('num_clips') - 1})"
    mixture = ""
    if data.get("scene_weights"):  # the mixture changes what the model saw: say so
        mixture = "; scenes drawn by weight " + ", ".join(f"{k} {v}" for k, v in data["scene_weights"].items())
    if data.get("type") == "physics":
        first = int(data.get("seed_offset") or 0)
        return (f"physics world, {data.get('num_clips')} clips (simulator seeds {first}..{first + data.get('num_clips') - 1})"
                f"{mixture}")
    return f"{data.get('type')} `{data.get('path') or ''}`{mixture}"


def model_card(config: dict, class_name: str, output_dir: Path, step: int | None = None) -> str:
    """A Hub model card (metadata + training facts read from this run's own log)."""
    entries = read_log(output_dir / "train_log.jsonl", up_to_step=step)
    last = entries[-1] if entries else {}
    step = step if step is not None else last.get("step", "?")
    model, data, training = config["model"], config["data"], config["training"]
    kind = "Video2World" if config["model"]["pipeline"] == "video2world" else "Text2World"
    if model.get("condition") == "dv_tokens":
        kind = "diffusion decoder (DV tokens -> CV latents)"
    tag = "image-to-video" if kind == "Video2World" else "text-to-video"
    if model.get("pretrained_pipeline"):  # post-training: the architecture and encoders are the base pipeline's
        components = (f"| base pipeline | `{model['pretrained_pipeline']}` (transformer, text encoder, latent space) |\n"
                      f"| condition | `{model.get('condition') or 'none'}` |")
    else:
        components = (f"| transformer | `{model.get('transformer')}` |\n"
                      f"| text encoder | `{model.get('text_encoder')}` (max {model.get('max_sequence_length')} tokens) |\n"
                      f"| latent space | `{model.get('vae') or 'pixels (CosmosPixelSpaceAutoencoder)'}` |")
    body = f"""# cosmos-hf {kind} ({class_name})

A Cosmos-Predict1-style diffusion world model (`CosmosTransformer3DModel`, AdaLN-LoRA DiT, EDM) trained with
`training/train_diffusion.py` of cosmos-hf.

```python
from diffusers import DiffusionPipeline

pipe = DiffusionPipeline.from_pretrained("<this folder>", trust_remote_code=True)  # needs `pip install cosmos-hf`
```

| | |
|---|---|
{components}
| data | {_data_description(data, model.get("condition"))}, {data.get("num_frames")} frames at {data.get("height")}x{data.get("width")}, {data.get("fps")} fps |
| steps | {step} (batch {training.get("batch_size")}, lr {training.get("learning_rate")}, {training.get("lr_scheduler")}, EMA {training.get("ema_decay")}) |
| last logged loss | {last.get("loss", "? (no log in this output_dir)")} |
| objective | `{json.dumps(config.get("objective", {}))}` |

No guardrail is bundled: pass `safety_checker=` to run one.
"""
    return hub_model_card(body, library_name="diffusers", pipeline_tag=tag, tags=["cosmos", "cosmos-hf", "world-model",
                                                                                  "edm"])


@torch.no_grad()
def run_validation(accelerator, module, pipe, ema, config, validation_clip, output_dir, step, write_video):
    val = config["validation"]
    if not val["prompts"] or not accelerator.is_main_process:
        return
    transformer = accelerator.unwrap_model(module).transformer
    params = [p for p in transformer.parameters() if p.requires_grad]
    if ema is not None:
        ema.store(params)
        ema.copy_to(params)
    was_training = transformer.training
    transformer.eval()
    pipe.transformer = transformer
    try:
        for index, prompt in enumerate(val["prompts"]):
            kwargs = dict(prompt=prompt, num_inference_steps=val["num_inference_steps"],
                          guidance_scale=val["guidance_scale"], output_type="np",
                          generator=torch.Generator().manual_seed(val["seed"] + index))
            if config["model"]["pipeline"] == "video2world":
                if validation_clip is None:
                    continue
                kwargs["video"] = validation_clip[:, :, : val["condition_frames"]]
            if config["model"].get("condition") == "dv_tokens":  # decoder: re-decode the first training clip
                if validation_clip is None:
                    continue
                kwargs["video"] = validation_clip.to(pipe._execution_device)
            frames = pipe(**kwargs).frames[0]
            path = output_dir / "validation" / f"step-{step:06d}-{index}.mp4"
            write_video(path, (frames * 255).round().astype(np.uint8), fps=config["data"]["fps"])
    finally:
        if ema is not None:
            ema.restore(params)
        transformer.train(was_training)


if __name__ == "__main__":
    raise SystemExit(main())
