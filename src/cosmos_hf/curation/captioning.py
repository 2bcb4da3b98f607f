"""Clip captioning: captions carried in metadata, or a vision-language chat model through transformers.

A captioner is any object with `name` and `__call__(frames uint8 [T,H,W,3], fps, metadata_caption) -> str | None`.

- `MetadataCaptioner`: the caption that came with the source video (physics-world folders carry exact captions:
  `metas/{stem}.txt`, a sidecar `{stem}.txt`, or `metadata.jsonl`); None when there is none.
- `VLMCaptioner`: a transformers image-text-to-text chat model (Qwen2-VL style: `AutoProcessor` +
  `AutoModelForImageTextToText`) from a local folder, prompted with the paper's captioning prompt.
- `AutoCaptioner`: metadata first, then the VLM when one is configured.
"""

from __future__ import annotations

import numpy as np

# The captioning prompt of the Cosmos paper (Sec. 3.1, video captioning with a VLM).
PAPER_PROMPT = "Elaborate on the visual and narrative elements of the video in detail."


class MetadataCaptioner:
    name = "metadata"

    def __call__(self, frames, fps, metadata_caption=None):
        return metadata_caption.strip() if metadata_caption and metadata_caption.strip() else None


class VLMCaptioner:
    """Caption a clip with a local chat VLM (e.g. Qwen2-VL-7B-Instruct, the family cosmos-curate uses).

    Args:
        model_path: local folder (or cached Hub id) of a transformers image-text-to-text model with a chat template.
        prompt: the user instruction (default: the paper's prompt).
        num_frames: frames sampled evenly from the clip and passed as one video.
        max_new_tokens: caption length limit; decoding is greedy (deterministic).
    """

    name = "vlm"

    def __init__(self, model_path, prompt: str = PAPER_PROMPT, num_frames: int = 8, max_new_tokens: int = 256,
                 device: str = "cpu", torch_dtype=None):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(model_path)
        kwargs = {} if torch_dtype is None else {"dtype": torch_dtype}
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, **kwargs).eval().to(device)
        self.prompt, self.num_frames, self.max_new_tokens, self.device = prompt, num_frames, max_new_tokens, device

    def __call__(self, frames, fps, metadata_caption=None):
        import torch

        from .filters import sample_indices

        # Qwen2-VL merges frames in temporal pairs: pass an even number of frames.
        index = sample_indices(len(frames), self.num_frames)
        if len(index) % 2:
            index = np.append(index, index[-1])
        video = np.ascontiguousarray(frames[index])
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": self.prompt}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[text], videos=[video], return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip() or None


class AutoCaptioner:
    """The metadata caption when the source video has one, else the VLM (if configured), else None."""

    name = "auto"

    def __init__(self, vlm: VLMCaptioner | None = None):
        self.metadata, self.vlm = MetadataCaptioner(), vlm

    def __call__(self, frames, fps, metadata_caption=None):
        caption = self.metadata(frames, fps, metadata_caption)
        if caption is None and self.vlm is not None:
            caption = self.vlm(frames, fps)
        return caption
