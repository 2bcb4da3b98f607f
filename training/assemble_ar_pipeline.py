#!/usr/bin/env python
"""Assemble a `CosmosARVideo2WorldPipeline` folder from a trained AR model, its DV tokenizer and (optionally) a trained
diffusion decoder, the way the bundled nano AR pipeline is built.

    .venv/bin/python training/assemble_ar_pipeline.py --ar-model outputs/autoregressive_nano_medusa/model \
        --dv-tokenizer pipelines/cosmos-nano-tokenizer-dv4x8x8 \
        [--diffusion-decoder outputs/diffusion_decoder_nano/pipeline] [--condition-keep-threshold T] \
        [--condition-detail-gate G] [--previous-frame-logit-bias B] --out my-ar-pipeline [--overwrite]

The folder loads with `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`. The text encoder of the
decoder, when it is the nano models' MiniLM, is saved as a reference to the installed package (no weights copied).
`--out` is replaced as a whole: a non-empty folder needs `--overwrite`, and one that is or holds an input folder (or the
working directory) is refused.
"""

import argparse
import math
from pathlib import Path

from cosmos_hf import CosmosARForCausalLM, CosmosARVideo2WorldPipeline, CosmosDiffusionDecoderPipeline
from cosmos_hf.tokenizers import load_tokenizer
from cosmos_hf.utils import atomic_path, check_output_dir


def assemble(ar_model, dv_tokenizer, diffusion_decoder=None, default_fps: int = 12,
             default_use_diffusion_decoder: bool = True, default_condition_keep_threshold: float | None = None,
             default_condition_detail_gate: float | None = None,
             default_previous_frame_logit_bias: float | None = None) -> CosmosARVideo2WorldPipeline:
    model = CosmosARForCausalLM.from_pretrained(ar_model).eval()
    tokenizer = load_tokenizer(dv_tokenizer).eval()
    decoder = None
    if diffusion_decoder:
        decoder = CosmosDiffusionDecoderPipeline.from_pretrained(diffusion_decoder, disable_safety_checker=True)
    # guardrails stay pluggable: none is bundled (pass safety_checker= when loading to run one)
    return CosmosARVideo2WorldPipeline.from_components(
        model, tokenizer, diffusion_decoder=decoder, default_fps=default_fps, disable_safety_checker=True,
        default_use_diffusion_decoder=default_use_diffusion_decoder,
        default_condition_keep_threshold=default_condition_keep_threshold,
        default_condition_detail_gate=default_condition_detail_gate,
        default_previous_frame_logit_bias=default_previous_frame_logit_bias)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ar-model", required=True, help="CosmosARForCausalLM folder (e.g. <run>/model)")
    parser.add_argument("--dv-tokenizer", required=True, help="the DV tokenizer folder the model was trained on")
    parser.add_argument("--diffusion-decoder", default=None, help="CosmosDiffusionDecoderPipeline folder (optional)")
    parser.add_argument("--fps", type=int, default=12, help="frame rate written with the pipeline's videos")
    parser.add_argument("--no-default-diffusion-decoder", action="store_true",
                        help="calls decode with the DV tokenizer unless they pass use_diffusion_decoder=True")
    parser.add_argument("--condition-keep-threshold", type=float, default=None,
                        help="saved call default of condition_keep_threshold (an RGB distance in (0, 1]; default off)")
    parser.add_argument("--condition-detail-gate", type=float, default=None,
                        help="saved call default of condition_detail_gate (an RGB distance in (0, 1]; default off)")
    parser.add_argument("--previous-frame-logit-bias", type=float, default=None,
                        help="saved call default of previous_frame_logit_bias (nats added to the previous latent "
                             "frame's token; default off)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    args = parser.parse_args(argv)
    # the save replaces --out as a whole: checked before anything loads, so e.g. `--out <the training run>` (which
    # holds --ar-model and its checkpoints) or a folder of other files is refused instead of deleted
    inputs = [path for path in (args.ar_model, args.dv_tokenizer, args.diffusion_decoder) if path]
    try:
        check_output_dir(args.out, overwrite=args.overwrite, inputs=inputs)
    except ValueError as error:
        parser.error(str(error))
    for name in ("condition_keep_threshold", "condition_detail_gate"):
        value = getattr(args, name)
        if value is not None and not 0 < value <= 1:
            parser.error(f"--{name.replace('_', '-')} must be an RGB distance in (0, 1], got {value}")
    if args.previous_frame_logit_bias is not None and not math.isfinite(args.previous_frame_logit_bias):
        parser.error(f"--previous-frame-logit-bias must be a finite number, got {args.previous_frame_logit_bias}")
    pipe = assemble(args.ar_model, args.dv_tokenizer, args.diffusion_decoder, args.fps,
                    default_use_diffusion_decoder=not args.no_default_diffusion_decoder,
                    default_condition_keep_threshold=args.condition_keep_threshold,
                    default_condition_detail_gate=args.condition_detail_gate,
                    default_previous_frame_logit_bias=args.previous_frame_logit_bias)
    with atomic_path(Path(args.out), is_dir=True) as tmp:
        pipe.save_pretrained(tmp)
    print(f"saved {type(pipe).__name__} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
