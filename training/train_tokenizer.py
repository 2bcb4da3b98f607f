#!/usr/bin/env python
"""Train or fine-tune a Cosmos tokenizer (CV / DV video, CI / DI image) with accelerate — the paper's two-stage recipe.

    accelerate launch training/train_tokenizer.py --config training/configs/tokenizer_nano_dv4x8x8.yaml
    accelerate launch training/train_tokenizer.py --config ... --resume_from_checkpoint latest

Stage 1 trains with L1 + perceptual loss; stage 2 adds the optical-flow, Gram-matrix and adversarial (3D patch
discriminator, hinge) losses (see `cosmos_hf/tokenizers/losses.py` for what replaces weights we cannot download).
Images and videos train jointly: every `image_every`-th step is a batch of 1-frame videos.
Not in the reference, for small tokenizers trained from scratch (off by default; README "Initialisation and colour"):
`loss.mse` (a squared-error term), `model.colour_path_init`, `training.freeze_encoder_steps` (decoder first),
`training.freeze_encoder` (fine-tune only the decoder of `model.pretrained`: the encoder and so the latent space stay
byte-identical, and world models trained in that latent space keep working with the new decoder).

Data (`data.source`): `physics` (clips simulated on the fly by cosmos_hf.sim, an endless stream), `folder`
(a folder with videos/*.mp4, as `cosmos-hf sim generate` writes), `clips` (a clip archive .npz written by
`cosmos-hf sim export-clips`, for machines without pybullet; its last `validation_clips` clips are held out) or
`webdataset` (tar shards holding *.mp4).
Clips are cropped to valid causal lengths (1 + k * temporal_compression) and to `height` x `width`.

Data come from `cosmos_hf.data.ClipSource`, addressed by step (`clip_key`), so a resumed run trains on the same
clips, bit-identical to an uninterrupted one; `data.views` (default null: a view drawn per clip) puts the physics
stream on the physics datasets' scene/view rule. The learning rate follows `training.lr_scheduler` (default
`cosine_to_10_percent`: warm-up, cosine decay to 10%; the encoder's parameter group is held at 0 for
`training.freeze_encoder_steps`, then warms up again).

Outputs in `output_dir`: `checkpoint-<step>/` (safetensors + JSON, no pickle; see cosmos_hf.training_utils),
`config.yaml`, `model/` (save_pretrained folder with a model card, written at the end), `metrics.jsonl` (losses and
held-out PSNR/SSIM, one line a step: the JSON-lines log the other scripts call `train_log.jsonl`; `training.log_with`
adds accelerate trackers under `logs/`).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from cosmos_hf.data import ClipSource, clip_key, tensor_to_frames
from cosmos_hf.tokenizers import (
    from_config_name,
    load_tokenizer,
    model_from_reference_kwargs,
)
from cosmos_hf.tokenizers import losses as tokenizer_losses
from cosmos_hf.training_utils import (
    WallClockBudget,
    build_lr_scheduler,
    check_no_later_checkpoints,
    every,
    resume_training_state,
    save_checkpoint,
    setup_accelerator,
)
from cosmos_hf.training_utils import load_config as load_training_config
from cosmos_hf.training_utils import model_card as hub_model_card
from cosmos_hf.training_utils import truncate_log
from cosmos_hf.utils import atomic_path, positive_int

STAGE_DEFAULTS = {
    1: dict(l1=1.0, mse=0.0, chroma=0.0, perceptual=0.1, flow=0.0, gram=0.0, adversarial=0.0),
    2: dict(l1=1.0, mse=0.0, chroma=0.0, perceptual=0.1, flow=0.01, gram=0.062, adversarial=0.1),
}

DEFAULT_CONFIG = dict(
    output_dir="outputs/tokenizer",
    seed=0,
    model=dict(config_name="DV4x8x8", overrides={}, pretrained=None, reference_config=None, zero_init_residual=True,
               colour_path_init=False, colour_path_chroma_gain=1.0),
    data=dict(source="physics", path=None, num_frames=17, height=64, width=64, scenes=None, views=None, image_every=4,
              color_augmentation=0.0, validation_clips=8, validation_seed=1_000_000),
    training=dict(batch_size=4, learning_rate=1e-3, adam_betas=[0.9, 0.99], adam_weight_decay=0.0,
                  max_train_steps=1000, lr_scheduler="cosine_to_10_percent", lr_warmup_steps=50,
                  gradient_accumulation_steps=1, max_grad_norm=1.0, checkpointing_steps=200, checkpoints_total_limit=2,
                  validation_steps=200, mixed_precision="no", freeze_encoder_steps=0, freeze_encoder=False,
                  log_every=1, log_with=[]),
    # loss weights left at None take the stage's default (STAGE_DEFAULTS)
    loss=dict(stage=1, **{name: None for name in STAGE_DEFAULTS[1]}, vgg_weights=None, raft_weights=None,
              adversarial_start_step=0, discriminator_lr=1e-4, chroma_warmup_steps=0),
)


# keys this script had before every training script used the same names
RENAMED_KEYS = {"training.adam_beta1": "training.adam_betas: [beta1, beta2]",
                "training.adam_beta2": "training.adam_betas: [beta1, beta2]",
                "training.weight_decay": "training.adam_weight_decay"}


def load_config(path, overrides=()):
    """DEFAULT_CONFIG merged with the YAML file, then `key.path=value` overrides (`--set`), then stage defaults.
    Unknown keys are errors; the section `train:` and keys of older configs are refused with their new names."""
    config = load_training_config(path, DEFAULT_CONFIG, overrides, renamed_sections={"train": "training"},
                                  renamed_keys=RENAMED_KEYS)
    stage = int(config["loss"].get("stage", 1))
    if stage not in STAGE_DEFAULTS:
        raise ValueError(f"loss.stage must be 1 or 2, got {stage}")
    config["loss"] = {**STAGE_DEFAULTS[stage], **{k: v for k, v in config["loss"].items() if v is not None}}
    model = config["model"]
    # a pre-trained tokenizer is loaded as its folder describes (build_model): these options build or initialise a
    # new one, and were silently ignored next to model.pretrained
    ignored = [f"model.{key}" for key in ("overrides", "reference_config", "colour_path_init") if model.get(key)]
    if model.get("pretrained") and ignored:
        raise ValueError(f"model.pretrained loads the tokenizer {model['pretrained']} as it was saved; "
                         f"{', '.join(ignored)} only apply to a new tokenizer: remove them, or model.pretrained")
    return config


def zero_init_residual_branches(model) -> int:
    """Zero the last layer of every residual branch (ResNet `conv2`'s final conv, attention `to_out`); returns how many
    layers. Only the *last* conv of the factorised `conv2` (spatial `conv_s` then temporal `conv_t`) is zeroed: zeroing
    both would leave each branch with no gradient path (conv_t's weight gradient is conv_s's output, which is zero, and
    conv_s's gradient flows through conv_t's zero weights), so the branch would stay dead for the whole run.

    Why: with the reference init, every residual branch adds a random, input-independent offset that the per-frame
    single-group GroupNorms then rescale, so the input reaches the latent only as a small fraction of it. Starting
    every block as the identity keeps the input in the residual stream. The architecture is unchanged: checkpoints
    load in diffusers.
    """
    count = 0
    for name, module in model.named_modules():
        parts = name.split(".")
        if not isinstance(module, (torch.nn.Conv3d, torch.nn.Conv2d, torch.nn.Linear)):
            continue
        last_conv_of_branch = "resnets" in parts and "conv2" in parts and parts[-1] in ("conv2", "conv_t")
        if last_conv_of_branch or "to_out" in parts[-2:]:  # attention output: `to_out` or `to_out.0`
            torch.nn.init.zeros_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
            count += 1
    return count


def colour_path_init(model, chroma_gain: float = 1.0) -> int:
    """Initialise a Cosmos video encoder so that its first 3 channels carry the local mean colour (the Haar low band)
    from the patcher to the latent as luma (R+G+B)/3 and two opponent differences, (R-B)/2 and (2G-R-B)/4, times
    `chroma_gain` (> 1 lifts the low-variance colour directions toward luma's). The residual branches
    (zero-initialised) and the samplers' average-pool paths pass them through; returns how many layers it set.
    Experimental (`model.colour_path_init`, `model.colour_path_chroma_gain`; off by default); the architecture and
    checkpoint layout are unchanged.

    Why: small tokenizers trained from scratch on the physics world learn an encoder that drops colour, while the
    nano decoder learns colour quickly once its latent carries it (`training/colour_diagnostics.py`); this starts the
    encoder from a latent that carries it.
    """
    encoder = getattr(model, "encoder", None)
    if not hasattr(getattr(encoder, "conv_in", None), "conv_s"):
        raise ValueError("model.colour_path_init supports the causal video tokenizers (CV/DV) only, "
                         f"not {type(model).__name__}")
    num_channels = 3
    count = 0
    opponent = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.5, 0.0, -0.5], [-0.25, 0.5, -0.25]])
    opponent[1:] *= chroma_gain

    def copy_rows(conv):
        nonlocal count
        with torch.no_grad():
            conv.weight[:num_channels] = 0
            kt, kh, kw = conv.weight.shape[2:]
            for c in range(num_channels):  # causal convs see frames t-k+1..t: the last temporal tap is frame t
                conv.weight[c, c, kt - 1, kh // 2, kw // 2] = 1.0
            if conv.bias is not None:
                conv.bias[:num_channels] = 0
        count += 1

    def zero_rows(conv):
        nonlocal count
        with torch.no_grad():
            conv.weight[:num_channels] = 0
            if conv.bias is not None:
                conv.bias[:num_channels] = 0
        count += 1

    copy_rows(encoder.conv_in.conv_s)
    with torch.no_grad():  # the patcher puts the low band of R, G, B in channels 0..2
        kh, kw = encoder.conv_in.conv_s.weight.shape[3:]
        encoder.conv_in.conv_s.weight[:num_channels, :num_channels, -1, kh // 2, kw // 2] = opponent
    copy_rows(encoder.conv_in.conv_t)
    for name, module in encoder.named_modules():
        parts = name.split(".")
        if not isinstance(module, torch.nn.Conv3d):
            continue
        if "downsamplers" in parts and parts[-1] in ("conv1", "conv2"):
            zero_rows(module)  # added to an average pool: zero rows leave the pooled colour
        elif ("downsamplers" in parts and parts[-1] == "conv3") or parts[-1] == "conv_shortcut":
            copy_rows(module)
    copy_rows(encoder.conv_out.conv_s)
    copy_rows(encoder.conv_out.conv_t)
    copy_rows(model.quant_conv)
    return count


def build_model(model_config):
    if model_config.get("pretrained"):
        return load_tokenizer(model_config["pretrained"])
    if model_config.get("reference_config"):
        model = model_from_reference_kwargs(model_config["reference_config"])
    else:
        model = from_config_name(model_config["config_name"], **(model_config.get("overrides") or {}))
    if model_config.get("zero_init_residual", True):
        zero_init_residual_branches(model)
    if model_config.get("colour_path_init", False):
        colour_path_init(model, float(model_config.get("colour_path_chroma_gain", 1.0)))
    return model


def encoder_parameters(model) -> list:
    """The parameters on the encoder side of the latent: encoder and quant_conv (what training.freeze_encoder_steps
    holds)."""
    params = list(model.encoder.parameters())
    if getattr(model, "quant_conv", None) is not None:
        params += list(model.quant_conv.parameters())
    return params


def freeze_encoder(model, model_config: dict) -> int:
    """`training.freeze_encoder`: the encoder side stops training for the whole run (no gradients, so no backward
    through it either); returns how many parameters were frozen."""
    if not model_config.get("pretrained"):
        raise ValueError("training.freeze_encoder fine-tunes the decoder of a trained tokenizer and keeps its "
                         "encoder: set model.pretrained to that tokenizer's folder")
    params = encoder_parameters(model)
    for param in params:
        param.requires_grad_(False)
    return sum(param.numel() for param in params)


def compression(model):
    config = model.config
    spatial = config.get("spatial_compression") or config.get("spatial_compression_ratio")
    temporal = config.get("temporal_compression") or config.get("temporal_compression_ratio") or 1
    is_video = "temporal_compression" in config or "temporal_compression_ratio" in config
    return int(temporal), int(spatial), is_video


# -- data (cosmos_hf.data.ClipSource) ---------------------------------------------------------------------
def augment_colors(video: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Per-clip random RGB permutation + per-channel gain/offset on [-1,1] video `[B,3,...]` (`data.color_augmentation`).

    Why: the physics world is mostly grey surfaces with small coloured objects, so chroma is a low-variance input
    direction, which gradient descent learns last; tinting every clip differently makes colour vary as much as light.
    """
    if strength <= 0:
        return video
    batch = video.shape[0]
    shape = (batch, 3) + (1,) * (video.ndim - 2)
    perms = torch.stack([torch.randperm(3, generator=generator) for _ in range(batch)])
    video = torch.gather(video, 1, perms.view(shape).expand_as(video).to(video.device))
    gain = 1 + strength * (2 * torch.rand(shape, generator=generator) - 1)
    offset = strength * (2 * torch.rand(shape, generator=generator) - 1)
    return (video * gain.to(video) + offset.to(video)).clamp(-1, 1)


# -- training ----------------------------------------------------------------------------------------------------
def reconstruct(model, video):
    """Differentiable encode -> (quantize) -> decode for any of our tokenizer classes; images are 1-frame videos."""
    if hasattr(model, "tokenize"):  # discrete: FSQ with straight-through rounding
        return model(video).sample
    return model.decode(model.encode(video).latent_dist.mode()).sample


def evaluate(model, clips: torch.Tensor):
    from cosmos_hf.evaluation.video_metrics import psnr, ssim_per_frame

    model.eval()
    psnrs, ssims, chroma_errors = [], [], []
    with torch.no_grad():
        for clip in clips.split(1):
            recon = reconstruct(model, clip.to(model.device, model.dtype)).float().cpu()
            a, b = tensor_to_frames(clip), tensor_to_frames(recon)
            psnrs.append(psnr(a, b))
            ssims.append(float(np.mean(ssim_per_frame(a, b))))
            chroma_errors.append(tokenizer_losses.chroma_l1_loss(recon.clamp(-1, 1), clip).item())
    model.train()
    # chroma error: PSNR alone hides a tokenizer that reconstructs grey (README "Initialisation and colour")
    return float(np.mean(psnrs)), float(np.mean(ssims)), float(np.mean(chroma_errors))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config (see DEFAULT_CONFIG in this file)")
    parser.add_argument("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint folder")
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--max_train_steps", type=positive_int, default=None)
    parser.add_argument("--max_train_minutes", type=float, default=None,
                        help="wall-clock budget: after 30 steps the run measures its speed and lowers max_train_steps "
                             "(and the LR schedule's length with it) to what fits; for lent machines with a time limit")
    parser.add_argument("--export_only", action="store_true",
                        help="write `model/` from the checkpoint given by --resume_from_checkpoint, without training")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set training.learning_rate=0.0005")
    return parser.parse_args(argv)


def resolve_config(args) -> dict:
    """The YAML config with `--set` overrides, then the command-line options that override it."""
    config = load_config(args.config, args.overrides)
    if args.output_dir:
        config["output_dir"] = args.output_dir
    if args.max_train_steps is not None:
        config["training"]["max_train_steps"] = args.max_train_steps
    return config


def clip_frames(model, data: dict) -> tuple[int, bool]:
    """(frames per training clip, whether the tokenizer is a video one), with the clip size checked against the
    tokenizer's compression."""
    temporal, spatial, is_video = compression(model)
    num_frames = int(data["num_frames"]) if is_video else 1
    if is_video and (num_frames - 1) % temporal:
        raise ValueError(f"data.num_frames must be 1 + k*{temporal} for this tokenizer, got {num_frames}")
    for name, size in (("height", data["height"]), ("width", data["width"])):
        if int(size) % spatial:
            raise ValueError(f"data.{name} must be a multiple of the spatial compression {spatial}, got {size}")
    return num_frames, is_video


def build_loss_networks(loss: dict, accelerator):
    """(VGG16 features or None, flow network or None); without local weights the terms that need them are off."""
    vgg = flow_fn = None
    if loss["perceptual"] > 0 or loss["gram"] > 0:
        if loss.get("vgg_weights"):
            vgg = tokenizer_losses.VGGFeatures(loss["vgg_weights"]).to(accelerator.device)
        else:
            accelerator.print("warning: loss.vgg_weights not given (VGG16 weights cannot be downloaded here): "
                              "perceptual and Gram losses are disabled; training uses the remaining terms.")
    if loss["flow"] > 0 and loss.get("raft_weights"):
        flow_fn = tokenizer_losses.RAFTFlow(loss["raft_weights"]).to(accelerator.device)
    return vgg, flow_fn


def build_optimizer(model, training: dict):
    """AdamW over two parameter groups, so that the encoder can start later (training.freeze_encoder_steps): the
    decoder first learns to use what the initial latent carries (with model.colour_path_init: colour), then the
    encoder warms up."""
    encoder_params = encoder_parameters(model)
    encoder_ids = {id(p) for p in encoder_params}
    return torch.optim.AdamW(
        [{"params": [p for p in model.parameters() if id(p) not in encoder_ids]}, {"params": encoder_params}],
        lr=float(training["learning_rate"]), betas=tuple(float(b) for b in training["adam_betas"]),
        weight_decay=float(training["adam_weight_decay"]),
    )


def loss_terms(model, video, loss: dict, vgg, flow_fn, discriminator, step: int):
    """(total loss, its terms, the reconstruction, whether the adversarial term is on) for one batch."""
    recon = reconstruct(model, video)
    terms = {"l1": (recon - video).abs().mean()}
    if loss["mse"] > 0:
        terms["mse"] = ((recon - video) ** 2).mean()
    if loss["chroma"] > 0:
        terms["chroma"] = tokenizer_losses.chroma_l1_loss(recon, video)
    if vgg is not None and loss["perceptual"] > 0:
        terms["perceptual"] = tokenizer_losses.perceptual_loss(vgg, recon, video)
    if vgg is not None and loss["gram"] > 0:
        terms["gram"] = tokenizer_losses.gram_loss(vgg, recon, video)
    if loss["flow"] > 0 and recon.ndim == 5 and recon.shape[2] > 1:
        terms["flow"] = tokenizer_losses.flow_loss(recon, video, flow_fn)
    use_adversarial = discriminator is not None and step >= int(loss["adversarial_start_step"])
    if use_adversarial:
        discriminator.requires_grad_(False)
        terms["adversarial"] = tokenizer_losses.hinge_generator_loss(discriminator(recon))
        discriminator.requires_grad_(True)
    weights = {name: float(loss[name]) for name in terms}
    if "chroma" in terms and int(loss.get("chroma_warmup_steps") or 0) > 0:
        weights["chroma"] *= min(1.0, step / int(loss["chroma_warmup_steps"]))
    total = sum(weights[name] * value for name, value in terms.items())
    if not torch.isfinite(total):
        raise RuntimeError(f"loss is {total.item()} at step {step} ({ {k: v.item() for k, v in terms.items()} }); "
                           "stopping without saving. Lower training.learning_rate or check the data.")
    return total, terms, recon, use_adversarial


def train_step(model, video, config, losses, accelerator, optimizers, scheduler, step: int):
    """One generator (and discriminator) update inside `accelerator.accumulate`; returns (loss, terms)."""
    vgg, flow_fn, discriminator = losses
    optimizer, disc_optimizer = optimizers
    loss, terms, recon, use_adversarial = loss_terms(model, video, config["loss"], vgg, flow_fn, discriminator, step)
    accelerator.backward(loss)
    if accelerator.sync_gradients:
        accelerator.clip_grad_norm_(model.parameters(), float(config["training"]["max_grad_norm"]))
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    if use_adversarial:
        disc_loss = tokenizer_losses.hinge_discriminator_loss(discriminator(video), discriminator(recon.detach()))
        accelerator.backward(disc_loss)
        disc_optimizer.step()
        disc_optimizer.zero_grad()
        terms["discriminator"] = disc_loss
    return loss, terms


def main(argv=None):
    args = parse_args(argv)
    config = resolve_config(args)
    train_cfg, loss_cfg, data_cfg = config["training"], config["loss"], config["data"]
    output_dir = Path(config["output_dir"])
    if not args.export_only:  # before config.yaml is written: a used output_dir keeps its run's files
        check_no_later_checkpoints(output_dir, args.resume_from_checkpoint)
    # the same seed on every process: the model starts identical everywhere; each process reads other clips
    accelerator = setup_accelerator(config, "train_tokenizer", log_file="metrics.jsonl", device_specific_seed=False)
    model = build_model(config["model"])
    if train_cfg.get("freeze_encoder"):
        frozen = freeze_encoder(model, config["model"])
        accelerator.print(f"training.freeze_encoder: {frozen:,} encoder parameters frozen, the decoder trains")
    num_frames, is_video = clip_frames(model, data_cfg)
    vgg, flow_fn = build_loss_networks(loss_cfg, accelerator)

    optimizer = build_optimizer(model, train_cfg)
    max_steps = int(train_cfg["max_train_steps"])
    scheduler = build_lr_scheduler(optimizer, train_cfg, accelerator.num_processes, max_train_steps=lambda: max_steps,
                                   held_groups={1: int(train_cfg.get("freeze_encoder_steps") or 0)})
    discriminator = disc_optimizer = None
    if loss_cfg["adversarial"] > 0:
        discriminator = tokenizer_losses.PatchDiscriminator3D()
        disc_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=float(loss_cfg["discriminator_lr"]),
                                           betas=(0.5, 0.9))
        model, optimizer, scheduler, discriminator, disc_optimizer = accelerator.prepare(
            model, optimizer, scheduler, discriminator, disc_optimizer)
        training_state = dict(models=[model, discriminator], optimizers=[optimizer, disc_optimizer],
                              schedulers=[scheduler])
    else:
        model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
        training_state = dict(models=[model], optimizers=[optimizer], schedulers=[scheduler])
    global_step = resume_training_state(accelerator, args.resume_from_checkpoint, output_dir,
                                        **training_state)["global_step"]
    if args.export_only:
        if not args.resume_from_checkpoint or global_step == 0:
            raise ValueError("--export_only needs --resume_from_checkpoint pointing at an existing checkpoint")
        max_steps = global_step  # skip the loop: save what the checkpoint holds
    else:
        truncate_log(output_dir / "metrics.jsonl", global_step, accelerator)  # later steps are trained again

    source = ClipSource(data_cfg, num_frames)
    validation = source.validation_batch(int(data_cfg["validation_seed"]), int(data_cfg["validation_clips"]))
    image_every = int(data_cfg.get("image_every") or 0) if is_video else 0
    color_augmentation = float(data_cfg.get("color_augmentation") or 0.0)
    batch_size = int(train_cfg["batch_size"])
    progress = tqdm(range(global_step, max_steps), initial=global_step, total=max_steps,
                    disable=not accelerator.is_local_main_process, desc="tokenizer")
    model.train()
    start_time = time.time()
    budget = WallClockBudget(args.max_train_minutes, global_step, start_time)
    while global_step < max_steps:
        budget.before_step(global_step)
        image_step = image_every > 0 and global_step % image_every == image_every - 1
        keys = [clip_key(int(config["seed"]), global_step, accelerator.process_index * batch_size + i)
                for i in range(batch_size)]
        video = source.batch(keys, num_frames=1 if image_step else None).to(accelerator.device)
        video = augment_colors(video, color_augmentation, torch.Generator().manual_seed(keys[0]))
        if not is_video:
            video = video[:, :, 0]
        with accelerator.accumulate(model):
            loss, terms = train_step(model, video, config, (vgg, flow_fn, discriminator), accelerator,
                                     (optimizer, disc_optimizer), scheduler, global_step)
        if not accelerator.sync_gradients:
            continue
        global_step += 1
        progress.update(1)
        max_steps = progress.total = budget.steps_that_fit(global_step, max_steps, accelerator)
        logs = {"loss": loss.item(), "lr": scheduler.get_last_lr()[0],
                **{k: round(v.item(), 6) for k, v in terms.items()}, "image_batch": image_step,
                "seconds": round(time.time() - start_time, 1)}
        progress.set_postfix(loss=f"{loss.item():.4f}")
        validate = every(global_step, train_cfg["validation_steps"]) or global_step == max_steps
        if validate:
            logs["val_psnr"], logs["val_ssim"], logs["val_chroma_error"] = evaluate(
                accelerator.unwrap_model(model), validation if is_video else validation[:, :, 0])
            accelerator.print(f"step {global_step}: held-out PSNR {logs['val_psnr']:.2f} dB, "
                              f"SSIM {logs['val_ssim']:.4f}, chroma error {logs['val_chroma_error']:.4f}")
        if validate or every(global_step, train_cfg["log_every"]):
            accelerator.log(logs, step=global_step)
        if every(global_step, train_cfg["checkpointing_steps"]) or global_step == max_steps:
            save_checkpoint(accelerator, output_dir, global_step, train_cfg["checkpoints_total_limit"] or None,
                            **training_state)

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        with atomic_path(output_dir / "model", is_dir=True) as tmp:
            unwrapped.save_pretrained(tmp, safe_serialization=True)
            (tmp / "README.md").write_text(model_card(config, type(unwrapped).__name__, output_dir, global_step))
        accelerator.print(f"saved {output_dir / 'model'}")
    accelerator.end_training()


def model_card(config: dict, class_name: str, output_dir: Path, step: int) -> str:
    """A Hub model card (metadata + facts read from this run's own log)."""
    from cosmos_hf.training_utils import read_log

    entries = read_log(output_dir / "metrics.jsonl", up_to_step=step)
    validated = [entry for entry in entries if "val_psnr" in entry]
    last = validated[-1] if validated else {}
    model, data, training = config["model"], config["data"], config["training"]
    architecture = model.get("pretrained") or model.get("reference_config") or model.get("config_name")
    body = f"""# cosmos-hf tokenizer ({class_name})

A Cosmos-Tokenize1-style tokenizer trained with `training/train_tokenizer.py` of cosmos-hf.

```python
from cosmos_hf import load_tokenizer

tokenizer = load_tokenizer("<this folder>")
```

| | |
|---|---|
| architecture | `{architecture}` (overrides `{model.get("overrides") or {}}`) |
| data | `{data.get("source")}` {data.get("path") or ""}, {data.get("num_frames")} frames at {data.get("height")}x{data.get("width")} |
| steps | {step} (batch {training.get("batch_size")}, lr {training.get("learning_rate")}, {training.get("lr_scheduler")}) |
| held-out PSNR / SSIM | {last.get("val_psnr", "?")} dB / {last.get("val_ssim", "?")} (step {last.get("step", "?")}) |
"""
    if training.get("freeze_encoder"):
        body += (f"| encoder | frozen (`training.freeze_encoder`): identical to `{model.get('pretrained')}`'s, so "
                 "its latent space is unchanged and only the decoder was trained |\n")
    return hub_model_card(body, library_name="diffusers", pipeline_tag=None, tags=["cosmos", "cosmos-hf", "tokenizer"])


if __name__ == "__main__":
    main()
