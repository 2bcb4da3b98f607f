"""Prompt upsamplers: rewrite a short prompt into the long, detailed captions the world models were trained on.

Text2World: `CosmosPromptUpsampler` wraps any transformers chat LM (the reference's is a Mistral-NeMo-12B
fine-tune, Cosmos-UpsamplePrompt1-12B-Text2World) and asks it, through the tokenizer's chat template, with
the instruction that model was fine-tuned on. Video2World: `CosmosVideoPromptUpsampler` wraps a vision-language
model (the reference uses Pixtral-12B) and describes the last frame of the conditioning video.

    upsampler = CosmosPromptUpsampler.from_pretrained("path/to/upsampler", dtype=torch.bfloat16, device="cuda")
    long_prompt = upsampler("a robot picks up a cup")

Decoding is greedy by default (the same prompt always gives the same caption); pass `do_sample=True` with a
`seed` for varied but reproducible captions. With a `safety_checker`, the upsampled text must pass the text
guard too (an upsampler can introduce what the user did not write).
"""

import logging
import re

import numpy as np
import torch

from .core import GuardrailBlockedError, resolve_pretrained_path

logger = logging.getLogger(__name__)

# The instructions the reference's upsamplers were fine-tuned / prompted with (kept verbatim: the fine-tuned
# model expects exactly this wording).
TEXT2WORLD_INSTRUCTION = "Upsample the short caption to a long caption: {prompt}"
VIDEO2WORLD_INSTRUCTION = (
    "Your task is to transform a given prompt into a refined and concise video description, no more than 150 words.\n"
    "Focus only on the content, no filler words or descriptions on the style. Never mention things outside the video."
)

_LEADING_LABELS = re.compile(
    r"^(?:\s*(?:caption|long caption|upsampled caption|description)\s*:|\s*#+|\s*[-*,])\s*", re.IGNORECASE
)


def clean_upsampled_text(text: str) -> str:
    """One paragraph of plain caption text: no line breaks, labels ("Caption:"), bullets, headings or quotes.

    Short bold markdown headers ("- **Scene:**") are dropped; long bold passages are kept as text.
    """
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"-?\s*\*\*(.*?)\*\*", lambda m: m.group(1) if len(m.group(1).split()) >= 10 else "", text)
    previous = None
    while previous != text:  # labels may be stacked: "## Caption: ..."
        previous, text = text, _LEADING_LABELS.sub("", text, count=1)
    text = " ".join(text.split())
    return text.strip(" -,*:'\"\u201c\u201d")


class _UpsamplerBase:
    def __init__(self, max_new_tokens, do_sample, temperature, top_p, seed, safety_checker):
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if do_sample and temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
        self.max_new_tokens = max_new_tokens
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.safety_checker = safety_checker

    def _generation_kwargs(self, do_sample):
        kwargs = dict(max_new_tokens=self.max_new_tokens, do_sample=do_sample)
        if do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        else:  # silence "temperature is set but do_sample=False" from generation configs
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def _generate(self, model, inputs, pad_token_id, do_sample, seed):
        do_sample = self.do_sample if do_sample is None else do_sample
        seed = self.seed if seed is None else seed
        with torch.random.fork_rng(devices=[]):
            if do_sample and seed is not None:
                torch.manual_seed(seed)
            output = model.generate(**inputs, pad_token_id=pad_token_id, **self._generation_kwargs(do_sample))
        return output[0, inputs["input_ids"].shape[-1] :]

    def _finish(self, raw: str, fallback: str) -> str:
        text = clean_upsampled_text(raw)
        if not text:
            logger.warning("prompt upsampler returned no text; keeping the original prompt")
            text = fallback
        if self.safety_checker is not None:
            verdict = self.safety_checker.check_text(text)
            if not verdict.is_safe:
                raise GuardrailBlockedError(verdict)
        return text


class CosmosPromptUpsampler(_UpsamplerBase):
    """Text2World prompt upsampler around a transformers chat LM.

    Args:
        model: a causal LM (`AutoModelForCausalLM`).
        tokenizer: its tokenizer; must have a chat template.
        instruction: user-turn template with a `{prompt}` field.
        max_new_tokens: caption length limit (the reference allows 512).
        do_sample, temperature, top_p, seed: decoding; greedy unless `do_sample=True`.
        safety_checker: optional `CosmosSafetyChecker`; upsampled text that fails its text guard raises.
    """

    def __init__(self, model, tokenizer, instruction: str = TEXT2WORLD_INSTRUCTION, max_new_tokens: int = 512,
                 do_sample: bool = False, temperature: float = 0.01, top_p: float | None = None,
                 seed: int | None = None, safety_checker=None):
        super().__init__(max_new_tokens, do_sample, temperature, top_p, seed, safety_checker)
        if "{prompt}" not in instruction:
            raise ValueError("instruction must contain a '{prompt}' field")
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat_template; a chat (instruct) model is needed")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.instruction = instruction

    @classmethod
    def from_pretrained(cls, name_or_path, dtype=None, device=None, local_files_only: bool = True, **kwargs):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_pretrained_path(name_or_path, local_files_only=local_files_only)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(path)
        if device is not None:
            model = model.to(device)
        return cls(model, tokenizer, **kwargs)

    @torch.no_grad()
    def upsample(self, prompt: str, do_sample: bool | None = None, seed: int | None = None) -> str:
        """The long caption for `prompt`."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string")
        messages = [{"role": "user", "content": self.instruction.format(prompt=prompt.strip())}]
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        tokens = self._generate(self.model, inputs, pad_id, do_sample, seed)
        return self._finish(self.tokenizer.decode(tokens, skip_special_tokens=True), fallback=prompt.strip())

    __call__ = upsample


def resize_longest_side(image, max_size: int = 1024):
    """A PIL image no larger than `max_size` on either side (aspect ratio kept)."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    scale = max(image.size) / max_size
    if scale > 1:
        image = image.resize((max(1, round(image.width / scale)), max(1, round(image.height / scale))))
    return image


class CosmosVideoPromptUpsampler(_UpsamplerBase):
    """Video2World prompt upsampler around a transformers vision-language model (Pixtral / Llava style).

    The model sees the last frame of the conditioning video (as the reference does) and the instruction,
    optionally followed by the user's own short prompt.
    """

    def __init__(self, model, processor, instruction: str = VIDEO2WORLD_INSTRUCTION, max_new_tokens: int = 400,
                 do_sample: bool = False, temperature: float = 0.01, top_p: float | None = 0.9,
                 seed: int | None = None, max_image_size: int = 1024, safety_checker=None):
        super().__init__(max_new_tokens, do_sample, temperature, top_p, seed, safety_checker)
        if max_image_size < 1:
            raise ValueError(f"max_image_size must be >= 1, got {max_image_size}")
        self.model = model.eval()
        self.processor = processor
        self.instruction = instruction
        self.max_image_size = max_image_size

    @classmethod
    def from_pretrained(cls, name_or_path, dtype=None, device=None, local_files_only: bool = True, **kwargs):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = resolve_pretrained_path(name_or_path, local_files_only=local_files_only)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
        processor = AutoProcessor.from_pretrained(path)
        if device is not None:
            model = model.to(device)
        return cls(model, processor, **kwargs)

    @torch.no_grad()
    def upsample(self, video_or_image, prompt: str | None = None, do_sample: bool | None = None,
                 seed: int | None = None) -> str:
        """A caption for the scene in `video_or_image` (uint8 [T, H, W, 3] video, [H, W, 3] image, or PIL image)."""
        image = video_or_image
        if isinstance(image, np.ndarray):
            if image.ndim == 4:
                image = image[-1]  # the last conditioning frame is where generation continues
            if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
                raise ValueError(
                    f"expected uint8 frames (T, H, W, 3) or an image (H, W, 3), got {image.shape} {image.dtype}"
                )
        image = resize_longest_side(image, self.max_image_size)
        text = self.instruction if not prompt else f"{self.instruction}\nPrompt: {prompt.strip()}"
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        chat = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=chat, images=[image], return_tensors="pt")
        dtype = next(self.model.parameters()).dtype
        inputs = {k: (v.to(self.model.device, dtype) if v.is_floating_point() else v.to(self.model.device))
                  for k, v in inputs.items()}
        tokenizer = self.processor.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        tokens = self._generate(self.model, inputs, pad_id, do_sample, seed)
        return self._finish(tokenizer.decode(tokens, skip_special_tokens=True), fallback=prompt or "")

    __call__ = upsample
