"""Medusa speculative decoding for `CosmosARForCausalLM` (Cai et al., 2024, "Medusa").

`config.medusa_num_heads = K` adds K heads on the final hidden state; head k (1-based) at position t guesses the
token at t + 1 + k. One decoding step feeds the base model's next token plus the heads' K guesses, verifies all of
them in a single forward with the KV cache, keeps the longest accepted prefix and crops the cache to it:

- greedy (`do_sample=False`): a guess is accepted only if it equals the base model's argmax at its position, so the
  output is exactly plain greedy decoding, in fewer forward passes when the heads guess well;
- sampling (`do_sample=True`): the base token is sampled (temperature / top-p) and guesses pass *typical acceptance*:
  accepted when `p(guess) > min(epsilon, delta * exp(-entropy(p)))` under the base distribution at that position.

The reference code base configures 7 heads with 1 residual layer (`medusa_num_heads=7, medusa_num_layers=1`) but
ships no Medusa implementation; this one is written from the paper (chain candidates, top-1 per head, batch 1).
"""

from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass
class MedusaOutput:
    sequences: torch.LongTensor  # [1, prompt + new]
    num_forward_passes: int  # verification passes after the prefill
    accepted_per_step: list  # guesses accepted at each step (0..K)

    @property
    def mean_tokens_per_step(self) -> float:
        """New tokens per verification pass (the base token plus the accepted guesses)."""
        return 1.0 + sum(self.accepted_per_step) / max(len(self.accepted_per_step), 1)


@torch.no_grad()
def init_medusa_heads_from_lm_head(model) -> None:
    """Medusa-1 initialisation: residual blocks at zero (identity) and each head's projection = the LM head."""
    if model.medusa_heads is None:
        raise ValueError("the model has no Medusa heads (config.medusa_num_heads == 0)")
    for head in model.medusa_heads:
        for block in head.blocks:
            block.weight.zero_()
        head.proj.weight.copy_(model.lm_head.weight)


def typical_acceptance(probs: torch.Tensor, token: int, epsilon: float = 0.09, delta: float = 0.3) -> bool:
    """Medusa's typical acceptance: accept `token` if `p(token) > min(epsilon, delta * exp(-H(p)))`."""
    entropy = -(probs * torch.log(probs.clamp_min(1e-20))).sum()
    return bool(probs[token] > min(epsilon, delta * float(torch.exp(-entropy))))


def _sampling_probs(logits: torch.Tensor, temperature: float, top_p: float | None) -> torch.Tensor:
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        # keep the smallest prefix whose mass reaches top_p (the top token always stays)
        drop = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum()
    return probs


@torch.no_grad()
def medusa_generate(
    model,
    input_ids: torch.LongTensor,
    max_new_tokens: int,
    *,
    encoder_hidden_states: torch.Tensor | None = None,
    encoder_attention_mask: torch.Tensor | None = None,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float | None = None,
    epsilon: float = 0.09,
    delta: float = 0.3,
    num_candidates: int | None = None,
    generator: torch.Generator | None = None,
) -> MedusaOutput:
    """Decode `max_new_tokens` tokens after `input_ids` ([1, L]) with Medusa speculation (see module docstring).

    `num_candidates` limits the guesses per step (default: all heads).
    """
    if model.medusa_heads is None:
        raise ValueError("medusa_generate needs a model with Medusa heads (config.medusa_num_heads > 0)")
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(
            f"medusa_generate decodes one sequence at a time; input_ids must be [1, L], got {tuple(input_ids.shape)}"
        )
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if do_sample and temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    num_heads = len(model.medusa_heads)
    num_candidates = num_heads if num_candidates is None else min(num_candidates, num_heads)
    limit = model.model.position_tables.table_size
    if input_ids.shape[1] + max_new_tokens > limit:
        raise ValueError(
            f"prompt ({input_ids.shape[1]}) + max_new_tokens ({max_new_tokens}) exceeds the {limit} positions "
            f"of latent_shape {model.config.latent_shape}"
        )
    text = dict(encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask)

    def pick(logits: torch.Tensor) -> int:
        if not do_sample:
            return int(logits.argmax())
        probs = _sampling_probs(logits, temperature, top_p)
        return int(torch.multinomial(probs, 1, generator=generator))

    def guesses_at(out, position: int) -> torch.Tensor:
        # heads only at the one position whose continuation is guessed next: [K, V]
        hidden = out.hidden_states[-1][0, position]
        return torch.stack([head(hidden) for head in model.medusa_heads[:num_candidates]])

    cache = DynamicCache()
    out = model(input_ids, cache=cache, use_cache=True, output_hidden_states=True, logits_to_keep=1, **text)
    base_logits, guess_logits = out.logits[0, -1], guesses_at(out, -1)  # [V], [K, V]
    tokens = input_ids[0].tolist()
    target = len(tokens) + max_new_tokens
    accepted_per_step = []
    while len(tokens) < target:
        next_token = pick(base_logits)
        if len(tokens) + 1 == target:  # the last token needs no verification pass
            tokens.append(next_token)
            break
        guesses = guess_logits[: min(num_candidates, target - len(tokens) - 1)].argmax(-1).tolist()
        step_input = torch.tensor([[next_token] + guesses], device=input_ids.device)
        out = model(step_input, cache=cache, use_cache=True, output_hidden_states=True, **text)
        accepted = 0
        for i, guess in enumerate(guesses):  # out.logits[0, i] is the base prediction for guesses[i]
            if do_sample:
                ok = typical_acceptance(_sampling_probs(out.logits[0, i], temperature, top_p), guess, epsilon, delta)
            else:
                ok = int(out.logits[0, i].argmax()) == guess
            if not ok:
                break
            accepted += 1
        tokens += [next_token] + guesses[:accepted]
        rejected = cache.get_seq_length() - len(tokens)
        if rejected:
            cache.crop(-rejected)  # drop the K/V of rejected guesses (negative = remove that many)
        accepted_per_step.append(accepted)
        base_logits, guess_logits = out.logits[0, accepted], guesses_at(out, accepted)
    return MedusaOutput(
        sequences=torch.tensor([tokens], device=input_ids.device),
        num_forward_passes=len(accepted_per_step),
        accepted_per_step=accepted_per_step,
    )


__all__ = ["medusa_generate", "typical_acceptance", "init_medusa_heads_from_lm_head", "MedusaOutput"]
