#!/usr/bin/env python
"""Train the video content safety head (MLP on frame embeddings, 7 classes) with accelerate.

    accelerate launch training/train_safety_head.py --config training/configs/safety_head.yaml
    accelerate launch training/train_safety_head.py --config ... --resume_from_checkpoint latest

Data (`data`), either:
  * `embeddings_file`: a .safetensors file with `embeddings` [N, D] (float) and `labels` [N] (int64, index into
    `class_names`; 0 = Safe) — e.g. SigLIP embeddings you computed once; or
  * `image_folder` + `encoder`: one sub-folder per class name holding images (.jpg/.png); frames are embedded
    with the SigLIP `encoder` (local folder / cached Hub id) and cached to `output_dir/embeddings.safetensors`.
A `val_fraction` of the rows (stratified by a seeded shuffle) is held out for accuracy.

Outputs in `output_dir`: `checkpoint-<step>/` (accelerate state, resumable), `head/` (VideoSafetyHead
save_pretrained folder, loadable by VideoContentSafetyClassifier.from_pretrained), `metrics.jsonl`.
"""

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from cosmos_hf.guardrails.categories import VIDEO_SAFETY_CLASSES
from cosmos_hf.guardrails.video_classifier import VideoSafetyHead
from cosmos_hf.training_utils import load_yaml
from cosmos_hf.utils import atomic_path

DEFAULT_CONFIG = dict(
    output_dir="outputs/safety_head",
    seed=0,
    model=dict(hidden_sizes=[512, 256], class_names=list(VIDEO_SAFETY_CLASSES)),
    data=dict(embeddings_file=None, image_folder=None, encoder=None, val_fraction=0.1),
    train=dict(batch_size=64, learning_rate=1e-3, weight_decay=1e-4, max_train_steps=2000, checkpointing_steps=500,
               checkpoints_total_limit=2, validation_steps=500, class_balanced=True),
)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def deep_update(base, update):
    out = dict(base)
    for key, value in (update or {}).items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = deep_update(base[key], value) if nested else value
    return out


def load_config(path, overrides=None):
    config = deep_update(DEFAULT_CONFIG, load_yaml(Path(path).read_text()) or {})
    config = deep_update(config, overrides or {})
    data = config["data"]
    if bool(data["embeddings_file"]) == bool(data["image_folder"]):
        raise ValueError("set exactly one of data.embeddings_file or data.image_folder")
    if data["image_folder"] and not data["encoder"]:
        raise ValueError("data.image_folder needs data.encoder (a SigLIP folder or cached Hub id)")
    if not 0.0 <= data["val_fraction"] < 1.0:
        raise ValueError(f"data.val_fraction must be in [0, 1), got {data['val_fraction']}")
    return config


def embed_image_folder(folder, encoder, class_names, cache_path):
    """Embed every image under folder/<class name>/ with SigLIP; cache the result as safetensors."""
    from PIL import Image

    from cosmos_hf.guardrails.video_classifier import SiglipFrameEmbedder

    if Path(cache_path).is_file():
        return load_file(str(cache_path))
    embedder = SiglipFrameEmbedder.from_pretrained(encoder)
    embeddings, labels = [], []
    for index, name in enumerate(class_names):
        paths = sorted(p for p in (Path(folder) / name).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for path in tqdm(paths, desc=f"embedding {name}"):
            frame = np.asarray(Image.open(path).convert("RGB"))
            embeddings.append(embedder(frame[None])[0])
            labels.append(index)
    if not embeddings:
        raise ValueError(f"no images found under {folder}/<class name>/ for classes {list(class_names)}")
    tensors = {"embeddings": torch.stack(embeddings).contiguous(), "labels": torch.tensor(labels, dtype=torch.int64)}
    with atomic_path(cache_path) as tmp:
        save_file(tensors, str(tmp))
    return tensors


def load_embeddings(config):
    data, names = config["data"], config["model"]["class_names"]
    if data["embeddings_file"]:
        path = Path(data["embeddings_file"])
        if not path.is_file():
            raise FileNotFoundError(f"embeddings file not found: {path}")
        tensors = load_file(str(path))
    else:
        tensors = embed_image_folder(data["image_folder"], data["encoder"], names,
                                     Path(config["output_dir"]) / "embeddings.safetensors")
    if set(tensors) < {"embeddings", "labels"}:
        raise ValueError(f"embeddings file needs 'embeddings' and 'labels' tensors, has {sorted(tensors)}")
    x, y = tensors["embeddings"].float(), tensors["labels"].long()
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"embeddings must be [N, D] and labels [N], got {tuple(x.shape)} and {tuple(y.shape)}")
    if y.min() < 0 or y.max() >= len(names):
        raise ValueError(f"labels must be in [0, {len(names) - 1}] (class_names), got [{y.min()}, {y.max()}]")
    return x, y


def split(x, y, val_fraction, seed):
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    num_val = int(round(len(y) * val_fraction))
    return (x[order[num_val:]], y[order[num_val:]]), (x[order[:num_val]], y[order[:num_val]])


@torch.no_grad()
def accuracy(head, x, y):
    if len(y) == 0:
        return None
    head.eval()
    pred = head(x).argmax(-1)
    head.train()
    return (pred == y).float().mean().item()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--output_dir")
    parser.add_argument("--resume_from_checkpoint", help="'latest' or a checkpoint-<step> folder")
    parser.add_argument("--max_train_steps", type=int)
    args = parser.parse_args(argv)
    overrides = {}
    if args.output_dir:
        overrides["output_dir"] = args.output_dir
    if args.max_train_steps:
        overrides["train"] = {"max_train_steps": args.max_train_steps}
    config = load_config(args.config, overrides)
    train_cfg, out_dir = config["train"], Path(config["output_dir"])

    accelerator = Accelerator(project_config=ProjectConfiguration(project_dir=str(out_dir)))
    set_seed(config["seed"])
    x, y = load_embeddings(config)
    (x_train, y_train), (x_val, y_val) = split(x, y, config["data"]["val_fraction"], config["seed"])
    head = VideoSafetyHead(input_size=x.shape[1], hidden_sizes=tuple(config["model"]["hidden_sizes"]),
                           class_names=tuple(config["model"]["class_names"]))
    optimizer = torch.optim.AdamW(
        head.parameters(), lr=train_cfg["learning_rate"], weight_decay=train_cfg["weight_decay"]
    )
    # Unsafe classes are rare in real data: weight the loss by inverse class frequency so "Safe" cannot win by count.
    counts = torch.bincount(y_train, minlength=head.num_classes).float()
    weights = (counts.sum() / counts.clamp_min(1) / head.num_classes) if train_cfg["class_balanced"] else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    head, optimizer = accelerator.prepare(head, optimizer)

    step = 0
    if args.resume_from_checkpoint:
        path = args.resume_from_checkpoint
        if path == "latest":
            found = sorted(out_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
            path = found[-1] if found else None
        if path is not None:
            accelerator.load_state(str(path))
            step = int(Path(path).name.split("-")[1])
            accelerator.print(f"resumed from {path} at step {step}")

    batch_size, max_steps = train_cfg["batch_size"], train_cfg["max_train_steps"]
    generator = torch.Generator().manual_seed(config["seed"])
    for _ in range(step):  # replay the batch order so a resumed run sees what an uninterrupted one would
        torch.randint(len(y_train), (batch_size,), generator=generator)
    metrics_path = out_dir / "metrics.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = tqdm(range(step, max_steps), initial=step, total=max_steps, disable=not accelerator.is_main_process)
    head.train()
    for step in range(step + 1, max_steps + 1):
        index = torch.randint(len(y_train), (batch_size,), generator=generator)
        xb, yb = x_train[index].to(accelerator.device), y_train[index].to(accelerator.device)
        loss = loss_fn.to(accelerator.device)(head(xb), yb)
        optimizer.zero_grad()
        accelerator.backward(loss)
        optimizer.step()
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}")
        record = {"step": step, "loss": loss.item()}
        if step % train_cfg["validation_steps"] == 0 or step == max_steps:
            unwrapped = accelerator.unwrap_model(head)
            device = accelerator.device
            record["val_accuracy"] = accuracy(unwrapped, x_val.to(device), y_val.to(device))
            record["train_accuracy"] = accuracy(unwrapped, x_train.to(device), y_train.to(device))
        if accelerator.is_main_process:
            with metrics_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        if step % train_cfg["checkpointing_steps"] == 0 and accelerator.is_main_process:
            with atomic_path(out_dir / f"checkpoint-{step}", is_dir=True) as tmp:
                accelerator.save_state(str(tmp))
            old = sorted(out_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
            for stale in old[: -train_cfg["checkpoints_total_limit"]]:
                shutil.rmtree(stale)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with atomic_path(out_dir / "head", is_dir=True) as tmp:
            accelerator.unwrap_model(head).save_pretrained(tmp)
        accelerator.print(f"saved {out_dir / 'head'}")
    return record


if __name__ == "__main__":
    main()
