"""Latency per predicted frame of the action-conditioned world model at 64x64 on the CPU; prints JSON.

    .venv/bin/python bench/action_latency.py [--pipeline OUT/action/pipeline] [--threads 1 2] \
        [--steps 35 10 4 2] [--condition_frames 1 5] [--repeats 5]

One rollout chunk of `CosmosActionConditionedPipeline` (as a robot policy would call it: text encoding, conditioning
encode, `steps` EDM Euler steps of the DiT, decode, the pipeline's saved defaults such as condition detail transfer;
guardrail off) from `c` conditioning frames predicts `window - c` new frames (window 17: 16 frames from 1 conditioning
frame, 12 from 5). Reported: the median over `--repeats` of seconds per predicted frame and frames per second, for
every (threads, steps, conditioning frames) candidate; candidates are interleaved within each repeat so that load
changes hit all of them alike; the machine's load average (start and end), CPU flags and a `busy` flag are recorded
(bench/timing.py). Goal (issue #17): 10 predicted frames per second.

Without `--pipeline` (no trained nano action model yet) the model is the bundled nano Video2World turned into an
action-conditioned one by `from_video2world` (its action layers zero-initialised): the same size and compute as a
trained one, which the JSON says (`model`).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from timing import finish_report, interleaved, machine_header, positive_repeats

REPO = Path(__file__).resolve().parents[1]
NANO_VIDEO2WORLD = REPO / "pipelines" / "cosmos-nano-video2world"


def untrained_action_pipeline(window: int):
    """The nano Video2World with zero-initialised action layers (`from_video2world`): nano size, untrained actions."""
    from cosmos_hf.diffusion.action_conditioning import CosmosActionConditionedTransformer3DModel
    from cosmos_hf.pipelines import CosmosActionConditionedPipeline, CosmosVideo2WorldPipeline

    base = CosmosVideo2WorldPipeline.from_pretrained(NANO_VIDEO2WORLD, disable_safety_checker=True)
    transformer = CosmosActionConditionedTransformer3DModel.from_video2world(
        base.transformer, action_dim=7, num_action_frames=window - 1).eval()
    config = {key: base.config[key] for key in (
        "default_height", "default_width", "default_num_frames", "default_fps", "max_sequence_length",
        "condition_frame_channels", "residual_from_last_condition_frame", "default_guidance_scale",
        "default_condition_detail_transfer")}
    return CosmosActionConditionedPipeline(base.text_encoder, base.tokenizer, transformer, base.vae, base.scheduler,
                                           disable_safety_checker=True, **config)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", help="a trained CosmosActionConditionedPipeline folder (default: untrained)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, nargs="+", default=[35, 10, 4, 2], help="num_inference_steps")
    parser.add_argument("--condition_frames", type=int, nargs="+", default=[1, 5],
                        help="conditioning frames per chunk (1 + 4k): chunks of window - c new frames")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    positive_repeats(parser, args.repeats)
    if min(args.threads) < 1 or min(args.steps) < 1:
        parser.error("--threads and --steps must be >= 1")

    from cosmos_hf.pipelines import CosmosActionConditionedPipeline

    if args.pipeline:
        pipe = CosmosActionConditionedPipeline.from_pretrained(args.pipeline, disable_safety_checker=True)
        model = f"trained: {args.pipeline}"
    else:
        pipe = untrained_action_pipeline(window=17)
        model = ("untrained: nano Video2World + zero-initialised action layers (no trained nano action model "
                 "given; same size and compute)")
    pipe.set_progress_bar_config(disable=True)
    window = pipe.transformer.config.num_action_frames + 1
    size = pipe.config.default_height
    for c in args.condition_frames:
        if c < 1 or c >= window or (c - 1) % pipe.vae_scale_factor_temporal:
            parser.error(f"--condition_frames {c}: needs 1 + {pipe.vae_scale_factor_temporal}k frames below {window}")

    rng = np.random.default_rng(0)
    candidates = [(t, s, c) for t in args.threads for s in args.steps for c in args.condition_frames]

    def run(threads, steps, cond):
        torch.set_num_threads(threads)
        video = torch.from_numpy(rng.uniform(-1, 1, (1, 3, cond, size, size)).astype(np.float32))
        actions = rng.normal(0, 0.02, (window - 1, 7)).astype(np.float32)  # one chunk: window - cond new frames
        pipe(video=video, actions=actions, num_inference_steps=steps, output_type="np",
             generator=torch.Generator().manual_seed(0))

    machine = machine_header()
    # one warm-up round of every candidate (allocator, oneDNN caches), then the candidates interleaved
    timings = interleaved({candidate: (lambda candidate=candidate: run(*candidate)) for candidate in candidates},
                          repeats=args.repeats)

    rows = []
    for (threads, steps, cond), timing in timings.items():
        predicted = window - cond
        median = timing["median_s"]
        rows.append({"threads": threads, "num_inference_steps": steps, "condition_frames": cond,
                     "frames_per_chunk": predicted, "chunk_s": round(median, 4), "chunk": timing,
                     "s_per_frame": round(median / predicted, 4), "frames_per_s": round(predicted / median, 2),
                     "meets_10_fps": predicted / median >= 10.0})
    best = max(rows, key=lambda row: row["frames_per_s"])
    print(json.dumps(finish_report({
        "benchmark": "action-conditioned rollout latency per predicted frame (CPU)",
        "command": " ".join(["bench/action_latency.py", *sys.argv[1:]]), "machine": machine,
        "model": model, "size": f"{size}x{size}", "window_frames": window, "repeats": args.repeats,
        "statistic": "median over repeats, candidates interleaved",
        "goal_frames_per_s": 10.0, "best": best, "results": rows,
    }), indent=2))


if __name__ == "__main__":
    main()
