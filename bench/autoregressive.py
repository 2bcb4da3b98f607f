"""Benchmark of the autoregressive WFM on the CPU; prints one JSON object, every comparison a ratio within this run.

    .venv/bin/python bench/autoregressive.py            # ~1-3 minutes on 2 cores
    .venv/bin/python bench/autoregressive.py --quick    # smaller model, fewer steps

Measured (random weights, sizes in the JSON):
- KV-cache decoding vs recomputing the whole prefix every step (generate(use_cache=True/False));
- bfloat16 vs float32 prefill;
- Medusa: heads self-distilled on the frozen model's own greedy continuations of 8 prompts, then greedy Medusa
  decoding vs plain greedy decoding (same tokens? tokens per forward pass, wall time) on 2 of those prompts and on
  2 unseen prompts;
- parity with the reference fixtures (max |logit difference|), when /work/shared/fixtures/reference exists.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import DynamicCache

from cosmos_hf import CosmosARConfig, CosmosARForCausalLM
from cosmos_hf.autoregressive.medusa import init_medusa_heads_from_lm_head, medusa_generate
from cosmos_hf.autoregressive.modeling_cosmos_ar import compute_medusa_loss


def timed(fn, repeats=1):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
    report = {"model": {**size, "latent_shape": config.latent_shape, "vocab_size": config.vocab_size,
                        "parameters_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                        "threads": args.threads}}

    prompt_len, new_tokens = 64, (48 if args.quick else 128)
    prompts = torch.randint(0, config.vocab_size, (12, prompt_len), generator=torch.Generator().manual_seed(1))

    # 1. KV cache vs full recompute
    with torch.no_grad():
        t_cache, with_cache = timed(lambda: model.generate(prompts[:1], max_new_tokens=new_tokens, do_sample=False))
        t_full, without = timed(
            lambda: model.generate(prompts[:1], max_new_tokens=new_tokens, do_sample=False, use_cache=False)
        )
    report["kv_cache"] = {
        "new_tokens": new_tokens,
        "tokens_per_s_cache": round(new_tokens / t_cache, 1),
        "tokens_per_s_no_cache": round(new_tokens / t_full, 1),
        "speedup": round(t_full / t_cache, 2),
        "same_tokens": bool(torch.equal(with_cache, without)),
    }

    # incremental (cached) logits vs one full forward over the same 96 tokens
    with torch.no_grad():
        sequence = with_cache[:, :96]
        full = model(sequence, use_cache=False).logits
        cache = DynamicCache()
        steps = [model(sequence[:, :prompt_len], cache=cache).logits]
        steps += [model(sequence[:, i : i + 1], cache=cache).logits for i in range(prompt_len, 96)]
    report["kv_cache"]["max_abs_logit_diff_cached_vs_full"] = float((torch.cat(steps, 1) - full).abs().max())

    # 2. bf16 vs fp32 prefill (full 256-token grid, batch 4)
    grid = torch.randint(0, config.vocab_size, (4, config.num_video_tokens), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        t32, logits32 = timed(lambda: model(grid, use_cache=False).logits, repeats=3)
        model_bf16 = CosmosARForCausalLM(config).eval()
        model_bf16.load_state_dict(model.state_dict())
        model_bf16.to(torch.bfloat16)
        t16, logits16 = timed(lambda: model_bf16(grid, use_cache=False).logits, repeats=3)
    report["bf16_prefill"] = {
        "tokens": int(grid.numel()),
        "seconds_fp32": round(t32, 4),
        "seconds_bf16": round(t16, 4),
        "speedup": round(t32 / t16, 2),
        "max_abs_logit_diff": round(float((logits16.float() - logits32).abs().max()), 4),
        "argmax_agreement": round(float((logits16.argmax(-1) == logits32.argmax(-1)).float().mean()), 4),
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
        "distilled_prompts": compare_medusa(model, train_prompts[:2], new_tokens),
        # unseen prompts: a random-weight base model's continuations carry nothing the heads could generalise
        "held_out_prompts": compare_medusa(model, test_prompts[:2], new_tokens),
    }
    report["reference_parity"] = reference_parity()
    print(json.dumps(report, indent=2))


def compare_medusa(model, prompts, new_tokens):
    """Greedy Medusa vs plain greedy generate() on each prompt: same tokens? forward passes, wall time."""
    plain_time = medusa_time = 0.0
    passes, identical = 0, True
    with torch.no_grad():
        for prompt in prompts:
            prompt = prompt[None]
            t_plain, plain = timed(lambda: model.generate(prompt, max_new_tokens=new_tokens, do_sample=False))
            t_medusa, medusa = timed(lambda: medusa_generate(model, prompt, new_tokens))
            plain_time, medusa_time = plain_time + t_plain, medusa_time + t_medusa
            passes += medusa.num_forward_passes
            identical &= bool(torch.equal(plain, medusa.sequences))
    return {
        "prompts": len(prompts),
        "identical_to_greedy": identical,
        "tokens_per_forward": round(new_tokens * len(prompts) / passes, 2),
        "wall_time_speedup": round(plain_time / medusa_time, 2),
    }


def reference_parity(root=Path("/work/shared/fixtures/reference")):
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
