"""Medusa heads: greedy speculative decoding returns exactly plain greedy tokens (with guesses actually accepted), for
chains and candidate trees (tree attention: every node's logits equal feeding its own path causally), sampling with
typical acceptance is seeded and in range, the training loss covers the heads."""

import json

import pytest
import torch
from safetensors.torch import load_file

from cosmos_hf import CosmosARConfig, CosmosARForCausalLM, convert_ar_checkpoint
from transformers import DynamicCache

from cosmos_hf.autoregressive.medusa import (
    _keep_cache_entries,
    add_previous_frame_logit_bias,
    candidate_tree,
    init_medusa_heads_from_lm_head,
    medusa_generate,
    tree_attention_mask,
    typical_acceptance,
)

from conftest import FIXTURES  # ../shared/fixtures/reference; tests fail (not skip) without it


def _medusa_model(case: str, num_heads: int = 4):
    """Reference-parity weights (fixture) + Medusa heads initialised as in Medusa-1 (identity blocks, LM-head copy)."""
    folder = FIXTURES / case
    config = json.loads((folder / "config.json").read_text())["constructor_kwargs"]
    base = convert_ar_checkpoint(folder / "state_dict.safetensors", reference_config=config)
    model = CosmosARForCausalLM(CosmosARConfig(**{**base.config.to_dict(), "medusa_num_heads": num_heads})).eval()
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(key.startswith("medusa_heads.") for key in missing)
    if num_heads:
        init_medusa_heads_from_lm_head(model)
    io = load_file(str(folder / "io.safetensors"))
    text = {}
    if "context" in io:
        text = dict(encoder_hidden_states=io["context"], encoder_attention_mask=io["context_mask"])
    return model, io["tokens"][:, :20], text


@pytest.mark.parametrize("case", ["ar_base", "ar_video2world"])
def test_greedy_medusa_equals_plain_greedy(case):
    model, prompt, text = _medusa_model(case)
    plain = model.generate(prompt, max_new_tokens=40, do_sample=False, **text)
    medusa = medusa_generate(model, prompt, 40, **text)
    assert torch.equal(medusa.sequences, plain)
    # the speculation was exercised: some guesses were accepted, so fewer forward passes than tokens
    assert sum(medusa.accepted_per_step) > 0 and medusa.num_forward_passes < 40
    assert medusa.mean_tokens_per_step > 1


# the fixtures' grid is [3, 4, 4]: 16 tokens a latent frame, so copies from the previous frame start within the prompt
TREES = {
    "top3_first_head": dict(head_top_k=3),
    "temporal": dict(temporal_candidates=6),
    "top2_temporal_two_heads": dict(head_top_k=2, temporal_candidates=6, num_candidates=2),
    "temporal_only": dict(num_candidates=0, temporal_candidates=6),
}


@pytest.mark.parametrize("tree", TREES.values(), ids=TREES.keys())
@pytest.mark.parametrize("case", ["ar_base", "ar_video2world"])
def test_greedy_medusa_with_candidate_trees_equals_plain_greedy(case, tree):
    model, prompt, text = _medusa_model(case)
    plain = model.generate(prompt, max_new_tokens=28, do_sample=False, **text)
    medusa = medusa_generate(model, prompt, 28, **tree, **text)
    assert torch.equal(medusa.sequences, plain)
    # a plain 4-head chain feeds 5 tokens; each of these trees feeds at least 7 (distinct top-3 first tokens, or a
    # 6-token copy of the previous frame) and at most the root plus every path
    heads = tree.get("num_candidates", 4)
    assert 7 <= max(medusa.tree_sizes) <= 1 + heads * tree.get("head_top_k", 1) + tree.get("temporal_candidates", 0)


@pytest.mark.parametrize("case", ["ar_base", "ar_video2world"])
def test_a_model_without_heads_decodes_greedily_from_previous_frame_candidates_alone(case):
    model, prompt, text = _medusa_model(case, num_heads=0)  # the fixture's weights, no heads at all
    assert model.medusa_heads is None
    plain = model.generate(prompt, max_new_tokens=28, do_sample=False, **text)
    medusa = medusa_generate(model, prompt, 28, temporal_candidates=6, **text)
    assert torch.equal(medusa.sequences, plain)
    assert max(medusa.tree_sizes) <= 1 + 6  # the base token and the copied path, nothing from heads
    with pytest.raises(ValueError, match="temporal_candidates >= 1"):
        medusa_generate(model, prompt, 4, **text)  # no heads and no copies: nothing to speculate with
    with pytest.raises(ValueError, match="num_candidates None or 0"):
        medusa_generate(model, prompt, 4, num_candidates=2, temporal_candidates=6, **text)


def biased_greedy(model, prompt, max_new_tokens, bias, tokens_per_frame=16, **text):
    """Greedy decoding written out: the whole sequence through the model each step, `bias` added to the logit of the
    token one latent frame earlier (the fixtures have no `<bov>`)."""
    sequence = prompt
    for _ in range(max_new_tokens):
        logits = model(sequence, **text).logits[0, -1].clone()
        logits[sequence[0, sequence.shape[1] - tokens_per_frame]] += bias
        sequence = torch.cat([sequence, logits.argmax().view(1, 1)], dim=1)
    return sequence


@pytest.mark.parametrize("tree", [dict(), dict(num_candidates=0, temporal_candidates=16), dict(temporal_candidates=16)],
                         ids=["heads", "a_whole_frame_copied", "heads_and_a_whole_frame"])
@pytest.mark.parametrize("case", ["ar_base", "ar_video2world"])
def test_greedy_medusa_with_a_previous_frame_bias_equals_biased_greedy(case, tree):
    model, prompt, text = _medusa_model(case, num_heads=0 if tree.get("num_candidates") == 0 else 4)
    bias = 2.0
    expected = biased_greedy(model, prompt, 28, bias, **text)
    assert not torch.equal(expected, model.generate(prompt, max_new_tokens=28, do_sample=False, **text))  # it acts
    # a 16-token copy is as deep as a frame: its last nodes look up their previous-frame token on their own branch
    assert torch.equal(medusa_generate(model, prompt, 28, previous_frame_logit_bias=bias, **tree, **text).sequences,
                       expected)


def test_a_large_previous_frame_bias_repeats_the_last_latent_frame():
    model, prompt, text = _medusa_model("ar_base")
    out = medusa_generate(model, prompt, 28, previous_frame_logit_bias=1e4, temporal_candidates=8).sequences[0]
    assert torch.equal(out[20:], out[4:32])  # every new token is the one 16 positions (a frame) earlier
    logits = torch.zeros(3, 5)
    biased = add_previous_frame_logit_bias(logits, [2, None, 4], 1.5)
    assert biased[0, 2] == 1.5 and biased[2, 4] == 1.5 and biased.sum() == 3.0 and logits.sum() == 0  # a copy
    with pytest.raises(ValueError, match="previous_frame_logit_bias must be a finite number"):
        medusa_generate(model, prompt, 4, previous_frame_logit_bias=float("nan"))


def test_tree_attention_logits_equal_each_path_fed_causally():
    model, prompt, text = _medusa_model("ar_video2world")
    paths = [[7, 8, 9], [7, 8, 10], [11, 12], [7, 13]]
    tokens, parents, depths, children = candidate_tree(5, paths)
    assert tokens == [5, 7, 8, 9, 10, 11, 12, 13] and parents == [-1, 0, 1, 2, 2, 0, 5, 1]
    assert depths == [0, 1, 2, 3, 3, 1, 2, 2] and children[2] == {9: 3, 10: 4}
    mask = tree_attention_mask(parents, past=2)
    assert mask.shape == (1, 1, 8, 10) and mask[0, 0, 4].tolist() == [True] * 5 + [False, True] + [False] * 3

    past = prompt.shape[1]
    with torch.no_grad():
        cache = DynamicCache()
        model(prompt, cache=cache, **text)
        tree_logits = model(torch.tensor([tokens]), attention_mask=tree_attention_mask(parents, past),
                            position_ids=torch.tensor([depths]) + past, cache=cache, **text).logits[0]
        for node in range(len(tokens)):
            path, ancestor = [], node
            while ancestor >= 0:
                path.insert(0, tokens[ancestor])
                ancestor = parents[ancestor]
            causal = model(torch.cat([prompt, torch.tensor([path])], 1), use_cache=False, **text).logits[0, -1]
            torch.testing.assert_close(tree_logits[node], causal, atol=1e-5, rtol=1e-5)
        # keep a branch that is not a prefix of the fed tokens (root, 7, 8, 10): the cache must equal that path's
        _keep_cache_entries(cache, past, [0, 1, 2, 4])
        assert cache.get_seq_length() == past + 4
        after = model(torch.tensor([[3]]), cache=cache, **text).logits[0, -1]
        full = model(torch.cat([prompt, torch.tensor([[5, 7, 8, 10, 3]])], 1), use_cache=False, **text).logits[0, -1]
    torch.testing.assert_close(after, full, atol=1e-5, rtol=1e-5)


def test_four_dimensional_attention_mask_shape_is_checked():
    model, prompt, text = _medusa_model("ar_base")
    with pytest.raises(ValueError, match=r"4D attention_mask must be \[batch or 1, 1, length, past \+ length\]"):
        model(prompt, attention_mask=torch.ones(1, 1, 20, 19, dtype=torch.bool))
    with pytest.raises(ValueError, match="2D padding attention_mask"):
        model(prompt, labels=prompt, attention_mask=torch.ones(1, 1, 20, 20, dtype=torch.bool).tril())


def test_sampling_medusa_is_seeded_and_cold_temperature_is_greedy():
    model, prompt, text = _medusa_model("ar_video2world")
    runs = [
        medusa_generate(
            model, prompt, 20, do_sample=True, temperature=1.0, top_p=0.9,
            generator=torch.Generator().manual_seed(s), **text,
        ).sequences
        for s in (0, 0, 1)
    ]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert runs[0].shape == (1, 40) and int(runs[0][:, 20:].max()) < model.config.vocab_size
    cold = medusa_generate(model, prompt, 20, do_sample=True, temperature=1e-4, **text).sequences
    assert torch.equal(cold, model.generate(prompt, max_new_tokens=20, do_sample=False, **text))
    tree = dict(head_top_k=2, temporal_candidates=4)
    cold_tree = medusa_generate(model, prompt, 20, do_sample=True, temperature=1e-4, **tree, **text).sequences
    assert torch.equal(cold_tree, cold)
    seeded = [medusa_generate(model, prompt, 20, do_sample=True, generator=torch.Generator().manual_seed(0), **tree,
                              **text).sequences for _ in range(2)]
    assert torch.equal(*seeded) and int(seeded[0][:, 20:].max()) < model.config.vocab_size


def test_typical_acceptance_rule():
    peaked = torch.tensor([0.97, 0.01, 0.01, 0.01])
    flat = torch.full((4,), 0.25)
    assert typical_acceptance(peaked, 0)
    assert not typical_acceptance(peaked, 1)  # 0.01 < min(0.09, 0.3 * exp(-H)) with H ~ 0.17
    assert typical_acceptance(flat, 3)  # high entropy lowers the bar: 0.25 > min(0.09, 0.3 / 4)
    assert not typical_acceptance(flat, 3, epsilon=0.3, delta=1.01)  # bar = min(0.3, 1.01 * 0.25)


@pytest.mark.parametrize("name", ["epsilon", "delta"])
@pytest.mark.parametrize("value", [-0.5, 0.0, float("nan")])
def test_typical_acceptance_thresholds_must_be_positive(name, value):
    # a threshold <= 0 accepted every guess the base distribution does not rule out (p > 0): the "samples" were then
    # the heads' guesses, not draws from the model
    model = CosmosARForCausalLM(CosmosARConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, latent_shape=[2, 4, 4], medusa_num_heads=2)).eval()
    with pytest.raises(ValueError, match=rf"{name} must be a finite number > 0"):
        medusa_generate(model, torch.zeros(1, 4, dtype=torch.long), 4, do_sample=True, **{name: value})


def test_medusa_loss_trains_heads_and_input_errors():
    config = CosmosARConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, latent_shape=[2, 4, 4], medusa_num_heads=3, medusa_num_layers=1,
    )
    torch.manual_seed(0)
    model = CosmosARForCausalLM(config)
    tokens = torch.randint(0, 64, (2, 24))
    out = model(tokens, labels=tokens, output_medusa_logits=True)
    assert out.medusa_logits.shape == (3, 2, 24, 64)
    assert out.medusa_loss > 0
    torch.testing.assert_close(out.loss, out.ce_loss + out.z_loss + out.medusa_loss)
    out.loss.backward()
    assert all(head.proj.weight.grad.abs().sum() > 0 for head in model.medusa_heads)

    model.eval()
    with pytest.raises(ValueError, match=r"must be \[1, L\]"):
        medusa_generate(model, tokens, 4)
    with pytest.raises(ValueError, match="exceeds the 64 positions"):
        medusa_generate(model, tokens[:1], 60)
    plain = CosmosARForCausalLM(CosmosARConfig(**{**config.to_dict(), "medusa_num_heads": 0}))
    with pytest.raises(ValueError, match="Medusa heads"):
        medusa_generate(plain, tokens[:1], 4)
    with pytest.raises(ValueError, match=r"head_top_k must be in \[1, 64\]"):
        medusa_generate(model, tokens[:1], 4, head_top_k=0)
    with pytest.raises(ValueError, match="temporal_candidates must be >= 0"):
        medusa_generate(model, tokens[:1], 4, temporal_candidates=-1)
    with pytest.raises(ValueError, match="num_candidates must be >= 0"):
        medusa_generate(model, tokens[:1], 4, num_candidates=-2)


def test_sampling_distribution_is_generates_temperature_and_top_p_warpers():
    """Medusa's base-token distribution is transformers' own warpers (as `generate()` samples), not a copy."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from cosmos_hf.autoregressive.medusa import _sampling_probs

    logits = torch.randn(64, generator=torch.Generator().manual_seed(0))
    for temperature, top_p in [(1.0, None), (0.7, 0.8), (1.3, 0.3)]:
        scores = TemperatureLogitsWarper(temperature)(None, logits[None].clone())
        if top_p is not None:
            scores = TopPLogitsWarper(top_p)(None, scores)
        expected = torch.softmax(scores[0], dim=-1)
        torch.testing.assert_close(_sampling_probs(logits, temperature, top_p), expected, rtol=0, atol=1e-7)
        if top_p is not None:
            kept = expected > 0
            assert 1 < int(kept.sum()) < 64 and float(torch.softmax(logits / temperature, -1)[kept].sum()) >= top_p
