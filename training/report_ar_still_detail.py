#!/usr/bin/env python
"""Choose an AR pipeline's previous-frame logit bias, keep threshold and detail gate: generate each clip's tokens
once per bias, then score every (`previous_frame_logit_bias`, `condition_keep_threshold`, `condition_detail_gate`)
setting on the physics benchmark.

    .venv/bin/python training/report_ar_still_detail.py --pipeline pipelines/cosmos-nano-ar-video2world \
        --seed-offset 100 --seeds 1 --cond-frames 1 5 --bias 0 2 --keep 0 0.05 0.1 --gate 0 0.125 0.25 \
        --out outputs/eval/ar_still_detail.json

The keep threshold and detail gate only post-process the DV decode (`CosmosARVideo2WorldPipeline.restore_still_detail`),
so one greedy generation per clip and bias serves every pair, where `cosmos-hf eval physics --pipeline-kwargs ...`
would generate again for each. The numbers are the same as that command's for the same setting (the same clips,
`score_prediction` and uint8 frames). Use held-out validation seeds (e.g. 100) to choose, and report the benchmark's seeds 0-2 with
`cosmos-hf eval physics`. `--true-tokens` adds the DV round trip of each true clip under every setting: the scores
of a model that predicts every token right, the ceiling the tokenizer leaves.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from cosmos_hf import sim
from cosmos_hf.evaluation.physics import run_physics_benchmark
from cosmos_hf.evaluation.predictors import ConstantVelocityPredictor, CopyLastFramePredictor
from cosmos_hf.pipelines import load_pipeline
from cosmos_hf.utils import atomic_path


class SharedGreedyAR:
    """Greedy tokens (with one previous-frame logit bias) and their DV decode, computed once per conditioning clip and
    shared by every (keep, gate) setting."""

    def __init__(self, pipe, use_medusa: bool, previous_frame_logit_bias: float = 0.0):
        self.pipe, self.use_medusa, self.bias, self.cache = pipe, use_medusa, previous_frame_logit_bias, {}

    @torch.no_grad()
    def decode(self, cond_frames: np.ndarray):
        key = hashlib.sha1(cond_frames.tobytes() + str(cond_frames.shape).encode()).hexdigest()
        if key not in self.cache:
            self.cache.clear()  # clips come one at a time: keep only the current one
            frames = torch.from_numpy(cond_frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
            tokens = self.pipe(video=frames, output_type="tokens", use_medusa=self.use_medusa,
                               previous_frame_logit_bias=self.bias).frames
            decoded = self.pipe.dv_tokenizer.detokenize(tokens).float().clamp(-1, 1)
            self.cache[key] = (frames, decoded)
        return self.cache[key]


class TrueTokens:
    """The DV round trip of the true clip: what the pipeline would decode if the model predicted every token right,
    so the ceiling its tokenizer (and each keep / gate setting) puts on the scores. Needs the benchmark's ground
    truth; the conditioning frames given are the clip's first ones. (`cosmos-hf eval physics --tokenizer-bound` scores
    the bare round trip; this one goes through the AR pipeline's own keep threshold and gate.)"""

    requires_ground_truth = True

    def __init__(self, pipe):
        self.pipe, self.cache = pipe, {}

    @torch.no_grad()
    def decode(self, cond_frames: np.ndarray, ground_truth: np.ndarray):
        clip = torch.from_numpy(ground_truth).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
        key = hashlib.sha1(ground_truth.tobytes() + str(ground_truth.shape).encode()).hexdigest()
        if key not in self.cache:
            self.cache.clear()
            tokenizer = self.pipe.dv_tokenizer
            self.cache[key] = tokenizer.detokenize(tokenizer.tokenize(clip)).float().clamp(-1, 1)
        return clip[:, :, : len(cond_frames)], self.cache[key]


class StillDetailSetting:
    """One (keep threshold, detail gate) pair applied to the shared decode; returns uint8 [T, H, W, 3] as the
    pipeline's `output_type="np"` (rounded to nearest)."""

    def __init__(self, shared: SharedGreedyAR | TrueTokens, keep: float | None, gate: float | None):
        self.shared, self.keep, self.gate = shared, keep, gate
        self.requires_ground_truth = getattr(shared, "requires_ground_truth", False)

    def __call__(self, cond_frames, caption, num_frames, context=None):
        if self.requires_ground_truth:
            frames, decoded = self.shared.decode(cond_frames, context["ground_truth"])
        else:
            frames, decoded = self.shared.decode(cond_frames)
        if self.keep is not None or self.gate is not None:
            decoded = self.shared.pipe.restore_still_detail(frames, decoded, self.keep, self.gate)
        video = ((decoded[0].permute(1, 2, 3, 0) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        if len(video) != num_frames:
            raise ValueError(f"the pipeline returns {len(video)} frames, the benchmark asked for {num_frames}")
        return video


def setting_name(keep, gate, bias=0.0) -> str:
    name = f"keep {keep or 0:g}, gate {gate or 0:g}"
    return f"bias {bias:g}, {name}" if bias else name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", required=True, help="a CosmosARVideo2WorldPipeline folder")
    parser.add_argument("--cond-frames", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--seed-offset", type=int, default=100, help="first simulator seed (100: validation)")
    parser.add_argument("--views", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--num-frames", type=int, default=17)
    parser.add_argument("--fps", type=float, default=12.0)
    parser.add_argument("--bias", type=float, nargs="+", default=[0.0],
                        help="previous_frame_logit_bias values (0 = off): each generates the clips once more")
    parser.add_argument("--keep", type=float, nargs="+", default=[0.0], help="keep thresholds (0 = off)")
    parser.add_argument("--gate", type=float, nargs="+", default=[0.0], help="detail gates (0 = off)")
    parser.add_argument("--use-medusa", action="store_true", help="greedy Medusa (the same tokens, faster)")
    parser.add_argument("--true-tokens", action="store_true",
                        help="also score the DV round trip of each true clip with every keep / gate setting (the "
                             "ceiling the tokenizer puts on a model that predicts every token right)")
    parser.add_argument("--out", required=True, help="results JSON")
    args = parser.parse_args(argv)
    for name, values in (("--keep", args.keep), ("--gate", args.gate)):
        if any(not 0 <= v <= 1 for v in values):
            parser.error(f"{name} values must be in [0, 1] (RGB distances in image units; 0 = off), got {values}")
    torch.set_num_threads(1)

    pipe = load_pipeline(args.pipeline, trust_remote_code=True, disable_safety_checker=True)
    pipe.set_progress_bar_config(disable=True)
    predictors = {"copy-last": CopyLastFramePredictor(), "constant-velocity": ConstantVelocityPredictor()}
    for bias in args.bias:
        shared = SharedGreedyAR(pipe, args.use_medusa, bias)
        for keep in args.keep:
            for gate in args.gate:
                predictors[setting_name(keep, gate, bias)] = StillDetailSetting(shared, keep or None, gate or None)
    if args.true_tokens:
        true_tokens = TrueTokens(pipe)
        for keep in args.keep:
            for gate in args.gate:
                predictors[f"true tokens, {setting_name(keep, gate)}"] = StillDetailSetting(true_tokens, keep or None,
                                                                                            gate or None)
    seeds = range(args.seed_offset, args.seed_offset + args.seeds)
    results = run_physics_benchmark(predictors, sim.SCENES, seeds, range(args.views), cond_frames=args.cond_frames,
                                    num_frames=args.num_frames, fps=args.fps)
    results["config"]["pipeline"] = str(args.pipeline)
    arguments = sys.argv[1:] if argv is None else argv
    results["config"]["command"] = "training/report_ar_still_detail.py " + " ".join(arguments)
    for by_predictor in results["results"].values():
        for entry in by_predictor.values():
            entry.pop("samples")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(results, indent=1))
    for cond, by_predictor in results["results"].items():
        for name, entry in by_predictor.items():
            o = entry["overall"]
            print(f"{cond:6s} {name:32s} PSNR {o['psnr']:.2f}  SSIM {o['ssim']:.3f}  fgIoU {o['fg_iou']:.3f}  "
                  f"objIoU {o['object_iou']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
