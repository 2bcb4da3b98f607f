"""Medusa speculative decoding for `CosmosARForCausalLM` (Cai et al., 2024, "Medusa").

`config.medusa_num_heads = K` adds K heads on the final hidden state; head k (1-based) at position t guesses the
token at t + 1 + k. One decoding step feeds the base model's next token plus a *tree* of guessed continuations,
verifies all of them in a single forward with the KV cache (each candidate attends only to its own ancestors: tree
attention, positions by depth), keeps the longest accepted path and drops the cache entries of everything else:

- greedy (`do_sample=False`): a guess is accepted only if it equals the base model's argmax at its parent, so the
  output is exactly plain greedy decoding, in fewer forward passes when the guesses are good;
- sampling (`do_sample=True`): the base token is sampled (temperature / top-k / top-p) and guesses pass *typical
  acceptance*: accepted when `p(guess) > min(epsilon, delta * exp(-entropy(p)))` under the base distribution at that
  position (epsilon, delta > 0).

The candidate tree is the union of these paths (shared prefixes verified once):

- the heads' top-1 chain (the paper's plain Medusa); `head_top_k > 1` adds a branch for each of the first head's
  next-best tokens, continued by the other heads' top-1 (the first level of the paper's sparse trees);
- `temporal_candidates=n`: the next n tokens' counterparts at the same (h, w) one latent frame earlier. Video
  tokens of a mostly static scene repeat from frame to frame, so this free draft (no head involved, like
  prompt-lookup decoding) is often right where the heads are not. It is not in the reference or the paper; it
  changes speed, never the greedy output.

The reference code base configures 7 heads with 1 residual layer (`medusa_num_heads=7, medusa_num_layers=1`) but
ships no Medusa implementation; this one is written from the paper (batch 1).
"""

import math
import numbers
from dataclasses import dataclass

import torch
from transformers import DynamicCache, StaticCache
from transformers.cache_utils import Cache
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper


@dataclass
class MedusaOutput:
    sequences: torch.LongTensor  # [1, prompt + new]
    num_forward_passes: int  # verification passes after the prefill
    accepted_per_step: list  # guesses accepted at each step (0..K)
    tree_sizes: list  # tokens fed to each verification pass (the base token plus the distinct candidates)

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


def _sampling_probs(logits: torch.Tensor, temperature: float, top_p: float | None,
                    top_k: int | None = None) -> torch.Tensor:
    """Next-token distribution `[V]` after temperature and transformers' top-k and nucleus (top-p) filters, in
    `generate()`'s order."""
    scores = logits.float()[None] / temperature
    if top_k:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p is not None and top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(None, scores)  # the warper never reads input_ids
    return torch.softmax(scores[0], dim=-1)


def candidate_tree(root: int, paths: list[list[int]]):
    """Trie of candidate `paths` below the `root` token: (tokens, parents, depths, children), node 0 = root.

    Sibling tokens are distinct, so at most one child of a node can equal the base model's greedy choice.
    """
    tokens, parents, depths, children = [root], [-1], [0], [{}]
    for path in paths:
        node = 0
        for token in path:
            child = children[node].get(token)
            if child is None:
                child = len(tokens)
                tokens.append(token)
                parents.append(node)
                depths.append(depths[node] + 1)
                children.append({})
                children[node][token] = child
            node = child
    return tokens, parents, depths, children


def tree_attention_mask(parents: list[int], past: int, device=None) -> torch.Tensor:
    """`[1, 1, N, past + N]` boolean: every node sees the whole cache, itself and its ancestors."""
    allowed = torch.zeros(len(parents), past + len(parents), dtype=torch.bool)
    allowed[:, :past] = True
    for node in range(len(parents)):
        ancestor = node
        while ancestor >= 0:
            allowed[node, past + ancestor] = True
            ancestor = parents[ancestor]
    return allowed[None, None].to(device)


def _keep_cache_entries(cache: Cache, past: int, keep: list[int]) -> None:
    """Keep the first `past` cached positions plus tree nodes `keep` (ascending) of the last verification pass.

    The kept nodes' keys/values are copied in place to cache positions `past, past + 1, ...` and the rest is cropped,
    so this works on a `DynamicCache` and on a preallocated `StaticCache` (whose buffers must keep their address for
    compiled steps) alike."""
    total = int(cache.get_seq_length())
    if keep != list(range(len(keep))):  # not a prefix of the fed tokens (never so for a chain): move them first
        device = cache.layers[0].keys.device
        source = torch.tensor([past + node for node in keep], device=device)
        target = torch.arange(past, past + len(keep), device=device)
        for layer in cache.layers:
            layer.keys.index_copy_(2, target, layer.keys.index_select(2, source))
            layer.values.index_copy_(2, target, layer.values.index_select(2, source))
    if total > past + len(keep):
        cache.crop(past + len(keep) - total)  # negative = remove that many from the end


def add_previous_frame_logit_bias(logits: torch.Tensor, previous_tokens: list[int | None],
                                  bias: float) -> torch.Tensor:
    """`logits` [N, V] with `bias` added, in each row, to the logit of that row's `previous_tokens` entry: the token at
    the same (h, w) one latent frame earlier (None: the row predicts a token of the first latent frame, left as is).

    Greedy decoding then keeps the previous frame's token unless the model prefers another by more than `bias` in
    log-probability (a factor e^bias): a prior that nothing changes where the model is unsure. Not in the reference.
    """
    rows = [row for row, token in enumerate(previous_tokens) if token is not None]
    if bias == 0 or not rows:
        return logits
    logits = logits.clone()
    logits[rows, [previous_tokens[row] for row in rows]] += bias
    return logits


def check_candidate_sources(model, num_candidates: int | None = None, temporal_candidates: int = 0) -> None:
    """A candidate tree needs something to guess with: the model's heads, or, without heads, the previous latent
    frame's tokens alone (`temporal_candidates >= 1`, `num_candidates` None or 0)."""
    if model.medusa_heads is None and (num_candidates or temporal_candidates == 0):
        raise ValueError("this model has no Medusa heads (config.medusa_num_heads == 0): without heads, speculative "
                         "decoding needs temporal_candidates >= 1 and num_candidates None or 0 (the previous latent "
                         "frame's tokens are then the only candidates)")


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
    top_k: int | None = None,
    epsilon: float = 0.09,
    delta: float = 0.3,
    num_candidates: int | None = None,
    head_top_k: int = 1,
    temporal_candidates: int = 0,
    generator: torch.Generator | None = None,
    cache_implementation: str = "dynamic",
    previous_frame_logit_bias: float = 0.0,
) -> MedusaOutput:
    """Decode `max_new_tokens` tokens after `input_ids` ([1, L]) with Medusa speculation (see module docstring).

    `num_candidates` limits the heads used per step (default: all; 0 = none); `head_top_k` is the number of the first
    head's tokens branched on (1 = the plain chain); `temporal_candidates` is the length of the path copied from the
    previous latent frame (0 = none). A model without heads decodes with the temporal candidates alone.
    `top_k` (None = off) and `top_p` filter the sampled distribution as in `generate()`.
    `cache_implementation`: "dynamic" (`DynamicCache`) or "static" (a `StaticCache` preallocated for the prompt, the
    new tokens and the largest candidate tree). `previous_frame_logit_bias` is added to the base model's logit of the
    previous latent frame's token at every position (`add_previous_frame_logit_bias`) before a token is chosen or a
    guess verified, so greedy Medusa returns the greedy tokens of the biased model.
    """
    check_candidate_sources(model, num_candidates, temporal_candidates)
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(
            f"medusa_generate decodes one sequence at a time; input_ids must be [1, L], got {tuple(input_ids.shape)}"
        )
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if do_sample and temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 (None keeps every token), got {top_k!r}")
    for name, value in (("epsilon", epsilon), ("delta", delta)):
        # a threshold <= 0 accepts every guess with p > 0: the output would be the heads' guesses, not samples
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0 (typical acceptance: a guess is kept when "
                             f"p > min(epsilon, delta * exp(-entropy))), got {value!r}")
    vocab_size = model.config.vocab_size
    if not 1 <= head_top_k <= vocab_size:
        raise ValueError(f"head_top_k must be in [1, {vocab_size}] (the vocabulary size), got {head_top_k}")
    num_heads = 0 if model.medusa_heads is None else len(model.medusa_heads)
    if num_candidates is not None and num_candidates < 0:
        raise ValueError(
            f"num_candidates must be >= 0 (heads used per step, at most {num_heads}), got {num_candidates}"
        )
    num_candidates = num_heads if num_candidates is None else min(num_candidates, num_heads)
    if temporal_candidates < 0:
        raise ValueError(f"temporal_candidates must be >= 0 (tokens copied from the previous frame), got "
                         f"{temporal_candidates}")
    limit = model.model.position_tables.table_size
    if input_ids.shape[1] + max_new_tokens > limit:
        raise ValueError(
            f"prompt ({input_ids.shape[1]}) + max_new_tokens ({max_new_tokens}) exceeds the {limit} positions "
            f"of latent_shape {model.config.latent_shape}"
        )
    if isinstance(previous_frame_logit_bias, bool) or not isinstance(previous_frame_logit_bias, (int, float)) \
            or not math.isfinite(previous_frame_logit_bias):
        raise ValueError(
            f"previous_frame_logit_bias must be a finite number (0 = off), got {previous_frame_logit_bias!r}"
        )
    if cache_implementation not in ("dynamic", "static"):
        raise ValueError(f"cache_implementation must be 'dynamic' or 'static', got {cache_implementation!r}")
    text = dict(encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask)
    device = input_ids.device
    tokens_per_frame = model.config.latent_shape[1] * model.config.latent_shape[2]
    bov = model.config.bov_token_id
    video_start = 1 if bov is not None and int(input_ids[0, 0]) == bov else 0  # sequence index of video token 0

    def previous_frame_token(sequence: list[int], index: int) -> int | None:
        """The token one latent frame before sequence index `index` (None inside the first latent frame)."""
        return sequence[index - tokens_per_frame] if index - tokens_per_frame >= video_start else None

    def pick(logits: torch.Tensor) -> int:
        logits = add_previous_frame_logit_bias(
            logits[None], [previous_frame_token(tokens, len(tokens))], previous_frame_logit_bias)[0]
        if not do_sample:
            return int(logits.argmax())
        probs = _sampling_probs(logits, temperature, top_p, top_k)
        return int(torch.multinomial(probs, 1, generator=generator))

    def guesses_at(out, position: int) -> torch.Tensor | None:
        # heads only at the one position whose continuation is guessed next: [K, V]
        if num_candidates == 0:
            return None
        hidden = out.hidden_states[-1][0, position]
        return torch.stack([head(hidden) for head in model.medusa_heads[:num_candidates]])

    def candidate_paths(guess_logits: torch.Tensor | None, sequence: list[int], remaining: int) -> list[list[int]]:
        """Guessed continuations of `sequence` (which ends with the base token), none longer than `remaining`."""
        paths = []
        depth = min(num_candidates, remaining)
        if depth:
            chain = guess_logits[:depth].argmax(-1).tolist()
            paths.append(chain)
            if head_top_k > 1:
                for alternative in guess_logits[0].topk(head_top_k).indices[1:].tolist():
                    paths.append([alternative] + chain[1:])
        first = len(sequence)  # sequence index of the first guess; a copy must come from a known video token
        copies = min(temporal_candidates, remaining, tokens_per_frame)
        if copies and first - tokens_per_frame >= video_start:
            paths.append(sequence[first - tokens_per_frame : first - tokens_per_frame + copies])
        return paths

    def accepted_path(logits: torch.Tensor, tree) -> list[int]:
        """Nodes (root excluded) of the longest path whose every guess the base model accepts."""
        tree_tokens, parents, depths, children = tree
        if previous_frame_logit_bias:
            # node i holds sequence index past + depths[i]; its logits predict the token after it
            past, previous = len(tokens), []
            for node in range(len(tree_tokens)):
                index = past + depths[node] + 1 - tokens_per_frame  # one frame before the token node i predicts
                if index < past:
                    previous.append(tokens[index] if index >= video_start else None)
                    continue
                ancestor = node  # a tree deeper than a frame: the token is on node i's own branch
                for _ in range(past + depths[node] - index):
                    ancestor = parents[ancestor]
                previous.append(tree_tokens[ancestor])
            logits = add_previous_frame_logit_bias(logits, previous, previous_frame_logit_bias)
        if not do_sample:
            choice = logits.argmax(-1).tolist()
            path, node = [], 0
            while (child := children[node].get(choice[node])) is not None:
                path.append(child)
                node = child
            return path

        def longest(node: int) -> list[int]:
            best = []
            if children[node]:
                probs = _sampling_probs(logits[node], temperature, top_p, top_k)
                for token, child in children[node].items():
                    if typical_acceptance(probs, token, epsilon, delta):
                        below = [child] + longest(child)
                        best = below if len(below) > len(best) else best
            return best

        return longest(0)

    if cache_implementation == "static":
        # room for every accepted token plus the unaccepted nodes of the last (largest possible) tree
        largest_tree = 1 + num_candidates * head_top_k + min(temporal_candidates, tokens_per_frame)
        cache = StaticCache(config=model.config, max_cache_len=input_ids.shape[1] + max_new_tokens + largest_tree)
    else:
        cache = DynamicCache()
    out = model(input_ids, cache=cache, use_cache=True, output_hidden_states=True, logits_to_keep=1, **text)
    base_logits, guess_logits = out.logits[0, -1], guesses_at(out, -1)  # [V], [K, V]
    tokens = input_ids[0].tolist()
    target = len(tokens) + max_new_tokens
    accepted_per_step, tree_sizes = [], []
    while len(tokens) < target:
        next_token = pick(base_logits)
        if len(tokens) + 1 == target:  # the last token needs no verification pass
            tokens.append(next_token)
            break
        remaining = target - len(tokens) - 1  # tokens still to come after next_token
        tree = candidate_tree(next_token, candidate_paths(guess_logits, tokens + [next_token], remaining))
        tree_tokens, parents, depths, _ = tree
        past = len(tokens)
        out = model(
            torch.tensor([tree_tokens], device=device),
            attention_mask=tree_attention_mask(parents, past, device),
            position_ids=torch.tensor([depths], device=device) + past,
            cache=cache,
            use_cache=True,
            output_hidden_states=True,
            **text,
        )
        path = accepted_path(out.logits[0], tree)  # out.logits[0, i] is the base prediction after node i
        tokens += [next_token] + [tree_tokens[node] for node in path]
        _keep_cache_entries(cache, past, [0] + path)
        accepted_per_step.append(len(path))
        tree_sizes.append(len(tree_tokens))
        last = path[-1] if path else 0
        base_logits, guess_logits = out.logits[0, last], guesses_at(out, last)
    return MedusaOutput(
        sequences=torch.tensor([tokens], device=device),
        num_forward_passes=len(accepted_per_step),
        accepted_per_step=accepted_per_step,
        tree_sizes=tree_sizes,
    )


__all__ = [
    "medusa_generate",
    "add_previous_frame_logit_bias",
    "check_candidate_sources",
    "typical_acceptance",
    "init_medusa_heads_from_lm_head",
    "candidate_tree",
    "tree_attention_mask",
    "MedusaOutput",
]
