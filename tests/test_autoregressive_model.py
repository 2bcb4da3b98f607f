"""CosmosARForCausalLM behaviour on tiny random models: Auto-class round trip, KV cache, generate(), input checks,
z-loss, bf16, padding, cross-attention."""

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, DynamicCache

import cosmos_hf  # noqa: F401  (registers cosmos_ar with the Auto classes)
from cosmos_hf import CosmosARConfig, CosmosARForCausalLM, CosmosARModel


def tiny_config(**overrides):
    kwargs = dict(
        vocab_size=96,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        latent_shape=[3, 4, 4],
        pad_to_multiple_of=64,
        initializer_range=0.2,  # large enough that logits are far from uniform
    )
    kwargs.update(overrides)
    return CosmosARConfig(**kwargs)


def tiny_video2world_config(**overrides):
    return tiny_config(
        insert_cross_attention=True,
        cross_attention_dim=24,
        use_abs_pos_emb=True,
        use_bov_token=True,
        **overrides,
    )


def make_model(config, seed=0):
    torch.manual_seed(seed)
    return CosmosARForCausalLM(config).eval()


def text_context(batch=1, length=5, dim=24, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, dim, generator=gen), torch.ones(batch, length, dtype=torch.bool)


def video2world_prompt(config, length=10, batch=1, seed=2):
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, config.vocab_size, (batch, length), generator=gen)
    tokens[:, 0] = config.bov_token_id
    return tokens


def test_auto_classes_save_load_round_trip(tmp_path):
    model = make_model(tiny_video2world_config())
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, CosmosARConfig) and config.model_type == "cosmos_ar"
    assert config.latent_shape == [3, 4, 4] and config.embedding_vocab_size == 128
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, CosmosARForCausalLM)
    tokens, (context, mask) = video2world_prompt(config), text_context()
    with torch.no_grad():
        expected = model(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
        got = loaded(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
        base = AutoModel.from_pretrained(tmp_path).eval()
        assert isinstance(base, CosmosARModel)
        hidden = base(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).last_hidden_state
    assert torch.equal(expected, got)
    torch.testing.assert_close(loaded.lm_head(hidden), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("variant", ["base", "video2world"])
def test_kv_cache_logits_equal_full_forward(variant):
    config = tiny_config() if variant == "base" else tiny_video2world_config()
    model = make_model(config)
    kwargs = {}
    if variant == "video2world":
        tokens = video2world_prompt(config, length=40)
        context, mask = text_context()
        kwargs = dict(encoder_hidden_states=context, encoder_attention_mask=mask)
    else:
        tokens = torch.randint(0, config.vocab_size, (1, 40), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = model(tokens, use_cache=False, **kwargs).logits
        cache = DynamicCache()
        pieces = [model(tokens[:, :17], cache=cache, use_cache=True, **kwargs).logits]
        for i in range(17, 40):
            pieces.append(model(tokens[:, i : i + 1], cache=cache, use_cache=True, **kwargs).logits)
    assert cache.get_seq_length() == 40
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)


def test_generate_sampling_is_seeded_and_greedy_matches_manual_loop():
    config = tiny_video2world_config()
    model = make_model(config)
    prompt = video2world_prompt(config, length=8)
    context, mask = text_context()
    kwargs = dict(encoder_hidden_states=context, encoder_attention_mask=mask, max_new_tokens=12)
    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        runs.append(model.generate(prompt, do_sample=True, temperature=0.9, top_p=0.8, top_k=0, **kwargs))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
    assert runs[0].shape == (1, 20) and int(runs[0][:, 8:].max()) < config.vocab_size  # <bov> is never sampled

    greedy = model.generate(prompt, do_sample=False, **kwargs)
    sequence = prompt
    with torch.no_grad():
        for _ in range(12):  # no cache, full recompute
            logits = model(sequence, use_cache=False, encoder_hidden_states=context, encoder_attention_mask=mask).logits
            sequence = torch.cat([sequence, logits[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(greedy, sequence)


def test_left_padded_batch_generation_matches_single_prompts():
    config = tiny_config()
    model = make_model(config)
    gen = torch.Generator().manual_seed(5)
    long_prompt = torch.randint(0, config.vocab_size, (1, 9), generator=gen)
    short_prompt = torch.randint(0, config.vocab_size, (1, 5), generator=gen)
    batch = torch.cat([long_prompt, torch.cat([torch.zeros(1, 4, dtype=torch.long), short_prompt], 1)])
    attention_mask = torch.tensor([[1] * 9, [0] * 4 + [1] * 5])
    together = model.generate(batch, attention_mask=attention_mask, do_sample=False, max_new_tokens=6, pad_token_id=0)
    alone_long = model.generate(long_prompt, do_sample=False, max_new_tokens=6)
    alone_short = model.generate(short_prompt, do_sample=False, max_new_tokens=6)
    assert torch.equal(together[0, 9:], alone_long[0, 9:])
    assert torch.equal(together[1, 9:], alone_short[0, 5:])


def test_token_ids_out_of_range_raise_clear_error():
    base = make_model(tiny_config())
    for bad in (96, -1, 1000):
        with pytest.raises(ValueError, match=rf"token id {bad} out of range: valid ids are 0\.\.95"):
            base(torch.tensor([[1, 2, bad]]))
    v2w = make_model(tiny_video2world_config())
    context, mask = text_context()
    v2w(torch.tensor([[96, 1, 2]]), encoder_hidden_states=context, encoder_attention_mask=mask)  # <bov> = 96 is valid
    with pytest.raises(ValueError, match=r"token id 97 out of range: .*96 \(<bov>\)"):  # padding row of the table
        v2w(torch.tensor([[96, 97]]), encoder_hidden_states=context, encoder_attention_mask=mask)


def test_positions_past_the_latent_grid_raise():
    model = make_model(tiny_config(pad_to_multiple_of=0))  # exactly 3*4*4 = 48 positions
    model(torch.zeros(1, 48, dtype=torch.long))
    with pytest.raises(ValueError, match=r"position ids must lie in \[0, 48\)"):
        model(torch.zeros(1, 49, dtype=torch.long))


def test_loss_is_cross_entropy_plus_z_loss():
    torch.manual_seed(0)
    model = CosmosARForCausalLM(tiny_config())  # train mode, fp32
    tokens = torch.randint(0, 96, (2, 20), generator=torch.Generator().manual_seed(7))
    labels = tokens.clone()
    labels[:, :5] = -100  # conditioning tokens are not predicted
    out = model(tokens, labels=labels)
    logits = out.logits[:, :-1]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 96), labels[:, 1:].reshape(-1), ignore_index=-100)
    z = 1e-4 * (torch.logsumexp(logits, -1) ** 2).mean()  # over all positions, as the reference
    torch.testing.assert_close(out.ce_loss, ce)
    torch.testing.assert_close(out.z_loss, z)
    torch.testing.assert_close(out.loss, ce + z)
    assert out.z_loss > 0
    out.loss.backward()
    assert model.model.embed_tokens.weight.grad is not None

    no_z = CosmosARForCausalLM(tiny_config(z_loss_coeff=0.0))
    no_z.load_state_dict(model.state_dict())
    torch.testing.assert_close(no_z(tokens, labels=labels).loss, ce)


def test_bf16_forward_on_cpu_is_close_to_fp32():
    config = tiny_video2world_config()
    model = make_model(config)
    tokens = video2world_prompt(config, length=30)
    context, mask = text_context()
    with torch.no_grad():
        fp32 = model(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
        bf16_model = model.to(torch.bfloat16)
        bf16 = bf16_model(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
    assert bf16.dtype == torch.bfloat16 and torch.isfinite(bf16).all()
    assert (bf16.float() - fp32).abs().max() < 0.05 * fp32.abs().max()
    generated = bf16_model.generate(tokens[:, :6], max_new_tokens=4, do_sample=False, encoder_hidden_states=context)
    assert generated.shape == (1, 10)


def test_cross_attention_layers_and_text_mask():
    config = tiny_video2world_config(num_hidden_layers=4, cross_attention_every_k_layers=2)
    model = make_model(config)
    assert [layer.cross_attn is not None for layer in model.model.layers] == [True, False, True, False]
    tokens = video2world_prompt(config)
    context, mask = text_context(length=6)
    mask[:, 4:] = False
    with torch.no_grad():
        masked = model(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
        truncated = model(tokens, encoder_hidden_states=context[:, :4]).logits
        full = model(tokens, encoder_hidden_states=context).logits
    torch.testing.assert_close(masked, truncated, rtol=1e-5, atol=1e-5)
    assert (masked - full).abs().max() > 1e-3
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        model(tokens)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="latent_shape"):
        tiny_config(latent_shape=[3, 4])
    with pytest.raises(ValueError, match="multiple of num_key_value_heads"):
        tiny_config(num_key_value_heads=3)
    for name in ("num_attention_heads", "num_key_value_heads", "hidden_size", "num_hidden_layers"):
        for bad in (0, -2):  # 0 heads was a ZeroDivisionError; -2 passed the multiple check and failed later
            with pytest.raises(ValueError, match=f"{name} must be >= 1, got {bad}"):
                tiny_config(**{name: bad})
    with pytest.raises(ValueError, match="use_yarn=True needs"):
        tiny_config(use_yarn=True)
    with pytest.raises(ValueError, match="abs_pos_emb_dtype"):
        tiny_config(abs_pos_emb_dtype="float16")


def test_text_kv_reuse_during_decoding_tracks_the_context():
    """Cross-attention K/V are reused across steps for the same context tensor, and recomputed when it changes."""
    config = tiny_video2world_config()
    model = make_model(config)
    tokens = video2world_prompt(config, length=12)
    context, mask = text_context()
    with torch.no_grad():
        first = model(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
        again = model(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
        context.mul_(-1.0)  # same object, modified in place
        flipped = model(tokens, encoder_hidden_states=context, encoder_attention_mask=mask).logits
        fresh = make_model(config)(tokens, encoder_hidden_states=context.clone(), encoder_attention_mask=mask).logits
    assert torch.equal(first, again)
    torch.testing.assert_close(flipped, fresh, rtol=0, atol=1e-6)
    assert (flipped - first).abs().max() > 1e-3
    with pytest.raises(ValueError, match=r"encoder_hidden_states must be \[batch, text_len, 24\]"):
        model(tokens, encoder_hidden_states=torch.zeros(1, 5, 23))
