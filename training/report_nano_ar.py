#!/usr/bin/env python
"""Held-out next-token report for a nano AR world model: cross-entropy and top-1 accuracy on DV tokens of clips it
never saw, next to the "same token as one latent frame earlier" predictor (the token-space copy-last-frame).

    .venv/bin/python training/report_nano_ar.py [--model pipelines/cosmos-nano-ar-video2world/ar_model]
        [--tokenizer pipelines/cosmos-nano-tokenizer-dv4x8x8] [--clips 64] [--views 0 1 2 3]
        [--previous-frame-logit-bias 1 2 ...]

Clips: physics-world scenes with seeds 0..N-1 (the nano runs train on seeds 1000+, so N <= 1000), all 8 scenes, each
seen from every camera view in turn (clip i: scene i % 8, view views[(i // 8) % len(views)]), 17 frames at 64x64,
12 fps.
Scored on the tokens of latent frames 1.. (latent frame 0 is the prompt). With `--previous-frame-logit-bias B`, also
the top-1 accuracy of the biased argmax the AR pipeline's `previous_frame_logit_bias=B` decodes with
(`model_top1_bias_B`; teacher-forced: every earlier token is the truth). `changed_fraction` is the share of tokens
that differ from the previous latent frame's (where something moved; copying gets none of them right), and
`model_top1_changed` / `model_top1_unchanged` split the model's top-1 between those and the rest: a model can beat
copying on top-1 while still missing most of what moves.
"""

import argparse
import json

import torch

import cosmos_hf  # noqa: F401  (registers cosmos_ar with the Auto classes)
from cosmos_hf import CosmosARForCausalLM, sim
from cosmos_hf.autoregressive.medusa import add_previous_frame_logit_bias
from cosmos_hf.data import frames_to_tensor
from cosmos_hf.tokenizers import load_tokenizer


@torch.no_grad()
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pipelines/cosmos-nano-ar-video2world/ar_model")
    parser.add_argument("--tokenizer", default="pipelines/cosmos-nano-tokenizer-dv4x8x8")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--views", type=int, nargs="+", default=[0, 1, 2, 3], choices=range(4),
                        help="camera views cycled over the clips")
    parser.add_argument("--previous-frame-logit-bias", type=float, nargs="+", default=[],
                        help="also score the argmax with this bias on the previous latent frame's token")
    args = parser.parse_args(argv)
    if args.clips < 1:
        parser.error(f"--clips must be >= 1, got {args.clips}")
    try:
        sim.check_held_out_clip_count(args.clips, sim.HELD_OUT_SEEDS["physics"])
    except ValueError as error:
        parser.error(str(error))
    # each bias is one counter: a value given twice (1 and 1.0, 0 and -0) was counted twice into the same top-1
    biases = args.previous_frame_logit_bias
    if len(set(biases)) != len(biases):
        parser.error(f"--previous-frame-logit-bias values must differ, got {biases}")
    torch.set_num_threads(1)

    model = CosmosARForCausalLM.from_pretrained(args.model).eval()
    tokenizer = load_tokenizer(args.tokenizer).eval()
    grid = model.config.latent_shape
    per_frame = grid[1] * grid[2]
    frames = 1 + (grid[0] - 1) * tokenizer.config.temporal_compression
    size = grid[1] * tokenizer.config.spatial_compression
    by_view = {}
    for i in range(args.clips):
        scene, view = sim.physics_scene_and_view(i, sim.SCENES, args.views)
        video = sim.simulate(scene, seed=i, num_frames=frames, height=size, width=size,
                             view=view, fps=12).video
        tokens = tokenizer.tokenize(frames_to_tensor(video)).reshape(1, -1)  # t-major
        inputs, offset = tokens, 0
        if model.config.bov_token_id is not None:
            inputs, offset = torch.cat([torch.full((1, 1), model.config.bov_token_id), tokens], dim=1), 1
        num_tokens = tokens.shape[1]
        # token p (of latent frames 1..; frame 0 is the prompt) is predicted at input position p - 1 (+ <bov>)
        logits = model(inputs).logits[0, per_frame - 1 + offset : num_tokens - 1 + offset].float()
        targets = tokens[0, per_frame:]
        ce = torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
        hits = logits.argmax(-1) == targets
        correct = hits.sum().item()
        previous = tokens[0, :-per_frame]
        copy = (targets == previous).sum().item()
        changed = targets != previous
        stats = by_view.setdefault(view, {"tokens": 0, "ce": 0.0, "correct": 0, "copy": 0, "changed": 0,
                                          "correct_changed": 0,
                                          **{bias: 0 for bias in args.previous_frame_logit_bias}})
        stats["tokens"] += targets.numel()
        stats["ce"] += ce
        stats["correct"] += correct
        stats["copy"] += copy
        stats["changed"] += changed.sum().item()
        stats["correct_changed"] += hits[changed].sum().item()
        for bias in args.previous_frame_logit_bias:
            biased = add_previous_frame_logit_bias(logits, previous.tolist(), bias)
            stats[bias] += (biased.argmax(-1) == targets).sum().item()

    def summary(rows):
        n = sum(r["tokens"] for r in rows)
        changed, correct_changed = sum(r["changed"] for r in rows), sum(r["correct_changed"] for r in rows)
        correct = sum(r["correct"] for r in rows)
        return {"tokens": n, "cross_entropy": round(sum(r["ce"] for r in rows) / n, 4),
                "model_top1": round(correct / n, 4),
                "previous_frame_top1": round(sum(r["copy"] for r in rows) / n, 4),
                "changed_fraction": round(changed / n, 4),
                "model_top1_changed": round(correct_changed / changed, 4) if changed else None,
                "model_top1_unchanged": round((correct - correct_changed) / (n - changed), 4) if n > changed else None,
                **{f"model_top1_bias_{bias:g}": round(sum(r[bias] for r in rows) / n, 4)
                   for bias in args.previous_frame_logit_bias}}

    report = {"model": args.model, "clips": args.clips, "views": args.views, "all": summary(list(by_view.values())),
              **{f"view{view}": summary([rows]) for view, rows in sorted(by_view.items())}}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
