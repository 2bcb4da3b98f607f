#!/usr/bin/env python
"""Train the Cosmos-Predict1 autoregressive world model (next-token + z-loss on discrete video tokens).

    accelerate launch training/train_autoregressive.py --config training/configs/autoregressive_tiny_test.yaml
    accelerate launch --config_file training/accelerate/ddp.yaml training/train_autoregressive.py --config ...
    accelerate launch --config_file training/accelerate/fsdp.yaml \
        --fsdp_transformer_layer_cls_to_wrap CosmosARDecoderLayer training/train_autoregressive.py --config ...
    accelerate launch training/train_autoregressive.py --config ... --resume_from_checkpoint latest
    accelerate launch training/train_autoregressive.py --config ... --medusa --pretrained_model <model folder>

Data: clips of the built-in physics world (`cosmos_hf.sim`) are simulated once, tokenized with a DV tokenizer
(config `tokenizer: <folder>`, e.g. the nano DV4x8x8 trained by train_tokenizer.py) and cached in
`output_dir/token_cache.safetensors` (`cosmos_hf.data.physics_token_cache`); each sample is one clip's token grid
flattened t-major (`<bov>` first for Video2World models, which also get the clip caption through their text encoder
for cross-attention).

Loss: `CosmosARForCausalLM`'s cross-entropy + `z_loss_coeff * mean(logsumexp(logits)^2)`. With
`training.changed_token_loss_weight: w` (not in the reference; default 1 = its loss) the cross-entropy of each token
that differs from the token at the same (h, w) one latent frame earlier (where something moved) is weighted w, the
rest 1, normalised by the weights' sum (`changed_token_weighted_cross_entropy`); `ce_loss` in the log stays the
unweighted cross-entropy.

`training.scheduled_sampling_rate: p` (not in the reference; default 0 = plain teacher forcing): parallel scheduled
sampling (Duckworth et al. 2019) against the exposure bias of greedy decoding. Each step first runs the model
teacher-forced without gradients and takes its argmax next-token predictions; then each input token from the second
latent frame on is replaced by that prediction with probability p (`mix_in_model_predictions`), and the loss is
taken against the true tokens. The model learns to continue from its own mistakes, e.g. a moving object whose top
rows it drew as background. It costs one extra forward pass (no gradients) a step; the logged `ce_loss` is then on
the mixed inputs.

`model.grow_num_hidden_layers: N` with a pre-trained model: deepen it to N layers before training (`grow_layers`,
block expansion as in LLaMA Pro; the grown model starts out computing what the old one did).

`--medusa` (or `medusa.enabled: true`): add `medusa.num_heads` Medusa heads to a pre-trained model, initialise them
from the LM head, and train them with everything frozen except the heads, the last `medusa.unfreeze_last_layers`
(2) decoder layers and the unembedding (`lm_head`) — the Medusa paper's recipe against forgetting; the base
next-token loss stays in the objective.

Outputs in `output_dir`: `checkpoint-<step>/` (safetensors + JSON, no pickle, written atomically; a resumed run
continues the data order and RNG states exactly), `config.yaml`, `train_log.jsonl` (one line per logged step;
`training.log_with` adds accelerate trackers such as tensorboard under `logs/`), and at the end `model/`
(`save_pretrained`, loadable with `AutoModelForCausalLM.from_pretrained` after `import cosmos_hf`) with a model card.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import time
import warnings
from pathlib import Path

import torch
from cosmos_hf.data import physics_token_cache
from cosmos_hf.training_utils import (
    WallClockBudget,
    build_lr_scheduler,
    check_no_later_checkpoints,
    epoch_data_loader,
    every,
    optimizer_step,
    read_log,
    resume_training_state,
    save_checkpoint,
    setup_accelerator,
    truncate_log,
)
from cosmos_hf.training_utils import load_config as load_training_config
from cosmos_hf.training_utils import model_card as hub_model_card
from cosmos_hf.utils import positive_int
from torch.utils.data import Dataset

logger = logging.getLogger("train_autoregressive")

DEFAULT_CONFIG = {
    "output_dir": "outputs/autoregressive",
    "seed": 0,
    "tokenizer": None,  # CosmosDiscreteVideoTokenizer folder, or "tiny" (random DV4x8x8, tests)
    "model": {
        "pretrained_model": None,  # CosmosARForCausalLM folder to continue from (required for --medusa)
        "config": {},  # CosmosARConfig kwargs for a model trained from scratch; latent_shape is set from the data
        "text_encoder": None,  # Video2World (cross-attention) models: "minilm", "tiny-t5" or a folder
        "max_sequence_length": 32,
        "grow_num_hidden_layers": None,  # deepen a pre-trained model to this many layers (`grow_layers`)
    },
    "data": {
        "type": "physics",
        "num_clips": 64,  # clips simulated and tokenized once (seed = seed_offset + index)
        "num_frames": 17,
        "height": 64,
        "width": 64,
        "fps": 24,
        "scenes": None,  # subset of cosmos_hf.sim SCENES
        "views": [0],  # camera views (0..3) cycled over clips; the nano v0.1 model saw only view 0
        "seed_offset": 0,
        "num_workers": 0,
    },
    "training": {
        "max_train_steps": 100,
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "learning_rate": 3e-4,
        "lr_scheduler": "constant_with_warmup",  # diffusers' get_scheduler name (training_utils.LR_SCHEDULERS)
        "lr_warmup_steps": 0,
        "adam_betas": [0.9, 0.95],
        "adam_weight_decay": 0.1,
        "max_grad_norm": 1.0,
        "changed_token_loss_weight": 1.0,  # > 1: weight the tokens that change from the previous latent frame
        "scheduled_sampling_rate": 0.0,  # > 0: feed the model's own argmax tokens back at this rate
        "mixed_precision": None,  # set through accelerate (config file / --mixed_precision)
        "gradient_checkpointing": False,
        "checkpointing_steps": 50,
        "checkpoints_total_limit": 3,
        "log_every": 10,
        "log_with": [],  # accelerate trackers besides train_log.jsonl, e.g. [tensorboard]
    },
    "medusa": {
        "enabled": False,
        "num_heads": 4,
        "num_layers": 1,
        "unfreeze_last_layers": 2,
        "init_from_lm_head": True,
    },
}


# ---------------------------------------------------------------------------------------------------------- config
def load_config(path, overrides=()) -> dict:
    config = load_training_config(path, DEFAULT_CONFIG, overrides)
    if not config["tokenizer"]:
        raise ValueError("config `tokenizer` is required: a DV tokenizer folder (or 'tiny' for tests)")
    if config["data"]["type"] != "physics":
        raise ValueError(f"data.type must be physics, got {config['data']['type']!r}")
    check_model_config_keys(config["model"]["config"])
    return config


def check_model_config_keys(kwargs):
    """`model.config` holds CosmosARConfig arguments only: transformers' configs keep any unknown keyword as an
    attribute, so a misspelt key (`num_hidden_layer: 8`) trained the default 16-layer model without a word."""
    import inspect

    from cosmos_hf.autoregressive import CosmosARConfig

    if not isinstance(kwargs, dict):
        raise ValueError(f"model.config must be a mapping of CosmosARConfig arguments, got {kwargs!r}")
    valid = [name for name in inspect.signature(CosmosARConfig.__init__).parameters if name not in ("self", "kwargs")]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} in model.config; valid keys (CosmosARConfig): "
                         f"{', '.join(valid)}")


def check_model_config_matches_pretrained(model_cfg: dict, explicit_keys=()):
    """A pre-trained model keeps its own config (architecture and z_loss_coeff); `model.config` used to be ignored
    silently, so e.g. `--set model.config.z_loss_coeff=0` trained with the model's 1e-4. A key given with `--set`
    that contradicts the model's config is an error naming both values. A key that differs only in the YAML (a run
    continuing a grown 10-layer model with the 6-layer YAML it started from) is a warning, and the config this run
    records gets the model's value, so its config.yaml says what was trained. `latent_shape` comes from the data."""
    from cosmos_hf.autoregressive import CosmosARConfig

    folder = Path(model_cfg["pretrained_model"])
    if not (folder / "config.json").is_file():
        return  # from_pretrained names what is missing
    pretrained = CosmosARConfig.from_pretrained(folder)
    differing = {key: value for key, value in (model_cfg.get("config") or {}).items()
                 if key != "latent_shape" and getattr(pretrained, key) != value}
    conflicts = [f"model.config.{key}={value!r} but the model has {getattr(pretrained, key)!r}"
                 for key, value in differing.items() if key in explicit_keys]
    if conflicts:
        raise ValueError(f"--set contradicts the pre-trained model {folder}: {'; '.join(conflicts)}. A pre-trained "
                         "model keeps its architecture and z_loss_coeff: remove these --set options "
                         "(model.grow_num_hidden_layers deepens it)")
    if differing:
        warnings.warn(f"the pre-trained model {folder} keeps its own config: "
                      + ", ".join(f"{key}={getattr(pretrained, key)!r} (the YAML's model.config says {value!r})"
                                  for key, value in differing.items()), stacklevel=2)
        for key in differing:
            model_cfg["config"][key] = getattr(pretrained, key)


# ---------------------------------------------------------------------------------------------------------- data
def load_dv_tokenizer(name_or_folder):
    from cosmos_hf.tokenizers import CosmosDiscreteVideoTokenizer

    if name_or_folder == "tiny":
        from cosmos_hf.tokenizers.configs import from_config_name

        torch.manual_seed(0)
        return from_config_name("DV4x8x8", channels=8, channels_mult=[1, 2, 2], num_res_blocks=1, z_channels=16).eval()
    folder = Path(name_or_folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"tokenizer {folder} is not a tokenizer folder (no config.json)")
    model = CosmosDiscreteVideoTokenizer.from_pretrained(folder)
    return model.eval()


def load_training_tokens(config: dict, accelerator):
    """The DV tokens of the training clips (`cosmos_hf.data.physics_token_cache`, cached in
    `output_dir/token_cache.safetensors`: tokenized once on the main process, read from the cache by the others).
    Returns (tokens int64 [N, T', H', W'], captions, latent_shape, codebook_size)."""
    data = config["data"]
    dv_tokenizer = load_dv_tokenizer(config["tokenizer"])
    latent_shape = tuple(dv_tokenizer.latent_shape(data["num_frames"], data["height"], data["width"]))
    cache_path = Path(config["output_dir"]) / "token_cache.safetensors"
    with accelerator.main_process_first():
        tokens, captions = physics_token_cache(data, dv_tokenizer, cache_path, write=accelerator.is_main_process)
    if tuple(tokens.shape[1:]) != latent_shape:
        raise RuntimeError(f"tokenized clips have grid {tuple(tokens.shape[1:])}, expected {latent_shape}")
    return tokens, captions, latent_shape, dv_tokenizer.codebook_size


class TokenClipDataset(Dataset):
    """One sample = one clip's token grid flattened t-major (with `<bov>` first when the model has one)."""

    def __init__(self, tokens: torch.Tensor, captions: list[str], bov_token_id: int | None):
        self.tokens, self.captions, self.bov = tokens, captions, bov_token_id

    def __len__(self):
        return len(self.tokens)

    def __getitem__(self, index):
        ids = self.tokens[index].reshape(-1)
        if self.bov is not None:
            ids = torch.cat([torch.tensor([self.bov]), ids])
        return {"input_ids": ids, "caption": self.captions[index]}


def collate(items):
    return {"input_ids": torch.stack([i["input_ids"] for i in items]), "caption": [i["caption"] for i in items]}


# ---------------------------------------------------------------------------------------------------------- model
def build_model(config: dict, latent_shape, vocab_size: int, medusa: dict):
    """A new or pre-trained `CosmosARForCausalLM` whose latent grid matches the tokenized clips."""
    from cosmos_hf.autoregressive import CosmosARConfig
    from cosmos_hf.autoregressive.modeling_cosmos_ar import CosmosARForCausalLM

    model_cfg = config["model"]
    if model_cfg.get("pretrained_model"):
        model = CosmosARForCausalLM.from_pretrained(model_cfg["pretrained_model"])
    else:
        if medusa["enabled"]:
            raise ValueError("--medusa trains heads on a pre-trained model: set model.pretrained_model "
                             "(or --pretrained_model) to a CosmosARForCausalLM folder")
        kwargs = dict(model_cfg.get("config") or {})
        kwargs.setdefault("vocab_size", vocab_size)
        kwargs["latent_shape"] = list(latent_shape)
        model = CosmosARForCausalLM(CosmosARConfig(**kwargs))
    if model_cfg.get("grow_num_hidden_layers") is not None:
        if not model_cfg.get("pretrained_model"):
            raise ValueError("model.grow_num_hidden_layers deepens a pre-trained model: set model.pretrained_model "
                             "(or --pretrained_model); for a new model set model.config.num_hidden_layers")
        model = grow_layers(model, model_cfg["grow_num_hidden_layers"])
    cfg = model.config
    if list(cfg.latent_shape) != list(latent_shape):
        raise ValueError(f"the model's latent_shape {cfg.latent_shape} does not match the tokenized clips "
                         f"{list(latent_shape)}: change data.num_frames/height/width or the model")
    if cfg.vocab_size < vocab_size:
        raise ValueError(f"the model's vocab_size {cfg.vocab_size} is smaller than the tokenizer's {vocab_size} codes")
    if medusa["enabled"]:
        model = add_medusa_heads(model, int(medusa["num_heads"]), int(medusa["num_layers"]),
                                 bool(medusa["init_from_lm_head"]))
        freeze_for_medusa(model, int(medusa["unfreeze_last_layers"]))
    return model


def grow_layers(model, num_hidden_layers: int):
    """Deepen `model` to `num_hidden_layers` without changing what it computes (block expansion, as in LLaMA Pro):
    each new decoder layer is a copy of the layer before it with its output projections (attention `o_proj`,
    cross-attention `o_proj`, MLP `down_proj`) zeroed, so it adds nothing to the residual stream until trained. The
    new layers are spread evenly between the old ones. A model that already has that depth is returned as it is."""
    from cosmos_hf.autoregressive.modeling_cosmos_ar import CosmosARForCausalLM

    old = model.config.num_hidden_layers
    if not isinstance(num_hidden_layers, int) or isinstance(num_hidden_layers, bool) or num_hidden_layers < old:
        raise ValueError(f"model.grow_num_hidden_layers must be an integer >= the model's {old} layers, "
                         f"got {num_hidden_layers!r}")
    if num_hidden_layers == old:
        return model
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = num_hidden_layers
    if len({config.has_cross_attention(i) for i in range(num_hidden_layers)}
           | {model.config.has_cross_attention(i) for i in range(old)}) > 1:
        raise ValueError("model.grow_num_hidden_layers needs cross-attention in every layer or in none "
                         "(cross_attention_every_k_layers 1); this model interleaves it")
    extra = num_hidden_layers - old
    inserts_after = [(j + 1) * old // extra - 1 for j in range(extra)]  # old layer index each new layer follows
    grown = CosmosARForCausalLM(config)
    outside = {k: v for k, v in model.state_dict().items() if not k.startswith("model.layers.")}
    missing, unexpected = grown.load_state_dict(outside, strict=False)  # all but the layers, which follow
    if unexpected or any(not k.startswith("model.layers.") for k in missing):
        raise RuntimeError(f"copying the model failed: missing {missing}, unexpected {unexpected}")
    new_layers = iter(grown.model.layers)
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            next(new_layers).load_state_dict(layer.state_dict())
            for _ in range(inserts_after.count(i)):
                copy_of_layer = next(new_layers)
                copy_of_layer.load_state_dict(layer.state_dict())
                for name, parameter in copy_of_layer.named_parameters():
                    if name.endswith(("o_proj.weight", "down_proj.weight")):
                        parameter.zero_()
    return grown


def add_medusa_heads(model, num_heads: int, num_layers: int, init_from_lm_head: bool):
    """Rebuild `model` with `num_heads` Medusa heads (the base weights copied over, heads initialised fresh)."""
    from cosmos_hf.autoregressive.medusa import init_medusa_heads_from_lm_head
    from cosmos_hf.autoregressive.modeling_cosmos_ar import CosmosARForCausalLM

    if num_heads < 1:
        raise ValueError(f"medusa.num_heads must be >= 1, got {num_heads}")
    if model.config.medusa_num_heads == num_heads and model.config.medusa_num_layers == num_layers:
        return model  # continue training existing heads
    config = copy.deepcopy(model.config)
    config.medusa_num_heads, config.medusa_num_layers = num_heads, num_layers
    new = CosmosARForCausalLM(config)
    base = {k: v for k, v in model.state_dict().items() if not k.startswith("medusa_heads.")}
    missing, unexpected = new.load_state_dict(base, strict=False)
    if unexpected or any(not k.startswith("medusa_heads.") for k in missing):
        raise RuntimeError(f"copying the base model failed: missing {missing}, unexpected {unexpected}")
    if init_from_lm_head:
        init_medusa_heads_from_lm_head(new)
    return new


def freeze_for_medusa(model, unfreeze_last_layers: int = 2) -> list[str]:
    """Freeze everything but the Medusa heads, the last `unfreeze_last_layers` decoder layers and the unembedding.
    Returns the names of the trainable parameter groups."""
    num_layers = model.config.num_hidden_layers
    if not 0 <= unfreeze_last_layers <= num_layers:
        raise ValueError(f"medusa.unfreeze_last_layers must be in [0, {num_layers}], got {unfreeze_last_layers}")
    model.requires_grad_(False)
    trainable = ["medusa_heads", "lm_head"]
    model.medusa_heads.requires_grad_(True)
    model.lm_head.requires_grad_(True)
    for index in range(num_layers - unfreeze_last_layers, num_layers):
        model.model.layers[index].requires_grad_(True)
        trainable.append(f"model.layers.{index}")
    return trainable


def load_text_encoder_for(model, config: dict, device):
    """(tokenizer, text encoder) for a Video2World model (cross-attention to the clip caption), else (None, None)."""
    if not model.config.insert_cross_attention:
        return None, None
    from cosmos_hf.diffusion.text_encoding import load_text_encoder

    name = config["model"].get("text_encoder")
    if not name:
        raise ValueError("this model has cross-attention (Video2World): set model.text_encoder")
    if name == "tiny-t5":
        from cosmos_hf.diffusion.nano import tiny_t5_text_encoder

        tokenizer, text_encoder = tiny_t5_text_encoder(d_model=model.config.cross_attention_dim)
    else:
        tokenizer, text_encoder = load_text_encoder(name)
    return tokenizer, text_encoder.to(device).requires_grad_(False).eval()


# ---------------------------------------------------------------------------------------------------------- training
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Next-token training of the Cosmos autoregressive world model")
    parser.add_argument("--config", required=True, help="YAML config (see training/configs/autoregressive_*.yaml)")
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--max_train_steps", type=positive_int, default=None)
    parser.add_argument("--pretrained_model", default=None, help="continue from this CosmosARForCausalLM folder")
    parser.add_argument("--medusa", action="store_true",
                        help="train Medusa heads (+ last 2 layers + unembedding) on a pre-trained model")
    parser.add_argument("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint-<step> folder")
    parser.add_argument("--max_train_minutes", type=float, default=None,
                        help="stop by this wall-clock budget (for a lent machine): after 30 steps, max_train_steps "
                             "and the cosine schedule are shortened to what fits (training_utils.WallClockBudget)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set training.learning_rate=1e-3")
    return parser.parse_args(argv)


def resolve_config(args) -> dict:
    """The YAML config with `--set` overrides, then the command-line options that override it."""
    config = load_config(args.config, args.overrides)
    if args.output_dir:
        config["output_dir"] = args.output_dir
    if args.max_train_steps is not None:
        config["training"]["max_train_steps"] = args.max_train_steps
    if args.pretrained_model:
        config["model"]["pretrained_model"] = args.pretrained_model
    if args.medusa:
        config["medusa"]["enabled"] = True
    if config["model"]["pretrained_model"]:
        explicit = {o.split("=", 1)[0].removeprefix("model.config.") for o in args.overrides
                    if o.startswith("model.config.")}
        check_model_config_matches_pretrained(config["model"], explicit)
    weight = config["training"]["changed_token_loss_weight"]
    if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
        raise ValueError(f"training.changed_token_loss_weight must be a finite number > 0 (1 = the reference's loss), "
                         f"got {weight!r}")
    if weight != 1 and config["medusa"]["enabled"]:
        raise ValueError("training.changed_token_loss_weight applies to the base next-token loss only; leave it at 1 "
                         "with --medusa")
    rate = config["training"]["scheduled_sampling_rate"]
    if not (isinstance(rate, (int, float)) and 0 <= rate < 1):
        raise ValueError(f"training.scheduled_sampling_rate must be a number in [0, 1) (0 = teacher forcing), "
                         f"got {rate!r}")
    if rate and config["medusa"]["enabled"]:
        raise ValueError("training.scheduled_sampling_rate applies to the base model's training; leave it at 0 "
                         "with --medusa")
    return config


def changed_token_weighted_cross_entropy(logits: torch.Tensor, input_ids: torch.Tensor, tokens_per_frame: int,
                                         video_start: int, weight: float) -> torch.Tensor:
    """Next-token cross-entropy where each target token that differs from the token `tokens_per_frame` positions
    earlier (the same (h, w) one latent frame before; only from `video_start + tokens_per_frame` on) counts `weight`
    times, every other token once; normalised by the weights' sum, so weight 1 is the plain mean."""
    logits, targets = logits[:, :-1].float(), input_ids[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # [B, L - 1]
    positions = torch.arange(1, input_ids.shape[1], device=input_ids.device)  # each target's sequence index
    earlier = positions - tokens_per_frame
    changed = (targets != input_ids[:, earlier.clamp(min=0)]) & (earlier >= video_start)
    weights = torch.where(changed, float(weight), 1.0)
    return (ce * weights).sum() / weights.sum()


def mix_in_model_predictions(input_ids: torch.Tensor, logits: torch.Tensor, rate: float, start: int) -> torch.Tensor:
    """`input_ids` with each token from sequence index `start` on replaced, with probability `rate` (torch's global
    RNG, which checkpoints save), by the model's argmax prediction of it from teacher-forced `logits` (the logits
    at index i - 1 predict the token at index i)."""
    predicted = torch.cat([input_ids[:, :1], logits[:, :-1].argmax(dim=-1)], dim=1)
    replace = torch.rand(input_ids.shape, device=input_ids.device) < rate
    replace[:, :start] = False
    return torch.where(replace, predicted, input_ids)


def train_step(model, batch, text_encoding, config, accelerator, optimizer, lr_scheduler, trainable, step: int):
    """One forward/backward/optimizer step (inside `accelerator.accumulate`); returns the model output."""
    input_ids = batch["input_ids"].to(accelerator.device)
    text = {}
    if text_encoding[1] is not None:
        from cosmos_hf.diffusion.text_encoding import encode_prompts

        with torch.no_grad():
            text["encoder_hidden_states"] = encode_prompts(*text_encoding, batch["caption"],
                                                           config["model"]["max_sequence_length"],
                                                           device=accelerator.device, dtype=torch.float32)
    model_config = accelerator.unwrap_model(model).config
    tokens_per_frame = model_config.latent_shape[1] * model_config.latent_shape[2]
    video_start = int(model_config.bov_token_id is not None)
    inputs = input_ids
    rate = config["training"]["scheduled_sampling_rate"]
    if rate:
        with torch.no_grad():
            teacher_forced = model(input_ids=input_ids, use_cache=False, **text).logits
        inputs = mix_in_model_predictions(input_ids, teacher_forced, rate, video_start + tokens_per_frame)
        del teacher_forced
    out = model(input_ids=inputs, labels=input_ids, use_cache=False, **text)
    weight = config["training"]["changed_token_loss_weight"]
    if weight != 1:
        out.loss = changed_token_weighted_cross_entropy(out.logits, input_ids, tokens_per_frame, video_start,
                                                        weight) + out.z_loss
    if not torch.isfinite(out.loss):
        raise RuntimeError(f"loss is {out.loss.item()} at step {step} (ce {out.ce_loss.item()}, z "
                           f"{out.z_loss.item()}); stopping without saving. Lower training.learning_rate or check "
                           "the data.")
    optimizer_step(accelerator, out.loss, trainable, config["training"]["max_grad_norm"], optimizer, lr_scheduler)
    return out


def main(argv=None):
    from tqdm.auto import tqdm

    from cosmos_hf.utils import atomic_path

    args = parse_args(argv)
    config = resolve_config(args)
    train_cfg, data_cfg, medusa_cfg = config["training"], config["data"], config["medusa"]
    output_dir = Path(config["output_dir"])
    check_no_later_checkpoints(output_dir, args.resume_from_checkpoint)  # before config.yaml is written
    accelerator = setup_accelerator(config, "train_autoregressive")

    tokens, captions, latent_shape, codebook_size = load_training_tokens(config, accelerator)
    model = build_model(config, latent_shape, codebook_size, medusa_cfg)
    text_encoding = load_text_encoder_for(model, config, accelerator.device)
    if train_cfg["gradient_checkpointing"]:
        model.gradient_checkpointing_enable()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    accelerator.print(f"processes: {accelerator.num_processes} ({accelerator.distributed_type}); "
                      f"{len(tokens)} clips of {tuple(latent_shape)} tokens; trainable parameters "
                      f"{sum(p.numel() for p in trainable):,} of {sum(p.numel() for p in model.parameters()):,}"
                      + (" (Medusa)" if medusa_cfg["enabled"] else ""))

    dataset = TokenClipDataset(tokens, captions, model.config.bov_token_id)
    optimizer = torch.optim.AdamW(trainable, lr=train_cfg["learning_rate"], betas=tuple(train_cfg["adam_betas"]),
                                  weight_decay=train_cfg["adam_weight_decay"])
    max_steps = train_cfg["max_train_steps"]
    lr_scheduler = build_lr_scheduler(optimizer, train_cfg, accelerator.num_processes,
                                      max_train_steps=lambda: max_steps)  # read at every step: the budget may cut it
    # the data loader is not prepared by accelerate: each epoch's order (and each process's share) comes from the
    # seed and the epoch, so a resumed run continues it exactly (training_utils.epoch_data_loader)
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    training_state = dict(models=[model], optimizers=[optimizer], schedulers=[lr_scheduler])
    resumed = resume_training_state(accelerator, args.resume_from_checkpoint, output_dir, **training_state)
    global_step = resumed["global_step"]
    epoch, batches_in_epoch = resumed.get("epoch", 0), resumed.get("batches_in_epoch", 0)  # the data position
    truncate_log(output_dir / "train_log.jsonl", global_step, accelerator)  # later steps are trained again

    progress = tqdm(range(max_steps), initial=global_step, desc="steps", disable=not accelerator.is_local_main_process)
    start = time.time()
    budget = WallClockBudget(args.max_train_minutes, global_step, start)
    while global_step < max_steps:
        loader = epoch_data_loader(dataset, train_cfg["batch_size"], config["seed"], epoch, batches_in_epoch,
                                   accelerator, collate_fn=collate, num_workers=data_cfg["num_workers"])
        for batch in loader:
            batches_in_epoch += 1
            budget.before_step(global_step)
            with accelerator.accumulate(model):
                out = train_step(model, batch, text_encoding, config, accelerator, optimizer, lr_scheduler,
                                 trainable, global_step)
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            max_steps = progress.total = budget.steps_that_fit(global_step, max_steps, accelerator)
            terms = {"loss": out.loss, "ce_loss": out.ce_loss, "z_loss": out.z_loss}
            if out.medusa_loss is not None:
                terms["medusa_loss"] = out.medusa_loss
            logs = {k: accelerator.gather(v.detach().float()[None]).mean().item() for k, v in terms.items()}
            progress.update(1)
            progress.set_postfix(loss=f"{logs['loss']:.4f}", ce=f"{logs['ce_loss']:.4f}")
            if every(global_step, train_cfg["log_every"]) or global_step in (1, max_steps):
                accelerator.log({**logs, "lr": lr_scheduler.get_last_lr()[0], "seconds": round(time.time() - start, 1),
                                 "perplexity": math.exp(min(logs["ce_loss"], 50.0))}, step=global_step)
            if every(global_step, train_cfg["checkpointing_steps"]):
                save_checkpoint(accelerator, output_dir, global_step, train_cfg["checkpoints_total_limit"],
                                **training_state, train_state={"epoch": epoch, "batches_in_epoch": batches_in_epoch})
            if global_step >= max_steps:
                break
        else:  # the epoch is done
            epoch, batches_in_epoch = epoch + 1, 0

    accelerator.wait_for_everyone()
    if train_cfg["checkpointing_steps"] and not (output_dir / f"checkpoint-{global_step}").exists():
        save_checkpoint(accelerator, output_dir, global_step, train_cfg["checkpoints_total_limit"], **training_state,
                        train_state={"epoch": epoch, "batches_in_epoch": batches_in_epoch})
    state = accelerator.get_state_dict(model)  # collective under FSDP
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        with atomic_path(output_dir / "model", is_dir=True) as tmp:
            unwrapped.save_pretrained(tmp, state_dict=state, safe_serialization=True)
            (tmp / "README.md").write_text(model_card(config, unwrapped.config, output_dir))
        accelerator.print(f"saved {output_dir / 'model'}")
    accelerator.end_training()
    return 0


def model_card(config: dict, model_config, output_dir: Path) -> str:
    """A Hub model card (metadata + facts read from this run's own log)."""
    entries = read_log(output_dir / "train_log.jsonl")
    last = entries[-1] if entries else {}
    data, training, medusa = config["data"], config["training"], config["medusa"]
    body = f"""# cosmos-hf autoregressive world model (CosmosARForCausalLM)

A Cosmos-Predict1-style autoregressive world model (Llama-style decoder over discrete video tokens, 3D RoPE,
z-loss) trained with `training/train_autoregressive.py` of cosmos-hf{" with Medusa heads" if medusa["enabled"] else ""}.

```python
import cosmos_hf  # registers cosmos_ar with transformers
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("<this folder>")
```

| | |
|---|---|
| size | {model_config.num_hidden_layers} layers, width {model_config.hidden_size}, {model_config.num_attention_heads} heads ({model_config.num_key_value_heads} KV) |
| token grid | latent_shape {model_config.latent_shape} ({model_config.num_video_tokens} tokens), vocab {model_config.vocab_size} |
| Medusa heads | {model_config.medusa_num_heads} |
| DV tokenizer | `{config["tokenizer"]}` |
| data | physics world, {data["num_clips"]} clips of {data["num_frames"]} frames at {data["height"]}x{data["width"]}, seeds from {data["seed_offset"]} |
| steps | {last.get("step", "?")} (batch {training["batch_size"]}, lr {training["learning_rate"]}, {training["lr_scheduler"]}) |
| objective | changed_token_loss_weight {training["changed_token_loss_weight"]}, scheduled_sampling_rate {training["scheduled_sampling_rate"]} (1 and 0 = the reference's) |
| last logged loss | {last.get("loss", "?")} (cross-entropy {last.get("ce_loss", "?")}) |
"""
    tags = ["cosmos", "cosmos-hf", "world-model", "autoregressive"] + (["medusa"] if medusa["enabled"] else [])
    return hub_model_card(body, library_name="transformers", pipeline_tag="image-to-video", tags=tags)


if __name__ == "__main__":
    raise SystemExit(main())
