"""Benchmark the diffusion WFM machinery on the CPU and print JSON.

    OMP_NUM_THREADS=2 .venv/bin/python bench/diffusion.py [--threads 2] [--steps 35] [--repeats 5]
        [--pipeline pipelines/cosmos-nano-video2world ...] [--skip_random]

Measures (randomly initialised weights; speed does not depend on training):
* EDM training steps/s (forward + backward + AdamW) of the `tiny` and `nano-latent` DiTs on latent batches shaped
  like the nano configs (16-channel 4x8x8 latents of 64x64x17 clips, batch 4), with and without gradient
  checkpointing;
* nano Video2World / Text2World generation time for 17 frames at 64x64 (`--steps` EDM Euler steps, guidance 1 and
  7), with a 4x8x8 AutoencoderKLCosmos decoder of nano width;
* our pipeline vs diffusers' `CosmosVideoToWorldPipeline` on the same components, side by side (a ratio).
With `--pipeline DIR` (repeatable), also the end-to-end generation time of saved pipeline folders ("saved_pipelines"):
loaded with `DiffusionPipeline.from_pretrained(DIR, trust_remote_code=True)` and called as a user calls them, with
their saved defaults (guidance, condition detail transfer, the default guardrail), text encoding and decoding
included; 17 frames at 64x64 from one conditioning frame (Video2World, AR Video2World) or a prompt (Text2World).
`--skip_random` runs only those rows. Every time is the median (with min, max, IQR) of `--repeats` runs of the
compared candidates interleaved after a warm-up, next to the machine's load (bench/timing.py).
Target from the issue: 17 frames at 64x64 in under 30 s on 2 CPU cores.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from timing import finish_report, interleaved, machine_header, positive_repeats, speedup


class PassThroughChecker:
    def to(self, *args, **kwargs):
        return self

    def check_text_safety(self, prompt):
        return True

    def check_video_safety(self, video):
        return video


def training_setup(preset, latent_channels, batch, frames, size, gradient_checkpointing):
    """(row, step): one EDM training step (forward + backward + AdamW) of a random `preset` DiT and its description."""
    from diffusers import CosmosTransformer3DModel

    from cosmos_hf.diffusion.edm import EDMObjective
    from cosmos_hf.diffusion.nano import transformer_config

    torch.manual_seed(0)
    transformer = CosmosTransformer3DModel(**transformer_config(preset, latent_channels, 384, video2world=True))
    if gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    objective = EDMObjective({"video2world": True, "min_condition_frames": 1, "max_condition_frames": 2})
    params = list(transformer.parameters()) + list(objective.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    latents = torch.randn(batch, latent_channels, frames, size, size) * 0.5
    text = torch.randn(batch, 32, 384)
    generator = torch.Generator().manual_seed(0)

    def step():
        loss = objective(transformer, latents, text, fps=12, generator=generator)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    row = {"preset": preset, "params": sum(p.numel() for p in transformer.parameters()),
           "latent_batch": [batch, latent_channels, frames, size, size],
           "gradient_checkpointing": gradient_checkpointing}
    return row, step


def nano_v2w_components():
    from diffusers import AutoencoderKLCosmos, CosmosTransformer3DModel, EDMEulerScheduler

    from cosmos_hf.diffusion.nano import tiny_t5_text_encoder, transformer_config

    torch.manual_seed(0)
    vae = AutoencoderKLCosmos(
        in_channels=3, out_channels=3, latent_channels=16, encoder_block_out_channels=(32, 64, 64, 64),
        decode_block_out_channels=(32, 64, 64, 64), attention_resolutions=(), resolution=64, num_layers=1,
        patch_size=4, patch_type="haar", spatial_compression_ratio=8, temporal_compression_ratio=4,
        latents_mean=None, latents_std=None,
    ).eval()
    tokenizer, text_encoder = tiny_t5_text_encoder(d_model=384)
    t2w = CosmosTransformer3DModel(**transformer_config("nano-latent", 16, 384)).eval()
    v2w = CosmosTransformer3DModel(**transformer_config("nano-latent", 16, 384, video2world=True)).eval()
    scheduler = EDMEulerScheduler(sigma_max=80.0, sigma_min=0.002, sigma_data=0.5, final_sigmas_type="sigma_min")
    return tokenizer, text_encoder, t2w, v2w, vae, scheduler


BENCH_PROMPT = "An orange ball falls from about 0.7 m onto a light grey floor and bounces."


def saved_pipeline_setup(folder, steps):
    """(row, call): load a saved pipeline folder; `call` generates 17 frames at 64x64 as a user would."""
    from diffusers import DiffusionPipeline
    from PIL import Image

    import cosmos_hf  # noqa: F401  (the folder's pipeline.py entry point imports from it)
    from cosmos_hf.pipelines import CosmosARVideo2WorldPipeline, CosmosText2WorldPipeline, CosmosVideo2WorldPipeline

    if not (Path(folder) / "model_index.json").is_file():
        raise ValueError(f"--pipeline {folder}: not a saved pipeline folder (no model_index.json)")
    start = time.perf_counter()
    pipe = DiffusionPipeline.from_pretrained(str(folder), trust_remote_code=True)
    load_s = time.perf_counter() - start
    pipe.set_progress_bar_config(disable=True)
    frame = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    row = {"pipeline": str(folder), "class": type(pipe).__name__, "frames": 17, "size": "64x64"}
    generator = lambda: torch.Generator("cpu").manual_seed(0)  # a fresh seeded one per call
    if isinstance(pipe, CosmosARVideo2WorldPipeline):
        if pipe.num_output_frames != 17 or pipe.pixel_size != (64, 64):
            raise ValueError(f"--pipeline {folder}: generates {pipe.num_output_frames} frames of {pipe.pixel_size} "
                             f"(its token grid), not 17 of 64x64")
        options = {"use_medusa": pipe.ar_model.medusa_heads is not None,
                   "use_diffusion_decoder": pipe.has_diffusion_decoder}
        row.update(options, decoding="greedy")

        def call():
            return pipe(video=[frame], prompt=BENCH_PROMPT, generator=generator(), output_type="np", **options)
    elif isinstance(pipe, CosmosText2WorldPipeline):  # Video2World is a subclass
        is_video2world = isinstance(pipe, CosmosVideo2WorldPipeline)
        row.update(steps=steps, guidance_scale=pipe.config.default_guidance_scale)
        if is_video2world:
            row.update(condition_detail_transfer=pipe.config.get("default_condition_detail_transfer", False))
        conditioning = {"video": [frame]} if is_video2world else {}

        def call():
            return pipe(**conditioning, prompt=BENCH_PROMPT, height=64, width=64, num_frames=17,
                        num_inference_steps=steps, generator=generator(), output_type="np")
    else:
        raise ValueError(f"--pipeline {folder}: {type(pipe).__name__} is not a Cosmos world-model pipeline")
    row["safety_checker"] = type(pipe.safety_checker).__name__ if pipe.safety_checker is not None else None
    row["load_s"] = round(load_s, 3)

    def checked_call():
        shape = np.asarray(call().frames).shape
        if shape != (1, 17, 64, 64, 3):
            raise ValueError(f"--pipeline {folder}: output shaped {shape}, expected (1, 17, 64, 64, 3)")

    return row, checked_call


def bench_random_weights(args, results):
    """The training and generation rows on randomly initialised nano components (unchanged sections)."""
    from diffusers import CosmosVideoToWorldPipeline

    from cosmos_hf.pipelines.pipeline_cosmos_text2world import CosmosText2WorldPipeline
    from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline

    print("training steps ...", file=sys.stderr, flush=True)
    setups = {"tiny": training_setup("tiny", 16, 4, 5, 8, False),
              "nano-latent": training_setup("nano-latent", 16, 4, 5, 8, False),
              "nano-latent, checkpointing": training_setup("nano-latent", 16, 4, 5, 8, True)}
    timings = interleaved({name: step for name, (_, step) in setups.items()}, repeats=args.repeats)
    results["training"] = [{**row, "step": timings[name], "steps_per_s": round(1 / timings[name]["median_s"], 3)}
                           for name, (row, _) in setups.items()]

    tokenizer, text_encoder, t2w, v2w, vae, scheduler = nano_v2w_components()
    common = dict(default_height=64, default_width=64, default_num_frames=17, default_fps=12, max_sequence_length=32)
    # guardrails off (they refuse prompt embeddings without a prompt); diffusers' gets a pass-through checker
    text_pipe = CosmosText2WorldPipeline(text_encoder, tokenizer, t2w, vae, scheduler, disable_safety_checker=True,
                                         **common)
    video_pipe = CosmosVideo2WorldPipeline(text_encoder, tokenizer, v2w, vae, scheduler, disable_safety_checker=True,
                                           **common)
    reference = CosmosVideoToWorldPipeline(text_encoder, tokenizer, v2w, vae, scheduler,
                                           safety_checker=PassThroughChecker())
    for pipe in (text_pipe, video_pipe, reference):
        pipe.set_progress_bar_config(disable=True)
    embeds = text_pipe._get_t5_prompt_embeds(["a red ball falls"], 32)
    conditioning = [np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)]
    candidates = {}
    for guidance in (1.0, 7.0):
        candidates[f"text2world/{guidance}"] = lambda guidance=guidance: text_pipe(
            prompt_embeds=embeds, negative_prompt_embeds=torch.zeros_like(embeds), num_inference_steps=args.steps,
            guidance_scale=guidance, output_type="np")
        call = dict(video=conditioning, prompt_embeds=embeds, negative_prompt_embeds=torch.zeros_like(embeds),
                    height=64, width=64, num_frames=17, num_inference_steps=args.steps, guidance_scale=guidance,
                    output_type="np")
        candidates[f"video2world/{guidance}"] = lambda call=call: video_pipe(**call)
        if guidance == 1.0:  # side by side with diffusers' loop on the same components
            candidates["diffusers_video2world/1.0"] = lambda call=call: reference(**call)
    candidates["vae_decode_17x64x64"] = lambda: vae.decode(torch.randn(1, 16, 5, 8, 8))
    print("generation ...", file=sys.stderr, flush=True)
    timings = interleaved(candidates, repeats=args.repeats)
    generation = []
    for guidance in (1.0, 7.0):
        t2w_timing, ours = timings[f"text2world/{guidance}"], timings[f"video2world/{guidance}"]
        row = {"frames": 17, "size": "64x64", "steps": args.steps, "guidance_scale": guidance,
               "text2world": t2w_timing, "video2world": ours,
               "under_30s_target": bool(max(t2w_timing["median_s"], ours["median_s"]) < 30)}
        if guidance == 1.0:
            theirs = timings["diffusers_video2world/1.0"]
            row.update(diffusers_video2world=theirs, ours_speedup_vs_diffusers=speedup(theirs, ours))
        generation.append(row)
    results["generation_nano_latent"] = generation
    results["vae_decode_17x64x64"] = timings["vae_decode_17x64x64"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=35)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed runs after one warm-up (>= 5)")
    parser.add_argument("--pipeline", action="append", default=[], metavar="DIR",
                        help="a saved pipeline folder to time end to end (repeatable)")
    parser.add_argument("--skip_random", action="store_true",
                        help="only the --pipeline rows (skip the random-weight training and generation rows)")
    args = parser.parse_args()
    if args.skip_random and not args.pipeline:
        parser.error("--skip_random leaves nothing to run without --pipeline DIR")
    positive_repeats(parser, args.repeats)
    if args.steps < 1 or args.threads < 1:
        parser.error("--steps and --threads must be >= 1")
    for folder in args.pipeline:  # fail before the long random-weight rows, not after
        if not (Path(folder) / "model_index.json").is_file():
            parser.error(f"--pipeline {folder}: not a saved pipeline folder (no model_index.json)")
    torch.set_num_threads(args.threads)
    results = {"benchmark": "diffusion", "command": " ".join(["bench/diffusion.py", *sys.argv[1:]]),
               "machine": machine_header(), "repeats": args.repeats,
               "statistic": "median over repeats, candidates interleaved"}
    if not args.skip_random:
        bench_random_weights(args, results)
    if args.pipeline:
        print("saved pipelines ...", file=sys.stderr, flush=True)
        setups = {folder: saved_pipeline_setup(folder, args.steps) for folder in args.pipeline}
        timings = interleaved({folder: call for folder, (_, call) in setups.items()}, repeats=args.repeats)
        results["saved_pipelines"] = [
            {**row, "generation": timings[folder], "generation_s": round(timings[folder]["median_s"], 3),
             "under_30s_target": bool(timings[folder]["median_s"] < 30)} for folder, (row, _) in setups.items()]
    print(json.dumps(finish_report(results), indent=2))


if __name__ == "__main__":
    main()
