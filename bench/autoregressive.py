"""Benchmark of the autoregressive WFM on the CPU; prints one JSON object, every comparison a ratio within this run.

    .venv/bin/python bench/autoregressive.py            # several minutes on 2 cores (1-2 of them compiling)
    .venv/bin/python bench/autoregressive.py --quick    # smaller model, fewer steps
    .venv/bin/python bench/autoregressive.py --cache_comparison_only   # dynamic vs static vs compiled decoding

Every timed comparison is the median of `--repeats` (>= 5) interleaved runs of its candidates after a warm-up
(bench/timing.py), next to the machine's load and CPU flags; `long_context_decoding` times one pass of its per-token
loops. Measured (random weights, sizes in the JSON):
- KV-cache decoding vs recomputing the whole prefix every step (generate(use_cache=True/False));
- bfloat16 vs float32 prefill;
- Medusa: heads self-distilled on the frozen model's own greedy continuations of 8 prompts, then greedy Medusa
  decoding vs plain greedy decoding (same tokens? tokens per forward pass, wall time) on 2 of those prompts and on
  2 unseen prompts;
- parity with the reference fixtures (max |logit difference|), when ../shared/fixtures/reference exists;
- decoding throughput at a long context (512 and 2048 tokens already in the sequence): tokens/s with the KV cache
  vs recomputing the prefix for every new token (issue target: >= 10x at 2048), and the KV-cache memory (measured
  bytes of the DynamicCache vs the formula, and the formula for the released 4B model's full 12,800-token grid);
- KV-cache implementations side by side on the bundled nano AR model (pipelines/cosmos-nano-ar-video2world/ar_model,
  batch 1, greedy from a one-latent-frame prompt to the full grid): `generate()` with the dynamic cache (eager),
  with a preallocated static cache (eager), and with the static cache plus the `torch.compile`d one-token step
  (the reference's default decoding); tokens/s as the median of `--repeats` interleaved runs, compile time apart,
  tokens identical to the dynamic cache. `--cache_comparison_only` runs just this section.
- `--model <folder>`: Medusa vs plain greedy on a trained model with heads (e.g. the nano AR checkpoint from
  training/train_autoregressive.py --medusa), prompts from `--prompts <token_cache.safetensors>` or held-out clips
  (`--held_out_tokenizer`), for each candidate tree in MEDUSA_TREES (the heads' chain, a top-2 tree, the previous
  latent frame alone, heads + previous frame): identical tokens, mean acceptance length (tokens per verification
  pass), tree size and wall-time speedup (issue target >= 2.0x; the paper reports 444 -> 894 tokens/s).
"""

from pathlib import Path


import argparse
import json
import sys
import time

import statistics

import torch
from timing import finish_report, interleaved, machine_header, positive_repeats, speedup
from transformers import CompileConfig, DynamicCache

from cosmos_hf import CosmosARConfig, CosmosARForCausalLM
from cosmos_hf.autoregressive.medusa import init_medusa_heads_from_lm_head, medusa_generate
from cosmos_hf.autoregressive.modeling_cosmos_ar import compute_medusa_loss


def interleaved_with_outputs(candidates: dict, repeats: int):
    """`timing.interleaved` over zero-argument callables that also keeps each candidate's last output."""
    outputs = {}

    def keep(name, fn):
        def run():
            outputs[name] = fn()
        return run

    timings = interleaved({name: keep(name, fn) for name, fn in candidates.items()}, repeats=repeats)
    return timings, outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None, help="trained CosmosARForCausalLM folder with Medusa heads")
    parser.add_argument("--prompts", default=None, help="token_cache.safetensors of its training run (prompts)")
    parser.add_argument("--held_out_tokenizer", default=None,
                        help="instead of --prompts: DV tokenizer folder; prompts from held-out simulator clips")
    parser.add_argument("--prompt_latent_frames", type=int, default=1, help="latent frames given as the prompt")
    parser.add_argument("--num_prompts", type=int, default=8, help="prompts for --model (held-out: views cycle 0-3)")
    parser.add_argument("--skip_random", action="store_true", help="only the --model section")
    parser.add_argument("--cache_comparison_only", action="store_true",
                        help="only the dynamic vs static vs static + torch.compile decoding section")
    parser.add_argument("--cache_model", default=str(NANO_AR_MODEL), help="model folder for the cache comparison")
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved timed runs of every comparison after a warm-up (>= 5)")
    parser.add_argument("--new_tokens", type=int, default=None,
                        help="tokens decoded in the cache comparison (default: fill the latent grid)")
    args = parser.parse_args()
    positive_repeats(parser, args.repeats)
    torch.set_num_threads(args.threads)
    header = {"benchmark": "autoregressive", "command": " ".join(["bench/autoregressive.py", *sys.argv[1:]]),
              "machine": machine_header(), "repeats": args.repeats,
              "statistic": "median over repeats, compared candidates interleaved"}
    if args.cache_comparison_only:
        print(json.dumps(finish_report({**header, "decoding_cache_comparison": decoding_cache_comparison(
            args.cache_model, args.repeats, args.new_tokens)}), indent=2))
        return
    if args.skip_random:
        print(json.dumps(finish_report({**header, "trained_model_medusa": trained_model_medusa(args)}), indent=2))
        return
    torch.manual_seed(0)

    size = dict(hidden_size=128, num_hidden_layers=2) if args.quick else dict(hidden_size=256, num_hidden_layers=4)
    config = CosmosARConfig(
        vocab_size=1024,
        intermediate_size=size["hidden_size"] * 3,
        num_attention_heads=4,
        num_key_value_heads=2,
        latent_shape=[4, 8, 8],
        medusa_num_heads=4,
        medusa_num_layers=1,
        initializer_range=0.05,
        **size,
    )
    model = CosmosARForCausalLM(config).eval()
    init_medusa_heads_from_lm_head(model)
    report = {**header, "model": {**size, "latent_shape": config.latent_shape, "vocab_size": config.vocab_size,
                        "parameters_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                        "threads": args.threads}}

    prompt_len, new_tokens = 64, (48 if args.quick else 128)
    prompts = torch.randint(0, config.vocab_size, (12, prompt_len), generator=torch.Generator().manual_seed(1))

    # 1. KV cache vs full recompute (interleaved)
    with torch.no_grad():
        timings, outputs = interleaved_with_outputs({
            "cache": lambda: model.generate(prompts[:1], max_new_tokens=new_tokens, do_sample=False),
            "no_cache": lambda: model.generate(prompts[:1], max_new_tokens=new_tokens, do_sample=False,
                                               use_cache=False)}, args.repeats)
    with_cache, without = outputs["cache"], outputs["no_cache"]
    report["kv_cache"] = {
        "new_tokens": new_tokens,
        "tokens_per_s_cache": round(new_tokens / timings["cache"]["median_s"], 1),
        "tokens_per_s_no_cache": round(new_tokens / timings["no_cache"]["median_s"], 1),
        "speedup": speedup(timings["no_cache"], timings["cache"]),
        "same_tokens": bool(torch.equal(with_cache, without)),
        "timings": timings,
    }

    # incremental (cached) logits vs one full forward over the same 96 tokens
    with torch.no_grad():
        sequence = with_cache[:, :96]
        full = model(sequence, use_cache=False).logits
        cache = DynamicCache()
        steps = [model(sequence[:, :prompt_len], cache=cache).logits]
        steps += [model(sequence[:, i : i + 1], cache=cache).logits for i in range(prompt_len, 96)]
    report["kv_cache"]["max_abs_logit_diff_cached_vs_full"] = float((torch.cat(steps, 1) - full).abs().max())

    # 2. bf16 vs fp32 prefill (full 256-token grid, batch 4; interleaved)
    grid = torch.randint(0, config.vocab_size, (4, config.num_video_tokens), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        model_bf16 = CosmosARForCausalLM(config).eval()
        model_bf16.load_state_dict(model.state_dict())
        model_bf16.to(torch.bfloat16)
        timings, outputs = interleaved_with_outputs({
            "fp32": lambda: model(grid, use_cache=False).logits,
            "bf16": lambda: model_bf16(grid, use_cache=False).logits}, args.repeats)
    logits32, logits16 = outputs["fp32"], outputs["bf16"]
    report["bf16_prefill"] = {
        "tokens": int(grid.numel()),
        "seconds_fp32": round(timings["fp32"]["median_s"], 4),
        "seconds_bf16": round(timings["bf16"]["median_s"], 4),
        "speedup": speedup(timings["fp32"], timings["bf16"]),
        "max_abs_logit_diff": round(float((logits16.float() - logits32).abs().max()), 4),
        "argmax_agreement": round(float((logits16.argmax(-1) == logits32.argmax(-1)).float().mean()), 4),
        "timings": timings,
    }

    # 3. Medusa: self-distil the heads on the frozen model's greedy continuations (Medusa-1: backbone frozen, so
    #    its final hidden states are computed once), then decode held-out prompts greedily with and without heads.
    train_prompts, test_prompts = prompts[:8], prompts[8:]
    with torch.no_grad():
        targets = model.generate(train_prompts, max_new_tokens=new_tokens, do_sample=False)
        hidden = model.model(targets, use_cache=False).last_hidden_state
    labels = targets.clone()
    labels[:, : prompt_len - 1] = -100
    optimizer = torch.optim.AdamW(model.medusa_heads.parameters(), lr=3e-3)
    steps = 60 if args.quick else 200
    start = time.perf_counter()
    for _ in range(steps):
        loss = compute_medusa_loss(torch.stack([head(hidden) for head in model.medusa_heads]), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train_seconds = time.perf_counter() - start

    report["medusa"] = {
        "heads": config.medusa_num_heads,
        "distillation_steps": steps,
        "distillation_seconds": round(train_seconds, 1),
        "final_medusa_loss": round(float(loss.detach()), 3),
        # prompts whose continuations the heads were distilled on: the heads can guess well
        "distilled_prompts": compare_medusa(model, train_prompts[:2], new_tokens, repeats=args.repeats),
        # unseen prompts: a random-weight base model's continuations carry nothing the heads could generalise
        "held_out_prompts": compare_medusa(model, test_prompts[:2], new_tokens, repeats=args.repeats),
    }
    report["reference_parity"] = reference_parity()
    report["long_context_decoding"] = long_context_decoding(size, contexts=(512, 2048))
    report["decoding_cache_comparison"] = decoding_cache_comparison(args.cache_model, args.repeats, args.new_tokens)
    if args.model:
        report["trained_model_medusa"] = trained_model_medusa(args)
    print(json.dumps(finish_report(report), indent=2))


NANO_AR_MODEL = Path(__file__).resolve().parents[1] / "pipelines" / "cosmos-nano-ar-video2world" / "ar_model"


def decoding_cache_comparison(model_folder, repeats=5, new_tokens=None, compile_mode="default"):
    """Greedy `generate()` at batch 1: dynamic cache vs static cache vs static cache + compiled decoding step.

    Each repeat times the three back to back (interleaved), so a drifting machine load hits all alike; tokens/s is
    the median over repeats. The compiled variant's first call (the compilation) is timed separately. On a CPU
    transformers compiles only when told (`CompileConfig._compile_all_devices`); "default" is inductor without CUDA
    graphs, which a CPU cannot use anyway."""
    model = CosmosARForCausalLM.from_pretrained(model_folder).eval()
    grid = model.config.latent_shape
    per_frame = grid[1] * grid[2]
    prompt = torch.randint(0, model.config.vocab_size, (1, per_frame), generator=torch.Generator().manual_seed(0))
    if model.config.bov_token_id is not None:
        prompt = torch.cat([torch.tensor([[model.config.bov_token_id]]), prompt], dim=1)
    new_tokens = new_tokens or model.config.num_video_tokens - per_frame
    compile_config = CompileConfig(fullgraph=True, dynamic=False, mode=compile_mode)
    compile_config._compile_all_devices = True
    variants = {
        "dynamic_cache_eager": dict(),
        # disable_compile: on an accelerator transformers would otherwise compile a static-cache step by itself
        "static_cache_eager": dict(cache_implementation="static", disable_compile=True),
        "static_cache_compiled": dict(cache_implementation="static", compile_config=compile_config),
    }

    def run(kwargs):
        start = time.perf_counter()
        tokens = model.generate(prompt, max_new_tokens=new_tokens, do_sample=False, **kwargs)
        return time.perf_counter() - start, tokens

    result = {"model": str(model_folder), "batch": 1, "prompt_tokens": int(prompt.shape[1]), "new_tokens": new_tokens,
              "threads": torch.get_num_threads(), "repeats": repeats, "compile_mode": compile_mode}
    outputs, seconds = {}, {name: [] for name in variants}
    with torch.no_grad():
        for name, kwargs in variants.items():  # warm-up; for the compiled variant this is the compilation
            elapsed, outputs[name] = run(kwargs)
            if name == "static_cache_compiled":
                result["compile_and_first_run_s"] = round(elapsed, 1)
        for _ in range(repeats):
            for name, kwargs in variants.items():
                elapsed, tokens = run(kwargs)
                seconds[name].append(elapsed)
                outputs[name] = tokens
    eager = statistics.median(seconds["dynamic_cache_eager"])
    for name in variants:
        median = statistics.median(seconds[name])
        result[name] = {
            "tokens_per_s_median": round(new_tokens / median, 1),
            "tokens_per_s_range": [round(new_tokens / max(seconds[name]), 1),
                                   round(new_tokens / min(seconds[name]), 1)],
            "speedup_vs_dynamic_eager": round(eager / median, 2),
            "same_tokens_as_dynamic": bool(torch.equal(outputs[name], outputs["dynamic_cache_eager"])),
        }
    return result


def kv_cache_bytes(config, tokens: int, bytes_per_value: int) -> int:
    """Keys + values of every layer: 2 * layers * kv_heads * head_dim * tokens * bytes."""
    return 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * tokens * bytes_per_value


def long_context_decoding(size, contexts=(512, 2048), cached_tokens=32, uncached_tokens=3):
    """Per-token decoding speed with `context` tokens already in the sequence, with and without the KV cache.

    With the cache each new token is one 1-token forward over the cached keys/values; without it (what
    `generate(use_cache=False)` does) every new token recomputes the whole prefix. Both decode greedily from the
    same prefix; the tokens are compared.
    """
    config = CosmosARConfig(vocab_size=1024, intermediate_size=size["hidden_size"] * 3, num_attention_heads=4,
                            num_key_value_heads=2, latent_shape=[9, 16, 16], initializer_range=0.05, **size)
    torch.manual_seed(0)
    model = CosmosARForCausalLM(config).eval()
    result = {"model": {**size, "latent_shape": config.latent_shape}}
    for context in contexts:
        prefix = torch.randint(0, config.vocab_size, (1, context), generator=torch.Generator().manual_seed(context))
        with torch.no_grad():
            cache = DynamicCache()
            out = model(prefix, cache=cache, logits_to_keep=1)
            cached, start = [], time.perf_counter()
            for _ in range(cached_tokens):
                token = out.logits[:, -1].argmax(-1, keepdim=True)
                cached.append(token)
                out = model(token, cache=cache)
            t_cached = time.perf_counter() - start
            measured_bytes = sum(layer.keys.numel() * layer.keys.element_size() +
                                 layer.values.numel() * layer.values.element_size() for layer in cache.layers)
            sequence, uncached, start = prefix, [], time.perf_counter()
            for _ in range(uncached_tokens):
                token = model(sequence, use_cache=False, logits_to_keep=1).logits[:, -1].argmax(-1, keepdim=True)
                uncached.append(token)
                sequence = torch.cat([sequence, token], dim=1)
            t_uncached = time.perf_counter() - start
        with_cache = cached_tokens / t_cached
        without_cache = uncached_tokens / t_uncached
        result[f"context_{context}"] = {
            "tokens_per_s_cache": round(with_cache, 1),
            "tokens_per_s_no_cache": round(without_cache, 2),
            "speedup": round(with_cache / without_cache, 1),
            "same_tokens": bool(torch.equal(torch.cat(cached[:uncached_tokens], 1), torch.cat(uncached, 1))),
            "kv_cache_MB_measured": round(measured_bytes / 2**20, 2),
            "kv_cache_MB_formula_fp32": round(kv_cache_bytes(config, context + cached_tokens, 4) / 2**20, 2),
        }
    full_4b = CosmosARConfig.from_variant("4B")
    result["released_4B_full_grid_kv_cache_GB_bf16"] = round(
        kv_cache_bytes(full_4b, full_4b.num_video_tokens, 2) / 2**30, 3)
    return result


def trained_model_medusa(args):
    """Greedy Medusa vs plain greedy on a trained model with heads and real DV-token prompts."""
    from safetensors.torch import load_file

    model = CosmosARForCausalLM.from_pretrained(args.model).eval()
    if model.medusa_heads is None:
        raise ValueError(f"{args.model} has no Medusa heads (train with training/train_autoregressive.py --medusa)")
    grid = model.config.latent_shape
    per_frame = grid[1] * grid[2]
    if bool(args.prompts) == bool(args.held_out_tokenizer):
        raise ValueError("--model needs exactly one of --prompts (the token_cache.safetensors of a training run) or "
                         "--held_out_tokenizer (the DV tokenizer folder: prompts from held-out simulator clips)")
    if args.prompts:
        tokens = load_file(args.prompts)["tokens"][: args.num_prompts]
        source = "training-set clips (token cache)"
    else:
        tokens = held_out_tokens(args.held_out_tokenizer, grid, count=args.num_prompts)
        source = "held-out simulator clips, camera views cycling 0-3"
    tokens = tokens.reshape(len(tokens), -1)
    prompt_len = args.prompt_latent_frames * per_frame
    prompts = tokens[:, :prompt_len]
    if model.config.bov_token_id is not None:
        prompts = torch.cat([torch.full((len(prompts), 1), model.config.bov_token_id), prompts], dim=1)
    new_tokens = model.config.num_video_tokens - prompt_len
    return {"model": str(args.model), "prompt_source": source, "prompt_tokens": prompt_len, "new_tokens": new_tokens,
            "heads": model.config.medusa_num_heads, "threads": torch.get_num_threads(),
            **compare_medusa(model, prompts, new_tokens, MEDUSA_TREES, repeats=args.repeats)}


def held_out_tokens(tokenizer_folder, grid, count):
    """DV tokens of `count` physics-world clips with held-out seeds (0..; the nano runs train on seeds 1000+), camera
    views cycling 0-3."""
    from cosmos_hf import sim
    from cosmos_hf.data import frames_to_tensor
    from cosmos_hf.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_folder).eval()
    frames = 1 + (grid[0] - 1) * tokenizer.config.temporal_compression
    size = grid[1] * tokenizer.config.spatial_compression
    clips = [sim.simulate(sim.SCENES[i % len(sim.SCENES)], seed=i, num_frames=frames, height=size, width=size,
                          view=i % 4, fps=12).video for i in range(count)]
    with torch.no_grad():
        return torch.cat([tokenizer.tokenize(frames_to_tensor(clip)) for clip in clips])


# Candidate trees compared on a trained model (medusa_generate arguments); greedy output is identical for all.
MEDUSA_TREES = {
    "heads_chain": {},  # the paper's Medusa: top-1 of every head
    "heads_top2_tree": dict(head_top_k=2),  # + the first head's second-best token
    "previous_frame_16": dict(num_candidates=0, temporal_candidates=16),  # no heads: copy the previous latent frame
    "heads_chain_and_previous_frame_16": dict(temporal_candidates=16),  # the pipeline default
}


def compare_medusa(model, prompts, new_tokens, trees=None, repeats=5):
    """Greedy Medusa vs plain greedy generate() on each prompt, per candidate tree: same tokens? tokens per forward
    pass (= mean acceptance length), wall time. `trees` defaults to the plain chain. Per prompt, plain decoding and
    every tree run interleaved `repeats` times after a warm-up (bench/timing.py); times are sums of medians."""
    trees = trees or {"heads_chain": {}}
    plain_time = 0.0
    stats = {name: {"time": 0.0, "passes": 0, "fed": 0, "identical": True} for name in trees}
    with torch.no_grad():
        for prompt in prompts:
            candidates = {"plain": lambda: model.generate(prompt[None], max_new_tokens=new_tokens, do_sample=False)}
            for name, kwargs in trees.items():
                candidates[name] = lambda kwargs=kwargs: medusa_generate(model, prompt[None], new_tokens, **kwargs)
            timings, outputs = interleaved_with_outputs(candidates, repeats)
            plain_time += timings["plain"]["median_s"]
            for name in trees:
                medusa = outputs[name]
                stats[name]["time"] += timings[name]["median_s"]
                stats[name]["passes"] += medusa.num_forward_passes
                stats[name]["fed"] += sum(medusa.tree_sizes)
                stats[name]["identical"] &= bool(torch.equal(outputs["plain"], medusa.sequences))
    total = new_tokens * len(prompts)
    result = {"prompts": len(prompts), "tokens_per_s_plain": round(total / plain_time, 1)}
    for name, kwargs in trees.items():
        row = stats[name]
        result[name] = {
            "medusa_generate_kwargs": kwargs,
            "identical_to_greedy": row["identical"],
            "tokens_per_forward": round(total / row["passes"], 2),  # = mean acceptance length
            "tokens_fed_per_forward": round(row["fed"] / row["passes"], 1),  # tree size
            "tokens_per_s": round(total / row["time"], 1),
            "wall_time_speedup": round(plain_time / row["time"], 2),
        }
    if len(trees) == 1:  # the random-weight section: one tree, flat
        return {"prompts": result["prompts"], "tokens_per_s_plain": result["tokens_per_s_plain"],
                **result[next(iter(trees))]}
    return result


def reference_parity(root=Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "reference"):
    """Max |logits - reference| on the shared fixture cases (converter path), or a note when they are absent."""
    if not (root / "ar_base").is_dir():
        return "fixtures not found"
    from safetensors.torch import load_file

    from cosmos_hf import convert_ar_checkpoint

    result = {}
    for case in ("ar_base", "ar_video2world", "ar_yarn"):
        config = json.loads((root / case / "config.json").read_text())["constructor_kwargs"]
        for table_dtype in ("float32", "bfloat16") if case == "ar_video2world" else ("float32",):
            model = convert_ar_checkpoint(
                root / case / "state_dict.safetensors", reference_config=config, abs_pos_emb_dtype=table_dtype
            )
            io = load_file(str(root / case / "io.safetensors"))
            text = {}
            if "context" in io:
                text = dict(encoder_hidden_states=io["context"], encoder_attention_mask=io["context_mask"])
            with torch.no_grad():
                logits = model(io["tokens"], use_cache=False, **text).logits
            name = case if table_dtype == "float32" else f"{case} (abs_pos_emb_dtype=bfloat16)"
            result[name] = float((logits - io["logits"]).abs().max())
    return result


if __name__ == "__main__":
    main()
