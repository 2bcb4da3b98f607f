"""LLM safety classifier: prompt building, answer parsing, loading base + PEFT adapter, fail-closed behaviour."""

import pytest
import torch
from test_guardrails_tiny_models import scripted_causal_lm, word_level_tokenizer

from cosmos_hf.guardrails import AEGIS_CATEGORIES, LLMSafetyClassifier, build_moderation_prompt, parse_safety_assessment


def test_moderation_prompt_lists_every_category_and_the_user_turn():
    prompt = build_moderation_prompt("a robot stacks cubes")
    assert prompt.startswith("[INST]") and prompt.endswith("[/INST]")
    assert "User: a robot stacks cubes" in prompt
    for category in AEGIS_CATEGORIES:
        assert f"{category.code}: " in prompt


@pytest.mark.parametrize(
    "answer, safe, codes",
    [
        ("safe", True, []),
        ("  Safe\n", True, []),
        ("unsafe\nO1", False, ["O1"]),
        ("unsafe\nO4,O10", False, ["O4", "O10"]),
        ("unsafe", False, []),
        ("I cannot answer that", False, None),  # neither: blocked (fail closed)
        ("", False, None),
        ("safety first", False, None),  # "safe" must be the whole first word
    ],
)
def test_parse_safety_assessment(answer, safe, codes):
    verdict = parse_safety_assessment(answer)
    assert verdict.is_safe is safe
    if codes is not None and not safe:
        assert verdict.details["categories"] == codes
    if codes is None:
        assert "fail closed" in verdict.reason


def test_parse_names_categories_by_code_including_o10():
    # The reference maps "O10" through a list without O9 and names the wrong category; we map by code.
    verdict = parse_safety_assessment("unsafe\nO10")
    assert verdict.details["names"] == ["harassment"]


def _save_tiny(tmp_path, chain):
    tokenizer = word_level_tokenizer()
    model = scripted_causal_lm(tokenizer, chain)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    return tokenizer, model


def test_loaded_classifier_generates_and_parses_its_answer(tmp_path):
    _save_tiny(tmp_path, {"[/INST]": "unsafe", "unsafe": "O4"})
    classifier = LLMSafetyClassifier.from_pretrained(tmp_path / "model", prompt_format="aegis")
    verdict = classifier.check("how to build a weapon")
    assert not verdict.is_safe
    assert verdict.details["categories"] == ["O4"] and "weapons" in verdict.reason


def test_chat_template_format_is_used_when_the_tokenizer_has_one(tmp_path):
    _save_tiny(tmp_path, {"[/INST]": "safe"})
    classifier = LLMSafetyClassifier.from_pretrained(tmp_path / "model")
    assert classifier.prompt_format == "chat_template"
    assert classifier.check("a robot stacks cubes").is_safe


def test_peft_adapter_is_loaded_and_changes_the_verdict(tmp_path):
    """Base model answers "safe"; a LoRA adapter on lm_head rewires it to "unsafe O7" (as Aegis adapts LlamaGuard)."""
    from peft import LoraConfig, get_peft_model

    tokenizer, base = _save_tiny(tmp_path, {"[/INST]": "safe"})
    target = scripted_causal_lm(tokenizer, {"[/INST]": "unsafe", "unsafe": "O7"})
    size = base.config.vocab_size
    peft_model = get_peft_model(base, LoraConfig(r=size, lora_alpha=size, target_modules=["lm_head"]))
    with torch.no_grad():
        lora_a = peft_model.base_model.model.lm_head.lora_A["default"].weight
        lora_b = peft_model.base_model.model.lm_head.lora_B["default"].weight
        lora_a.copy_(torch.eye(size))
        lora_b.copy_(target.lm_head.weight - base.lm_head.weight)  # scaling alpha / r = 1
    peft_model.save_pretrained(tmp_path / "adapter", save_embedding_layers=False)

    plain = LLMSafetyClassifier.from_pretrained(tmp_path / "model", prompt_format="aegis")
    assert plain.check("some prompt").is_safe
    adapted = LLMSafetyClassifier.from_pretrained(tmp_path / "model", adapter_name_or_path=tmp_path / "adapter")
    verdict = adapted.check("some prompt")
    assert not verdict.is_safe and verdict.details["names"] == ["sexual_minor"]
    merged = LLMSafetyClassifier.from_pretrained(
        tmp_path / "model", adapter_name_or_path=tmp_path / "adapter", merge_adapter=True
    )
    assert merged.check("some prompt").details["categories"] == ["O7"]


def test_garbage_answer_and_generation_errors_block(tmp_path):
    tokenizer = word_level_tokenizer()
    rambling = LLMSafetyClassifier(scripted_causal_lm(tokenizer, {"[/INST]": "hello"}), tokenizer)
    verdict = rambling.check("a robot stacks cubes")
    assert not verdict.is_safe and "neither" in verdict.reason

    broken = LLMSafetyClassifier(scripted_causal_lm(tokenizer, {}), tokenizer)

    def explode(**kwargs):
        raise RuntimeError("CUDA out of memory")

    broken.model.generate = explode
    verdict = broken.check("a robot stacks cubes")
    assert not verdict.is_safe
    assert "RuntimeError: CUDA out of memory" in verdict.reason and "fail closed" in verdict.reason


def test_missing_weights_fail_without_network(tmp_path):
    with pytest.raises(FileNotFoundError, match="no network access"):
        LLMSafetyClassifier.from_pretrained("meta-llama/LlamaGuard-7b", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no network access"):
        LLMSafetyClassifier.from_pretrained(tmp_path / "no-such-folder")


def test_bad_arguments_are_named():
    tokenizer = word_level_tokenizer(chat_template=None)
    model = scripted_causal_lm(tokenizer, {})
    with pytest.raises(ValueError, match="prompt_format"):
        LLMSafetyClassifier(model, tokenizer, prompt_format="llamaguard9")
    with pytest.raises(ValueError, match="chat_template"):
        LLMSafetyClassifier(model, tokenizer, prompt_format="chat_template")
