"""Prompt upsamplers (Text2World chat LM, Video2World VLM) on tiny scripted transformers models."""

import numpy as np
import pytest
import torch
from test_guardrails_tiny_models import scripted_causal_lm, word_level_tokenizer

from cosmos_hf.guardrails import CosmosPromptUpsampler, CosmosSafetyChecker, CosmosVideoPromptUpsampler
from cosmos_hf.guardrails.blocklist import KeywordBlocklist
from cosmos_hf.guardrails.core import GuardrailBlockedError
from cosmos_hf.guardrails.prompt_upsampler import TEXT2WORLD_INSTRUCTION, clean_upsampled_text

CAPTION_CHAIN = {"[/INST]": "a", "a": "long", "long": "caption", "caption": "</s>"}


def test_text_upsampler_round_trip_through_a_saved_chat_model(tmp_path):
    tokenizer = word_level_tokenizer()
    scripted_causal_lm(tokenizer, CAPTION_CHAIN).save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    upsampler = CosmosPromptUpsampler.from_pretrained(tmp_path / "lm")
    assert upsampler("a robot") == "a long caption"
    # the model saw the reference instruction through the chat template
    seen = tokenizer.apply_chat_template(
        [{"role": "user", "content": TEXT2WORLD_INSTRUCTION.format(prompt="a robot")}], tokenize=False,
        add_generation_prompt=True,
    )
    assert seen == "[INST] Upsample the short caption to a long caption: a robot [/INST]"


def test_sampling_is_reproducible_with_a_seed():
    tokenizer = word_level_tokenizer()
    torch.manual_seed(0)
    from transformers import LlamaConfig, LlamaForCausalLM

    random_lm = LlamaForCausalLM(
        LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=2, eos_token_id=2, pad_token_id=3)
    )
    upsampler = CosmosPromptUpsampler(random_lm, tokenizer, max_new_tokens=12, do_sample=True, temperature=1.0)
    first = upsampler.upsample("a robot", seed=1)
    assert upsampler.upsample("a robot", seed=1) == first
    outputs = {upsampler.upsample("a robot", seed=s) for s in range(2, 8)}
    assert len(outputs) > 1  # different seeds do sample differently
    greedy = CosmosPromptUpsampler(random_lm, tokenizer, max_new_tokens=12)
    assert greedy.upsample("a robot") == greedy.upsample("a robot")


def test_upsampled_text_must_pass_the_text_guard():
    tokenizer = word_level_tokenizer()
    checker = CosmosSafetyChecker(blocklist=KeywordBlocklist({"test": ["caption"]}), face_pixelator=None)
    upsampler = CosmosPromptUpsampler(scripted_causal_lm(tokenizer, CAPTION_CHAIN), tokenizer, safety_checker=checker)
    with pytest.raises(GuardrailBlockedError, match="caption"):
        upsampler("a robot")


def test_empty_generation_keeps_the_prompt_and_bad_input_is_named():
    tokenizer = word_level_tokenizer()
    upsampler = CosmosPromptUpsampler(scripted_causal_lm(tokenizer, {}), tokenizer)  # answers </s> at once
    assert upsampler("a robot on a table") == "a robot on a table"
    with pytest.raises(ValueError, match="non-empty"):
        upsampler("   ")
    with pytest.raises(ValueError, match="chat_template"):
        CosmosPromptUpsampler(scripted_causal_lm(tokenizer, {}), word_level_tokenizer(chat_template=None))


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("Caption: A robot arm\nlifts a cube.", "A robot arm lifts a cube."),
        ('"A quiet street at dawn."', "A quiet street at dawn."),
        ("- **Scene:** A dog runs.", "A dog runs."),
        ("## Caption: two  cars\r\npass", "two cars pass"),
    ],
)
def test_clean_upsampled_text(raw, clean):
    assert clean_upsampled_text(raw) == clean


VLM_TEMPLATE = (
    "{% for m in messages %}[INST] {% for c in m['content'] %}{% if c['type'] == 'image' %}[IMG] "
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %} [/INST]{% endfor %}"
)


def tiny_pixtral_folder(tmp_path, chain):
    """A Llava-architecture model with a Pixtral vision tower (as HF ships Pixtral-12B) and its processor."""
    from transformers import (LlavaConfig, LlavaForConditionalGeneration, PixtralImageProcessor, PixtralProcessor,
                              PixtralVisionConfig)

    tokenizer = word_level_tokenizer(chat_template=None)
    tokenizer.add_tokens(["[IMG]", "[IMG_BREAK]", "[IMG_END]"], special_tokens=True)  # split out of "[IMG][IMG]..."
    text_lm = scripted_causal_lm(tokenizer, chain)
    vision = PixtralVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 image_size=32, patch_size=8, head_dim=8)
    config = LlavaConfig(vision_config=vision, text_config=text_lm.config,
                         image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
                         vision_feature_layer=-1, vision_feature_select_strategy="full")
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(text_lm.model.state_dict())
    model.lm_head.load_state_dict(text_lm.lm_head.state_dict())
    processor = PixtralProcessor(
        image_processor=PixtralImageProcessor(patch_size=8, size={"longest_edge": 32}), tokenizer=tokenizer,
        patch_size=8, chat_template=VLM_TEMPLATE,
    )
    model.save_pretrained(tmp_path / "vlm")
    processor.save_pretrained(tmp_path / "vlm")
    return tmp_path / "vlm"


def test_video_upsampler_describes_the_last_frame(tmp_path):
    folder = tiny_pixtral_folder(tmp_path, {"[/INST]": "a", "a": "robot", "robot": "scene"})
    upsampler = CosmosVideoPromptUpsampler.from_pretrained(folder, max_new_tokens=4)
    video = np.random.default_rng(0).integers(0, 256, (3, 40, 56, 3), dtype=np.uint8)
    assert upsampler(video) == "a robot scene"

    seen = {}

    def spy(module, args, kwargs):
        seen["pixel_values"] = kwargs.get("pixel_values", args[0] if args else None)

    handle = upsampler.model.model.vision_tower.register_forward_pre_hook(spy, with_kwargs=True)
    upsampler(video)
    handle.remove()
    last = upsampler.processor.image_processor(images=[upsampler_image(video[-1])], return_tensors="pt")
    torch.testing.assert_close(seen["pixel_values"], last["pixel_values"])  # the last frame, not the first
    with pytest.raises(ValueError, match="uint8"):
        upsampler(video.astype(np.float32))


def upsampler_image(frame):
    from cosmos_hf.guardrails.prompt_upsampler import resize_longest_side

    return resize_longest_side(frame, 1024)
