"""Configurations of small Cosmos-Predict1 DiTs (AdaLN-LoRA `CosmosTransformer3DModel`) and tiny test components.

`NANO_TRANSFORMER_CONFIGS` are the nano world models of this project (CPU-trainable at 64x64); `tiny_*` builders
make randomly initialised components for tests and benchmarks (seconds to run, never downloaded).
"""

from __future__ import annotations

import torch

# Predict1 DiT keys: AdaLN-LoRA (adaln_lora_dim), 3D RoPE, learnable extra position embedding, padding-mask channel.
NANO_TRANSFORMER_CONFIGS = {
    # latent space of a 4x8x8 CV tokenizer at 64x64x17 -> 5x8x8 latents, patch 1x1x1 -> 320 tokens
    "nano-latent": dict(
        num_attention_heads=4, attention_head_dim=32, num_layers=6, mlp_ratio=4.0, adaln_lora_dim=32,
        max_size=(16, 16, 16), patch_size=(1, 1, 1), rope_scale=(1.0, 1.0, 1.0),
    ),
    # latent space of a 4x4x4 CV tokenizer at 64x64x17 -> 5x16x16 latents, patch 1x2x2 -> the same 320 tokens
    "nano-latent-p2": dict(
        num_attention_heads=4, attention_head_dim=32, num_layers=6, mlp_ratio=4.0, adaln_lora_dim=32,
        max_size=(16, 32, 32), patch_size=(1, 2, 2), rope_scale=(1.0, 1.0, 1.0),
    ),
    # pixel space 64x64, patch 1x4x4 (the DESIGN.md trials) -> 16x16 tokens a frame
    "nano-pixel": dict(
        num_attention_heads=4, attention_head_dim=32, num_layers=4, mlp_ratio=4.0, adaln_lora_dim=32,
        max_size=(64, 64, 64), patch_size=(1, 4, 4), rope_scale=(1.0, 1.0, 1.0),
    ),
    # smallest useful size for tests
    "tiny": dict(
        num_attention_heads=2, attention_head_dim=12, num_layers=1, mlp_ratio=2.0, adaln_lora_dim=4,
        max_size=(16, 32, 32), patch_size=(1, 2, 2), rope_scale=(1.0, 1.0, 1.0),
    ),
}


def transformer_config(
    name_or_config: str | dict,
    latent_channels: int,
    text_embed_dim: int,
    video2world: bool = False,
    condition_frame_channels: bool = False,
) -> dict:
    """Full `CosmosTransformer3DModel` kwargs: a named preset (or dict) plus the channel and text sizes.

    Video2World adds the condition-mask input channel (`in_channels = C + 1`, as diffusers' pipeline expects);
    `condition_frame_channels` adds C more for the last conditioning frame (a nano-trial option).
    """
    config = dict(NANO_TRANSFORMER_CONFIGS[name_or_config]) if isinstance(name_or_config, str) else dict(name_or_config)
    if isinstance(name_or_config, str) is False and "num_layers" not in config:
        raise ValueError("a transformer config dict needs at least num_layers, num_attention_heads, attention_head_dim")
    in_channels = latent_channels + (1 if video2world else 0) + (latent_channels if condition_frame_channels else 0)
    config.update(
        in_channels=in_channels,
        out_channels=latent_channels,
        text_embed_dim=text_embed_dim,
        concat_padding_mask=config.get("concat_padding_mask", True),
        extra_pos_embed_type=config.get("extra_pos_embed_type", "learnable"),
    )
    for key in ("max_size", "patch_size", "rope_scale"):
        config[key] = tuple(config[key])
    return config


def tiny_transformer(latent_channels=4, text_embed_dim=16, video2world=False, seed=0, **overrides):
    from diffusers import CosmosTransformer3DModel

    torch.manual_seed(seed)
    config = transformer_config("tiny", latent_channels, text_embed_dim, video2world=video2world)
    config.update(overrides)
    return CosmosTransformer3DModel(**config).eval()


def tiny_cosmos_vae(latent_channels=4, seed=0):
    """A randomly initialised `AutoencoderKLCosmos` with 4x8x8 compression and small widths (for tests)."""
    from diffusers import AutoencoderKLCosmos

    torch.manual_seed(seed)
    return AutoencoderKLCosmos(
        in_channels=3, out_channels=3, latent_channels=latent_channels,
        encoder_block_out_channels=(8, 16, 16, 16), decode_block_out_channels=(8, 16, 16, 16),
        attention_resolutions=(), resolution=64, num_layers=1, patch_size=4, patch_type="haar",
        spatial_compression_ratio=8, temporal_compression_ratio=4, latents_mean=None, latents_std=None,
    ).eval()


def tiny_t5_text_encoder(d_model=16, seed=0):
    """(tokenizer, encoder): a random 1-layer T5 encoder over a tiny word-level vocabulary, built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    words = "a the red blue green ball cube falls rolls slides stack tower domino seesaw on off".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                        unk_token="<unk>", model_max_length=512)
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(vocab), d_model=d_model, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    return tokenizer, T5EncoderModel(config).eval()
