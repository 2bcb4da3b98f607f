"""CosmosARForCausalLM on transformers' StaticCache and under torch.compile: greedy tokens identical to the dynamic
cache (generate(), left padding, text cross-attention, Medusa trees), one compiled decoding graph without
recompilation, attention implementations (eager / sdpa) agreeing, clear errors when the cache is too small."""

import copy

import pytest
import torch
from transformers import CompileConfig, DynamicCache, StaticCache

from cosmos_hf import CosmosARConfig, CosmosARForCausalLM
from cosmos_hf.autoregressive.medusa import (
    _keep_cache_entries,
    candidate_tree,
    init_medusa_heads_from_lm_head,
    medusa_generate,
    tree_attention_mask,
)

from test_autoregressive_model import make_model, text_context, tiny_config, tiny_video2world_config, video2world_prompt


def random_prompt(config, length, seed=0, batch=1):
    return torch.randint(0, config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("variant", ["base", "video2world"])
def test_generate_with_static_cache_equals_dynamic_cache(variant):
    if variant == "base":
        config = tiny_config()
        prompt, text = random_prompt(config, 7), {}
    else:
        config = tiny_video2world_config()
        prompt = video2world_prompt(config, length=9)
        context, mask = text_context()
        mask[:, -2:] = False  # padded text tokens: the cross-attention mask must survive the static path
        text = dict(encoder_hidden_states=context, encoder_attention_mask=mask)
    model = make_model(config)
    dynamic = model.generate(prompt, max_new_tokens=20, do_sample=False, **text)
    static = model.generate(prompt, max_new_tokens=20, do_sample=False, cache_implementation="static", **text)
    assert torch.equal(static, dynamic)


def test_static_cache_left_padded_batch_equals_dynamic_cache():
    config = tiny_config()
    model = make_model(config)
    batch = torch.cat([random_prompt(config, 9, seed=5),
                       torch.cat([torch.zeros(1, 4, dtype=torch.long), random_prompt(config, 5, seed=6)], 1)])
    attention_mask = torch.tensor([[1] * 9, [0] * 4 + [1] * 5])
    kwargs = dict(attention_mask=attention_mask, do_sample=False, max_new_tokens=8, pad_token_id=0)
    assert torch.equal(model.generate(batch, cache_implementation="static", **kwargs), model.generate(batch, **kwargs))


def test_static_cache_logits_equal_full_forward_step_by_step():
    config = tiny_video2world_config()
    model = make_model(config)
    tokens = video2world_prompt(config, length=30)
    context, mask = text_context()
    text = dict(encoder_hidden_states=context, encoder_attention_mask=mask)
    with torch.no_grad():
        full = model(tokens, use_cache=False, **text).logits
        cache = StaticCache(config=config, max_cache_len=40)  # longer than used: the tail must stay masked
        pieces = [model(tokens[:, :11], cache=cache, **text).logits]
        pieces += [model(tokens[:, i : i + 1], cache=cache, **text).logits for i in range(11, 30)]
    assert int(cache.get_seq_length()) == 30
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)


def test_compiled_static_cache_decoding_is_one_graph_and_equals_eager():
    """generate() compiles the one-token step with fullgraph=True: no graph break, and no recompilation as the
    position advances (the StaticCache length is a tensor). aot_eager traces exactly what inductor would get, without
    its minute-long C++ build on a CPU; bench/autoregressive.py measures the inductor speed."""
    from torch._dynamo.utils import counters

    config = tiny_config()
    model = make_model(config)
    prompt = random_prompt(config, 7)
    eager = model.generate(prompt, max_new_tokens=12, do_sample=False, cache_implementation="static")
    torch._dynamo.reset()
    counters.clear()
    compile_config = CompileConfig(fullgraph=True, dynamic=False, backend="aot_eager", mode=None)
    compile_config._compile_all_devices = True  # transformers compiles only on accelerators unless told
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled = model.generate(prompt, max_new_tokens=12, do_sample=False, cache_implementation="static",
                                  compile_config=compile_config)
    graphs = counters["stats"]["unique_graphs"]
    torch._dynamo.reset()
    assert graphs == 1  # the decoding step was compiled, once
    assert torch.equal(compiled, eager)


@pytest.mark.parametrize("tree", [dict(), dict(head_top_k=2, temporal_candidates=6)], ids=["chain", "tree"])
def test_greedy_medusa_on_static_cache_equals_greedy(tree):
    config = tiny_config(medusa_num_heads=3, latent_shape=[4, 4, 4])
    model = make_model(config)
    init_medusa_heads_from_lm_head(model)  # heads = LM head: the first guess is often right
    prompt = random_prompt(config, 20, seed=2)
    plain = model.generate(prompt, max_new_tokens=30, do_sample=False)
    static = medusa_generate(model, prompt, 30, cache_implementation="static", **tree)
    dynamic = medusa_generate(model, prompt, 30, **tree)
    assert torch.equal(static.sequences, plain)
    assert static.accepted_per_step == dynamic.accepted_per_step and sum(static.accepted_per_step) > 0


def test_tree_attention_and_branch_keeping_on_static_cache_equal_dynamic_cache():
    config = tiny_video2world_config()
    model = make_model(config)
    prompt = video2world_prompt(config, length=12)
    context, mask = text_context()
    text = dict(encoder_hidden_states=context, encoder_attention_mask=mask)
    tokens, parents, depths, _ = candidate_tree(5, [[7, 8, 9], [7, 8, 10], [11, 12], [7, 13]])
    past = prompt.shape[1]
    results = []
    with torch.no_grad():
        for cache in (DynamicCache(), StaticCache(config=config, max_cache_len=past + len(tokens) + 3)):
            model(prompt, cache=cache, **text)
            tree_logits = model(torch.tensor([tokens]), attention_mask=tree_attention_mask(parents, past),
                                position_ids=torch.tensor([depths]) + past, cache=cache, **text).logits
            _keep_cache_entries(cache, past, [0, 1, 2, 4])  # root, 7, 8, 10: not a prefix of the fed nodes
            after = model(torch.tensor([[3]]), cache=cache, **text).logits
            results.append((tree_logits, int(cache.get_seq_length()), after))
        expected_after = model(torch.cat([prompt, torch.tensor([[5, 7, 8, 10, 3]])], 1), use_cache=False,
                               **text).logits[:, -1:]
    (dynamic_tree, dynamic_length, dynamic_after), (static_tree, static_length, static_after) = results
    torch.testing.assert_close(static_tree, dynamic_tree, rtol=1e-5, atol=1e-5)
    assert static_length == dynamic_length == past + 5
    torch.testing.assert_close(static_after, expected_after, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dynamic_after, expected_after, rtol=1e-5, atol=1e-5)


def test_eager_attention_equals_sdpa():
    """`attn_implementation="eager"` (additive float masks from transformers' mask utilities) gives the default sdpa
    path's logits (boolean masks): padded batches, text padding, cached decoding with a tree mask, generate()."""
    config = tiny_video2world_config()
    torch.manual_seed(0)
    reference = CosmosARForCausalLM(config).eval()
    # a copy: _from_config sets the implementation on the config object it is given
    model = CosmosARForCausalLM._from_config(copy.deepcopy(config), attn_implementation="eager").eval()
    model.load_state_dict(reference.state_dict())
    assert model.config._attn_implementation == "eager" and reference.config._attn_implementation == "sdpa"
    tokens = video2world_prompt(config, length=14, batch=2)
    padding = torch.ones(2, 14, dtype=torch.long)
    padding[1, 1:4] = 0  # a few padded keys after <bov>
    context, mask = text_context(batch=2)
    mask[1, -2:] = False
    text = dict(encoder_hidden_states=context, encoder_attention_mask=mask)
    first = {k: v[:1] for k, v in text.items()}
    tree_tokens, parents, depths, _ = candidate_tree(5, [[7, 8], [9]])
    with torch.no_grad():
        outputs = []
        for m in (reference, model):
            full = m(tokens, attention_mask=padding, use_cache=False, **text).logits
            cache = DynamicCache()
            m(tokens[:1], cache=cache, **first)
            tree = m(torch.tensor([tree_tokens]), attention_mask=tree_attention_mask(parents, 14), cache=cache,
                     position_ids=torch.tensor([depths]) + 14, **first).logits
            outputs.append((full, tree))
    for got, expected in zip(outputs[1], outputs[0]):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(model.generate(tokens[:1], max_new_tokens=6, do_sample=False, **first),
                       reference.generate(tokens[:1], max_new_tokens=6, do_sample=False, **first))


def test_static_cache_too_small_raises_clear_error():
    config = tiny_config()
    model = make_model(config)
    cache = StaticCache(config=config, max_cache_len=10)
    with torch.no_grad():
        model(random_prompt(config, 8), cache=cache)
        with pytest.raises(ValueError, match=r"static KV cache holds 10 positions; 8 are used and 3 more were fed"):
            model(random_prompt(config, 3), cache=cache)


def test_medusa_rejects_unknown_cache_implementation():
    model = make_model(tiny_config(medusa_num_heads=2))
    with pytest.raises(ValueError, match="cache_implementation must be 'dynamic' or 'static'"):
        medusa_generate(model, random_prompt(model.config, 4), 4, cache_implementation="offloaded")


def test_attention_dispatches_through_transformers_attention_interface():
    """A function registered with transformers' AttentionInterface is what the model calls, for self- and
    cross-attention, with the causal flag telling them apart."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    calls = []

    def recording_sdpa(module, query, key, value, attention_mask, **kwargs):
        calls.append((module.layer_idx, kwargs["is_causal"]))
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register("cosmos_test_recording_sdpa", recording_sdpa)
    config = tiny_video2world_config()
    torch.manual_seed(0)
    reference = CosmosARForCausalLM(config).eval()
    model = CosmosARForCausalLM._from_config(copy.deepcopy(config), attn_implementation="cosmos_test_recording_sdpa")
    model.eval()
    model.load_state_dict(reference.state_dict())
    tokens = video2world_prompt(config, length=10)
    context, mask = text_context()
    with torch.no_grad():
        got = model(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
        expected = reference(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
    assert calls == [(0, True), (0, False), (1, True), (1, False)]  # self, cross per layer
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_tree_mask_function_for_flex_attention_equals_the_direct_masks():
    """flex attention gets the tree mask as a transformers mask function (`and_mask_function`, turned into its
    BlockMask); built through the same utility in sdpa's format it equals the boolean mask sdpa gets directly."""
    from transformers.masking_utils import create_causal_mask

    from cosmos_hf.autoregressive.modeling_cosmos_ar import allowed_keys_mask_function

    config = tiny_config()
    model = make_model(config)
    _, parents, depths, _ = candidate_tree(5, [[7, 8, 9], [7, 10], [11]])
    past, nodes = 9, len(parents)
    with torch.no_grad():
        for cache in (DynamicCache(), StaticCache(config=config, max_cache_len=past + nodes + 4)):
            model(random_prompt(config, past), cache=cache)
            embeds = torch.zeros(1, nodes, config.hidden_size)
            kv_length = cache.get_mask_sizes(nodes, 0)[0]
            direct = model.model._self_attention_mask(tree_attention_mask(parents, past), embeds, cache,
                                                      cache.get_seq_length(), kv_length)
            allowed = torch.nn.functional.pad(tree_attention_mask(parents, past), (0, kv_length - past - nodes))
            through_function = create_causal_mask(config=config, inputs_embeds=embeds, attention_mask=None,
                                                  cache=cache, and_mask_function=allowed_keys_mask_function(
                                                      allowed, cache.get_seq_length()))
            assert direct.dtype == torch.bool and torch.equal(through_function, direct)
            assert int(direct.sum()) == nodes * past + sum(1 + depth for depth in depths)  # cache, self, ancestors
