"""Real-size smoke test on a CUDA GPU: the released Cosmos sizes with random weights; prints one JSON object.

    python bench/gpu_real_size.py            # CUDA: ~2 min on one H100, plus ~2 for ar_static_compile (H200)
    python bench/gpu_real_size.py --tiny     # the same code paths at toy sizes, on whatever device there is

Nothing here needs downloaded weights: every model is built from its released config with random weights, so the
numbers are speed, memory and shape checks, not quality. Measured, in bfloat16:
- tokenizers CV8x8x8 and DV8x16x16 (the Predict1 tokenizers): encode + decode of a 33-frame 704x1280 clip, whole and
  streamed in 2-latent-frame chunks (the streamed latents must equal the whole-clip ones up to bf16 rounding);
- the 4B autoregressive model: prefill of a one-latent-frame prompt (2,560 tokens), greedy decoding of 128 tokens
  with the KV cache, cached vs uncached logits on 512 tokens, KV-cache bytes;
- the 5B-Video2World model: the same prefill and decoding with a 512-token text context (cross-attention);
- the bundled nano AR pipeline on the GPU (float32): greedy vs Medusa token grids from 4 random first frames, and
  plain greedy vs the two Medusa trees' speed (needs pipelines/ from this repository);
- `ar_static_compile`: the 4B model decoding 256 tokens at batch 1 after a one-latent-frame prompt with
  `generate()`: dynamic KV cache (eager) vs preallocated static cache (eager) vs static cache + `torch.compile`d
  decoding step (mode "reduce-overhead", i.e. CUDA graphs; if that fails, "default" is tried and the error kept in
  the JSON); tokens/s (median of 3 interleaved runs), compile time, whether the tokens match the dynamic cache.
- the post-trained DiTs (camera control, action-conditioned, multi-view) at 7B, each made from one Video2World DiT
  with `from_video2world`: one forward at 704x1280, and whether the untrained conditioning leaves the output as is.
`--only SECTION ...` runs some of them (names as in the JSON).
Without a GPU (and without --tiny) it prints {"skipped": ...}, so `make bench` runs anywhere.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from transformers import DynamicCache

from cosmos_hf import CosmosARConfig, CosmosARForCausalLM


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def peak_memory_gb(device):
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


@torch.no_grad()
def tokenizer_smoke(name, frames, height, width, device, dtype):
    from cosmos_hf.tokenizers.configs import from_config_name  # diffusers: only the sections that need it import it

    tokenizer = from_config_name(name).to(device, dtype).eval()
    video = torch.rand(1, 3, frames, height, width, generator=torch.Generator().manual_seed(0)) * 2 - 1
    video = video.to(device, dtype)
    discrete = name.startswith("DV")
    encode = tokenizer.tokenize if discrete else (lambda v: tokenizer.encode(v).latent_dist.mode())
    decode = tokenizer.detokenize if discrete else (lambda z: tokenizer.decode(z).sample)
    encode(video[:, :, :9])  # warm-up (kernel selection)
    reset_peak(device)
    t_encode, latent = timed(lambda: encode(video), device)
    t_decode, recon = timed(lambda: decode(latent), device)
    whole_peak = peak_memory_gb(device)
    tokenizer.enable_streaming(chunk_latent_frames=2)
    reset_peak(device)
    t_stream, streamed = timed(lambda: encode(video), device)
    stream_peak = peak_memory_gb(device)
    tokenizer.disable_streaming()
    if discrete:
        stream_match = round(float((streamed == latent).float().mean()), 4)
    else:
        stream_match = round(float((streamed.float() - latent.float()).abs().max()), 4)
    return {
        "parameters_M": round(sum(p.numel() for p in tokenizer.parameters()) / 1e6, 1),
        "input": [1, 3, frames, height, width],
        "latent": list(latent.shape),
        "reconstruction": list(recon.shape),
        "encode_s": round(t_encode, 3),
        "decode_s": round(t_decode, 3),
        "peak_GB_whole": whole_peak,
        "streamed_encode_s": round(t_stream, 3),
        "peak_GB_streamed": stream_peak,
        ("streamed_tokens_equal_fraction" if discrete else "streamed_latent_max_abs_diff"): stream_match,
    }


@torch.no_grad()
def ar_smoke(variant, device, dtype, tiny):
    overrides = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=None) if tiny else {}
    config = CosmosARConfig.from_variant(variant, **overrides)
    torch.manual_seed(0)
    model = CosmosARForCausalLM(config).to(device, dtype).eval()
    grid = config.latent_shape
    per_frame = grid[1] * grid[2]
    generator = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, config.vocab_size, (1, per_frame), generator=generator)
    if config.bov_token_id is not None:
        prompt = torch.cat([torch.tensor([[config.bov_token_id]]), prompt], dim=1)
    prompt = prompt.to(device)
    text = {}
    if config.insert_cross_attention:
        context = torch.randn(1, 512, config.cross_attention_dim, generator=generator).to(device, dtype)
        text = dict(encoder_hidden_states=context, encoder_attention_mask=torch.ones(1, 512, dtype=torch.bool,
                                                                                       device=device))
    model(prompt[:, :64], use_cache=False, **text)  # warm-up
    reset_peak(device)
    cache = DynamicCache()
    t_prefill, out = timed(lambda: model(prompt, cache=cache, logits_to_keep=1, **text), device)
    new_tokens = 32 if tiny else 128

    def decode():
        logits, tokens = out.logits, []
        for _ in range(new_tokens):
            token = logits[:, -1].argmax(-1, keepdim=True)
            tokens.append(token)
            logits = model(token, cache=cache, **text).logits
        return torch.cat(tokens, 1)

    t_decode, generated = timed(decode, device)
    kv_bytes = sum(layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
                   for layer in cache.layers)
    peak = peak_memory_gb(device)
    # cached (token by token after a prefix) vs one uncached forward over the same 512 tokens
    sequence = torch.cat([prompt, generated], 1)[:, :512] if prompt.shape[1] + new_tokens >= 512 else \
        torch.cat([prompt, generated], 1)
    split = sequence.shape[1] - 16
    full = model(sequence, use_cache=False, **text).logits[:, split:].float()
    check = DynamicCache()
    model(sequence[:, :split], cache=check, **text)
    steps = torch.cat([model(sequence[:, i : i + 1], cache=check, **text).logits for i in range(split,
                                                                                             sequence.shape[1])], 1)
    return {
        "parameters_B": round(sum(p.numel() for p in model.parameters()) / 1e9, 2),
        "latent_shape": grid,
        "prompt_tokens": int(prompt.shape[1]),
        "text_tokens": 512 if text else 0,
        "prefill_s": round(t_prefill, 3),
        "prefill_tokens_per_s": round(prompt.shape[1] / t_prefill, 1),
        "decode_tokens": new_tokens,
        "decode_tokens_per_s": round(new_tokens / t_decode, 1),
        "kv_cache_GB": round(kv_bytes / 2**30, 3),
        "peak_GB": peak,
        "cached_vs_uncached_max_abs_logit_diff": round(float((steps.float() - full).abs().max()), 4),
        "cached_vs_uncached_argmax_agreement": round(float((steps.argmax(-1) == full.argmax(-1)).float().mean()), 4),
    }


def first_difference(a: torch.Tensor, b: torch.Tensor, prompt_length: int):
    """Index among the new tokens of the first one where two [1, L] sequences differ (None when equal)."""
    if a.shape != b.shape:
        return 0
    differ = (a != b).nonzero()
    return None if len(differ) == 0 else int(differ[0, 1]) - prompt_length


@torch.no_grad()
def ar_static_compile(device, dtype, tiny, repeats=3):
    """4B model (random weights): dynamic vs static vs static + compiled decoding step, tokens/s at batch 1."""
    from transformers import CompileConfig

    overrides = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=None) if tiny else {}
    config = CosmosARConfig.from_variant("4B", **overrides)
    torch.manual_seed(0)
    with torch.device(device):  # initialised where it runs: a 4B model built on the CPU takes a minute to move
        model = CosmosARForCausalLM(config)
    model = model.to(dtype).eval()
    grid = config.latent_shape
    prompt = torch.randint(0, config.vocab_size, (1, grid[1] * grid[2]), generator=torch.Generator().manual_seed(1))
    prompt = prompt.to(device)
    new_tokens = 32 if tiny else 256

    def run(kwargs):
        synchronize(device)
        start = time.perf_counter()
        tokens = model.generate(prompt, max_new_tokens=new_tokens, do_sample=False, **kwargs)
        synchronize(device)
        return time.perf_counter() - start, tokens

    def compiled(mode):
        compile_config = CompileConfig(fullgraph=True, dynamic=False, mode=mode)
        compile_config._compile_all_devices = True  # transformers compiles only on accelerators unless told
        return dict(cache_implementation="static", compile_config=compile_config)

    variants = {"dynamic_cache_eager": dict(),
                # disable_compile: on CUDA, transformers would otherwise compile the static-cache step by itself
                "static_cache_eager": dict(cache_implementation="static", disable_compile=True)}
    result = {"parameters_B": round(sum(p.numel() for p in model.parameters()) / 1e9, 2),
              "prompt_tokens": int(prompt.shape[1]), "new_tokens": new_tokens, "batch": 1, "repeats": repeats}
    outputs, errors = {}, {}
    for name, kwargs in variants.items():  # warm-up (kernel selection)
        outputs[name] = run(kwargs)[1]
    for mode in ("reduce-overhead", "default"):  # CUDA graphs first; plain inductor if that fails
        try:
            torch._dynamo.reset()
            elapsed, outputs["static_cache_compiled"] = run(compiled(mode))
            variants["static_cache_compiled"] = compiled(mode)
            result["compile_mode"], result["compile_and_first_run_s"] = mode, round(elapsed, 1)
            break
        except Exception as error:  # a finding for the JSON, not a crash
            errors[mode] = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
    if errors:
        result["compile_errors"] = errors
    seconds = {name: [] for name in variants}
    for _ in range(repeats):
        for name, kwargs in variants.items():
            elapsed, outputs[name] = run(kwargs)
            seconds[name].append(elapsed)
    eager = sorted(seconds["dynamic_cache_eager"])[len(seconds["dynamic_cache_eager"]) // 2]
    for name in variants:
        median = sorted(seconds[name])[len(seconds[name]) // 2]
        result[name] = {"tokens_per_s_median": round(new_tokens / median, 1),
                        "speedup_vs_dynamic_eager": round(eager / median, 2),
                        # bf16 kernels differ between eager and compiled code; with random weights a near-tie can
                        # flip one argmax and everything after it
                        "first_new_token_differing_from_dynamic": first_difference(
                            outputs[name], outputs["dynamic_cache_eager"], prompt.shape[1])}
    result["peak_GB"] = peak_memory_gb(device)
    return result


@torch.no_grad()
def nano_ar_pipeline_smoke(device):
    from cosmos_hf import CosmosARVideo2WorldPipeline
    from cosmos_hf.autoregressive.medusa import medusa_generate
    from cosmos_hf.tokenizers import load_tokenizer

    root = Path(__file__).resolve().parents[1] / "pipelines"
    model = CosmosARForCausalLM.from_pretrained(root / "cosmos-nano-ar-video2world" / "ar_model").eval()
    tokenizer = load_tokenizer(root / "cosmos-nano-tokenizer-dv4x8x8").eval()
    pipe = CosmosARVideo2WorldPipeline.from_components(model, tokenizer, disable_safety_checker=True).to(device)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    frames = [(torch.rand(1, 3, 1, 64, 64, generator=generator) * 2 - 1).to(device) for _ in range(4)]
    same = [bool(torch.equal(pipe(video=f, output_type="tokens").frames,
                             pipe(video=f, output_type="tokens", use_medusa=True).frames)) for f in frames]
    video = pipe(video=frames[0], output_type="pt", use_medusa=True).frames
    prompt = tokenizer.tokenize(frames[0]).reshape(1, -1)
    new = model.config.num_video_tokens - prompt.shape[1]
    model.generate(prompt, max_new_tokens=new, do_sample=False)  # warm-up
    t_plain, plain = timed(lambda: model.generate(prompt, max_new_tokens=new, do_sample=False), device)
    result = {"medusa_tokens_equal_greedy": same, "video": list(video.shape),
              "finite": bool(torch.isfinite(video).all()), "plain_tokens_per_s": round(new / t_plain, 1)}
    for name, kwargs in {"heads_chain": {}, "heads_and_previous_frame_16": dict(temporal_candidates=16)}.items():
        t_medusa, out = timed(lambda: medusa_generate(model, prompt, new, **kwargs), device)
        result[name] = {"identical_to_greedy": bool(torch.equal(out.sequences, plain)),
                        "tokens_per_forward": round(out.mean_tokens_per_step, 2),
                        "wall_time_speedup": round(t_plain / t_medusa, 2)}
    return result


# diffusers' Cosmos-1.0-Diffusion-7B-Video2World DiT (scripts/convert_cosmos_to_diffusers.py): the base of every
# Predict1 post-trained sample (camera control, action-conditioned, multi-view)
DIT_7B_VIDEO2WORLD = dict(
    in_channels=16 + 1, out_channels=16, num_attention_heads=32, attention_head_dim=128, num_layers=28, mlp_ratio=4.0,
    text_embed_dim=1024, adaln_lora_dim=256, max_size=(128, 240, 240), patch_size=(1, 2, 2), rope_scale=(1.0, 3.0, 3.0),
    concat_padding_mask=True, extra_pos_embed_type="learnable",
)


@torch.no_grad()
def post_trained_dits(device, dtype, tiny):
    """The three post-trained DiTs at 7B with random weights: built from one Video2World DiT with `from_video2world`,
    one denoiser forward each (704x1280; camera and action: 121 frames -> 16 latent frames; multi-view: 6 views x
    8 latent frames), time, peak memory, and the zero-init check (new inputs ignored until trained) in bf16."""
    from diffusers import CosmosTransformer3DModel

    from cosmos_hf.diffusion import (
        CosmosActionConditionedTransformer3DModel,
        CosmosCameraControlTransformer3DModel,
        CosmosMultiViewTransformer3DModel,
    )

    config = dict(DIT_7B_VIDEO2WORLD)
    frames, height, width, views, view_frames = 16, 88, 160, 6, 8
    if tiny:
        config.update(num_attention_heads=2, attention_head_dim=16, num_layers=1, adaln_lora_dim=8, text_embed_dim=32)
        frames, height, width, views, view_frames = 3, 8, 8, 2, 2
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=generator).to(device, dtype)

    with torch.device(device):
        base = CosmosTransformer3DModel(**config)
    base = base.to(dtype).eval()
    text = rand(1, 512 if not tiny else 8, config["text_embed_dim"])

    def inputs(num_frames):
        latents = rand(1, 16, num_frames, height, width)
        mask = torch.zeros(1, 1, num_frames, height, width, device=device, dtype=dtype)
        mask[:, :, :1] = 1
        padding = torch.zeros(1, 1, height * 8, width * 8, device=device, dtype=dtype)
        return dict(hidden_states=latents, timestep=torch.full((1,), 0.5, device=device, dtype=dtype),
                    encoder_hidden_states=text, fps=24, condition_mask=mask, padding_mask=padding, return_dict=False)

    def run(model, kwargs):
        model(**kwargs)  # warm-up
        reset_peak(device)
        seconds, out = timed(lambda: model(**kwargs)[0], device)
        return seconds, out

    results = {"base_parameters_B": round(sum(p.numel() for p in base.parameters()) / 1e9, 3)}
    single = inputs(frames)
    base_seconds, base_out = run(base, single)
    results["video2world_base"] = {"latent": list(single["hidden_states"].shape), "forward_s": round(base_seconds, 3),
                                   "peak_GB": peak_memory_gb(device)}
    cases = {
        "camera": (CosmosCameraControlTransformer3DModel, {},
                   dict(plucker=rand(1, 6, frames, height, width))),
        "action": (CosmosActionConditionedTransformer3DModel, dict(action_dim=7, num_action_frames=1),
                   dict(action=rand(1, 1, 7))),
    }
    for name, (cls, extra, extra_inputs) in cases.items():
        with torch.device(device):
            model = cls.from_video2world(base, **extra)
        model = model.to(dtype).eval()
        seconds, out = run(model, {**single, **extra_inputs})
        results[name] = {"forward_s": round(seconds, 3), "peak_GB": peak_memory_gb(device),
                         "zero_init_max_abs_diff_vs_base": float((out.float() - base_out.float()).abs().max())}
        del model
    with torch.device(device):
        multiview = CosmosMultiViewTransformer3DModel.from_video2world(base, num_views=views, view_embed_dim=3,
                                                                       trajectory_dim=0)
    multiview = multiview.to(dtype).eval()
    del base
    stacked = inputs(views * view_frames)
    stacked["encoder_hidden_states"] = text.repeat(1, views, 1)
    seconds, out = run(multiview, stacked)
    results["multiview"] = {"views": views, "latent": list(stacked["hidden_states"].shape),
                            "tokens": views * view_frames * height * width // 4,
                            "forward_s": round(seconds, 3), "peak_GB": peak_memory_gb(device),
                            "finite": bool(torch.isfinite(out).all())}
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="toy sizes (a CPU check of the code paths)")
    parser.add_argument("--only", nargs="+", default=None, help="run only these sections")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.tiny:  # `make bench` on a machine without a GPU: say so, fail nothing
        print(json.dumps({"skipped": "needs a CUDA GPU (--tiny runs the same code paths at toy sizes on the CPU)"}))
        return
    dtype = torch.bfloat16
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "dtype": "bfloat16"}
    frames, height, width = (9, 64, 64) if args.tiny else (33, 704, 1280)
    sections = {f"tokenizer_{name}": (tokenizer_smoke, (name, frames, height, width, device, dtype))
                for name in ("CV8x8x8", "DV8x16x16")}
    sections.update({f"ar_{variant}": (ar_smoke, (variant, device, dtype, args.tiny))
                     for variant in ("4B", "5B-Video2World")})
    sections["nano_ar_pipeline"] = (nano_ar_pipeline_smoke, (device,))
    sections["ar_static_compile"] = (ar_static_compile, (device, dtype, args.tiny))
    sections["post_trained_dits"] = (post_trained_dits, (device, dtype, args.tiny))
    unknown = sorted(set(args.only or []) - set(sections))
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; choose from {sorted(sections)}")
    for section, (fn, fn_args) in sections.items():
        if args.only and section not in args.only:
            continue
        try:
            report[section] = fn(*fn_args)
        except torch.cuda.OutOfMemoryError as error:  # a finding, not a crash: the other sections still run
            report[section] = {"error": f"out of GPU memory: {str(error).splitlines()[0]}"}
        except Exception as error:  # any other failure is recorded too, so one section cannot sink the run
            first_line = str(error).splitlines()[0][:500] if str(error) else ""
            report[section] = {"error": f"{type(error).__name__}: {first_line}"}
        reset_peak(device)
        print(json.dumps({section: report[section]}), file=sys.stderr, flush=True)  # survives a timeout
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
