"""Tiny, offline stand-ins for the guardrail models (built here, no downloads), and checks of the builders.

`scripted_causal_lm` builds a real `LlamaForCausalLM` whose greedy continuation is a fixed word chain: the
residual stream carries a one-hot embedding of the last token (attention and MLP outputs are zeroed) and
`lm_head` is a transition matrix. So a "safety classifier" that answers "unsafe O4" is a genuine transformers
model going through tokenisation, `generate` and decoding, with a known answer.
"""

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
WORDS = (
    ["[INST]", "[/INST]", "safe", "unsafe", "hello", "a", "long", "caption", "camera", "robot", "cube", "scene"]
    + [f"O{i}" for i in range(1, 14)]
    + ["[IMG]", "[IMG_BREAK]", "[IMG_END]"]
)
CHAT_TEMPLATE = (
    "{% for m in messages %}[INST] {{ m['content'] if m['content'] is string else m['content'][-1]['text'] }}"
    " [/INST]{% endfor %}"
)


def word_level_tokenizer(chat_template: str | None = CHAT_TEMPLATE) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer over SPECIAL_TOKENS + WORDS (unknown words -> <unk>)."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def scripted_causal_lm(tokenizer, chain: dict[str, str], default_next: str = "</s>") -> LlamaForCausalLM:
    """A LlamaForCausalLM that, greedily, always follows token -> chain[token] (else -> default_next)."""
    vocab = tokenizer.get_vocab()
    size = len(vocab)
    config = LlamaConfig(
        vocab_size=size, hidden_size=size, intermediate_size=8, num_hidden_layers=1, num_attention_heads=1,
        num_key_value_heads=1, max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"], pad_token_id=vocab["<pad>"],
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(size))
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        transition = torch.zeros(size, size)
        for token, index in vocab.items():
            transition[vocab[chain.get(token, default_next)], index] = 1.0
        model.lm_head.weight.copy_(transition)
    return model.eval()


def test_scripted_lm_follows_its_chain():
    tokenizer = word_level_tokenizer()
    model = scripted_causal_lm(tokenizer, {"[/INST]": "unsafe", "unsafe": "O4"})
    ids = tokenizer("[INST] anything at all [/INST]", return_tensors="pt")["input_ids"]
    out = model.generate(input_ids=ids, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True) == "unsafe O4"
