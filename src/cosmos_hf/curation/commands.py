"""`cosmos-hf curate`: run the curation pipeline on a folder of videos."""

from __future__ import annotations

import argparse
import json

from ..utils import positive_int


def register(subparsers):
    parser = subparsers.add_parser(
        "curate", help="curate raw videos into training clips (split, transcode, filter, caption, dedup, shard)",
        description="Curate every video under --input into --output: shot splitting, H.264 transcode, motion / "
                    "quality / text-overlay filters, captions, semantic dedup, webdataset shards and the "
                    "videos/ + metas/ layout. Resumable: rerun the same command after an interruption.")
    parser.add_argument("--input", required=True, help="folder of videos (searched recursively)")
    parser.add_argument("--output", required=True, help="output folder (resumes if it holds an earlier run)")
    parser.add_argument("--executor", default="auto", choices=("auto", "ray", "ray-data", "local"),
                        help="auto: Ray actors on this machine when installed, else in-process; ray-data: the same "
                             "stages as a Ray Data map_batches pipeline (default auto)")
    parser.add_argument("--address", default=None, help="join an existing Ray cluster (e.g. auto or ray://host:10001)")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="Ray actors per stage (ray, ray-data; default 1)")
    parser.add_argument("--num-cpus", type=positive_int, default=None,
                        help="CPUs for a local Ray instance (default: all)")
    parser.add_argument("--detector", default="content", choices=("content", "transnetv2"))
    parser.add_argument("--transnet-weights", default=None, help="local TransNetV2 weights (.safetensors or .pth)")
    parser.add_argument("--dissolve-span", type=int, default=0,
                        help="content detector: also detect dissolves/fades spanning about this many frames (0: off)")
    parser.add_argument("--min-clip-seconds", type=float, default=2.0)
    parser.add_argument("--max-clip-seconds", type=float, default=60.0)
    parser.add_argument("--crop-seconds", type=float, default=0.5, help="frames cropped at each cut (seconds)")
    parser.add_argument("--max-side", type=int, default=None, help="transcode: longest side at most this")
    parser.add_argument("--min-motion", type=float, default=0.02, help="mean optical flow, pixels/frame at 128 px")
    parser.add_argument("--quality", default="statistics", choices=("statistics", "clip-aesthetic", "dover", "none"))
    parser.add_argument("--clip-model", default=None, help="local CLIP folder for --quality clip-aesthetic")
    parser.add_argument("--aesthetic-head", default=None, help="LAION aesthetic MLP weights for clip-aesthetic")
    parser.add_argument("--dover-weights", default=None,
                        help="DOVER.pth (or a safetensors copy) for --quality dover; nothing is downloaded")
    parser.add_argument("--min-dover", type=float, default=0.3,
                        help="--quality dover: reject clips whose fused DOVER score (0..1) is below this")
    parser.add_argument("--no-text-filter", action="store_true", help="keep clips with burned-in text")
    parser.add_argument("--captioner-model", default=None,
                        help="local VLM folder (Qwen2-VL style) for clips without a metadata caption")
    parser.add_argument("--embedder", default="visual", choices=("visual", "minilm"))
    parser.add_argument("--dedup-eps", type=float, default=0.05, help="remove pairs with cosine > 1 - eps")
    parser.add_argument("--shard-size", type=positive_int, default=100)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .engine import make_executor
    from .pipeline import CurationConfig, run_curation

    config = CurationConfig(
        detector=args.detector, transnet_weights=args.transnet_weights, dissolve_span=args.dissolve_span,
        min_clip_seconds=args.min_clip_seconds,
        max_clip_seconds=args.max_clip_seconds, crop_seconds=args.crop_seconds, max_side=args.max_side,
        min_motion=args.min_motion, quality=args.quality, clip_model=args.clip_model,
        aesthetic_head=args.aesthetic_head, dover_weights=args.dover_weights, min_dover=args.min_dover,
        text_overlay=not args.no_text_filter,
        captioner_model=args.captioner_model, embedder=args.embedder, dedup_eps=args.dedup_eps,
        shard_size=args.shard_size)
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    executor = make_executor(args.executor, address=args.address, workers=args.workers, num_cpus=args.num_cpus)
    command = f"cosmos-hf curate --input {args.input} --output {args.output}"
    summary = run_curation(args.input, args.output, config, executor=executor, progress=not args.no_progress,
                           command=command)
    stages = summary["stages"]
    print(json.dumps({"clips_written": summary["clips_written"], "inputs": summary["inputs"],
                      "clips_detected": stages["split"]["clips"], "rejections": summary["rejections"],
                      "inputs_failed": summary["inputs_failed"], "inputs_skipped": summary["inputs_skipped"]},
                     indent=1))
    for failure in summary["inputs_failed"]:
        print(f"cosmos-hf curate: could not decode {failure['video']}: {failure['error']}")
    for skipped in summary["inputs_skipped"]:
        print(f"cosmos-hf curate: skipped {skipped['input']}: {skipped['reason']}")
    if summary["clips_written"] == 0:
        print(f"cosmos-hf curate: 0 clips written from {summary['inputs']} input videos; see "
              f"{args.output}/summary.json for the reason of each rejection")
        return 1
    if summary["inputs_failed"] or summary["inputs_skipped"]:
        # Clips of the good inputs are written, but an input was lost: scripts must not mistake this for success.
        print(f"cosmos-hf curate: {len(summary['inputs_failed'])} input(s) failed and "
              f"{len(summary['inputs_skipped'])} skipped (see 'videos' in {args.output}/summary.json); exit code 1")
        return 1
    return 0
