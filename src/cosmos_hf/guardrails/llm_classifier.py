"""LLM safety classifier pre-guard: Aegis (LlamaGuard-7b + the Aegis PEFT adapter) or any transformers chat
safety model (LlamaGuard 2/3, ShieldGemma-style models whose chat template builds the moderation prompt).

    classifier = LLMSafetyClassifier.from_pretrained(
        "meta-llama/LlamaGuard-7b",                                         # or a local folder
        adapter_name_or_path="nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0",
        torch_dtype=torch.bfloat16, device="cuda",
    )
    verdict = classifier.check("a man stabbing a stranger")  # is_safe=False, reason="unsafe: O1 violence"

Fail closed: generation errors and answers that are neither "safe" nor "unsafe ..." block the prompt (the
reference treats an Aegis exception as safe). Runtime never reaches the network: Hub ids load only when
they are already in the local cache (`local_files_only=True` unless you pass False).
"""

import re

import torch

from .categories import AEGIS_CATEGORIES, SafetyCategory
from .core import GuardrailVerdict, resolve_pretrained_path, run_guard_fail_closed

PROMPT_FORMATS = ("aegis", "chat_template")
_CATEGORY_CODE = re.compile(r"\b([OS]\d{1,2})\b")


def build_moderation_prompt(user_prompt: str, categories=AEGIS_CATEGORIES) -> str:
    """The LlamaGuard-1 / Aegis instruction: the category list, the conversation, and the answer format."""
    category_lines = "\n".join(f"{c.code}: {c.name.replace('_', ' ').title()}.\n{c.policy}" for c in categories)
    return (
        "[INST] Task: Check if there is unsafe content in 'User' messages in conversations according to our "
        "safety policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{category_lines}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\nUser: {user_prompt}\n\n<END CONVERSATION>\n\n"
        "Provide your safety assessment for User in the above conversation:\n"
        "- First line must read 'safe' or 'unsafe'.\n"
        "- If unsafe, a second line must include a comma-separated list of violated categories. [/INST]"
    )


def parse_safety_assessment(text: str, categories=AEGIS_CATEGORIES) -> GuardrailVerdict:
    """Turn a classifier's answer into a verdict. Only an answer whose first word is exactly "safe" passes."""
    words = text.strip().split()
    first = words[0].strip(".,:;'\"").lower() if words else ""
    if first == "safe":
        return GuardrailVerdict(True, "llm_classifier", "classifier answered safe", details={"raw_output": text})
    if first == "unsafe":
        by_code = {c.code: c for c in categories}
        codes = list(dict.fromkeys(_CATEGORY_CODE.findall(text)))
        named = [f"{code} {by_code[code].name}" if code in by_code else code for code in codes]
        reason = "unsafe: " + (", ".join(named) if named else "no category given")
        return GuardrailVerdict(
            False,
            "llm_classifier",
            reason,
            details={
                "categories": codes,
                "names": [by_code[c].name for c in codes if c in by_code],
                "raw_output": text,
            },
        )
    return GuardrailVerdict(
        False,
        "llm_classifier",
        f"classifier answer is neither 'safe' nor 'unsafe' (blocking, fail closed): {text.strip()[:80]!r}",
        details={"raw_output": text},
    )


class LLMSafetyClassifier(torch.nn.Module):
    """A causal LM that answers "safe" / "unsafe\\n<codes>" about a user prompt.

    Args:
        model: a transformers causal LM (optionally a peft `PeftModel`).
        tokenizer: its tokenizer.
        categories: the coded categories shown to the model (`prompt_format="aegis"`) and used to name codes.
        prompt_format: "aegis" builds the LlamaGuard-1 instruction itself; "chat_template" hands the user turn to
            the tokenizer's chat template (LlamaGuard 2/3 templates embed their own category list).
        max_new_tokens: the answer is two short lines; generation stops at EOS or here.
    """

    def __init__(
        self,
        model,
        tokenizer,
        categories: tuple[SafetyCategory, ...] = AEGIS_CATEGORIES,
        prompt_format: str = "aegis",
        max_new_tokens: int = 24,
    ):
        super().__init__()
        if prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"prompt_format must be one of {PROMPT_FORMATS}, got {prompt_format!r}")
        if prompt_format == "chat_template" and not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt_format='chat_template' needs a tokenizer with a chat_template")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.categories = tuple(categories)
        self.prompt_format = prompt_format
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path,
        adapter_name_or_path=None,
        tokenizer_name_or_path=None,
        torch_dtype=None,
        device=None,
        merge_adapter: bool = False,
        local_files_only: bool = True,
        cache_dir=None,
        **kwargs,
    ) -> "LLMSafetyClassifier":
        """Load a base safety LM (+ an optional PEFT adapter, as Aegis ships) with transformers and peft.

        `cache_dir` reads Hub ids from a Hugging Face cache folder (the reference keeps them in
        `checkpoints/.../guardrail/aegis`).
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        def local(name):
            return resolve_pretrained_path(name, cache_dir=cache_dir, local_files_only=local_files_only)

        model = AutoModelForCausalLM.from_pretrained(local(model_name_or_path), dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(local(tokenizer_name_or_path or model_name_or_path))
        if adapter_name_or_path is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, local(adapter_name_or_path))
            if merge_adapter:
                model = model.merge_and_unload()
        if device is not None:
            model = model.to(device)
        if "prompt_format" not in kwargs and adapter_name_or_path is None and getattr(tokenizer, "chat_template", None):
            kwargs["prompt_format"] = "chat_template"
        return cls(model, tokenizer, **kwargs)

    def moderation_input_ids(self, user_prompt: str) -> torch.Tensor:
        if self.prompt_format == "chat_template":
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": user_prompt}], add_generation_prompt=True, return_tensors="pt",
                return_dict=True,
            )["input_ids"]
        else:
            text = build_moderation_prompt(user_prompt, self.categories)
            ids = self.tokenizer(text, add_special_tokens=True, return_tensors="pt")["input_ids"]
        return ids

    @torch.no_grad()
    def assess(self, user_prompt: str) -> str:
        """The classifier's raw answer (greedy decoding, so the same prompt always gets the same answer)."""
        input_ids = self.moderation_input_ids(user_prompt).to(self.model.device)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
        )
        return self.tokenizer.decode(output[0, input_ids.shape[-1] :], skip_special_tokens=True)

    def _check(self, user_prompt: str) -> GuardrailVerdict:
        if not isinstance(user_prompt, str) or not user_prompt.strip():
            return GuardrailVerdict(False, "llm_classifier", "prompt is empty or not a string")
        return parse_safety_assessment(self.assess(user_prompt), self.categories)

    def check(self, user_prompt: str) -> GuardrailVerdict:
        """Verdict for one prompt; any error inside blocks it (fail closed) and is named in the reason."""
        return run_guard_fail_closed("llm_classifier", self._check, user_prompt)

    def __call__(self, user_prompt: str) -> GuardrailVerdict:  # a guard, not a torch forward
        return self.check(user_prompt)
