"""Named Cosmos-Tokenize1 configurations, written as the reference's constructor kwargs.

Each entry is what `cosmos_predict1.tokenizer.networks.configs` (and the 0.1 release for DV8x8x8 / CV8x16x16) passes
to the reference networks; `model_from_reference_kwargs` turns such a dict into one of our models. Keeping the
reference form means a user's own reference config JSON goes through exactly the same code (`--reference-config`).
"""

import copy

_VIDEO_BASE = dict(
    attn_resolutions=[32], channels=128, channels_mult=[2, 4, 4], dropout=0.0, in_channels=3, out_channels=3,
    num_res_blocks=2, resolution=1024, patch_size=4, patch_method="haar", z_channels=16, z_factor=1, num_groups=1,
    legacy_mode=False, encoder="FACTORIZED", decoder="FACTORIZED",
)
_IMAGE_BASE = dict(
    attn_resolutions=[32], channels=128, channels_mult=[2, 4, 4], dropout=0.0, in_channels=3, out_channels=3,
    num_res_blocks=2, resolution=1024, patch_size=2, patch_method="haar", z_factor=1, encoder="Default",
    decoder="Default",
)
_FSQ = dict(quantizer="FSQ", embedding_dim=6, levels=[8, 8, 8, 5, 5, 5])


def _cfg(base, **overrides):
    config = copy.deepcopy(base)
    config.update(overrides)
    return config


REFERENCE_CONFIGS = {
    # continuous video (AE, 16 latent channels)
    "CV4x8x8": _cfg(_VIDEO_BASE, name="CV", latent_channels=16, formulation="AE", temporal_compression=4,
                    spatial_compression=8, patch_size=2),
    "CV8x8x8": _cfg(_VIDEO_BASE, name="CV", latent_channels=16, formulation="AE", temporal_compression=8,
                    spatial_compression=8),
    "CV8x16x16": _cfg(_VIDEO_BASE, name="CV", latent_channels=16, formulation="AE", temporal_compression=8,
                      spatial_compression=16),
    # discrete video (FSQ, 64,000 tokens)
    "DV4x8x8": _cfg(_VIDEO_BASE, **_FSQ, name="DV", z_channels=256, temporal_compression=4, spatial_compression=8,
                    patch_size=2),
    "DV8x8x8": _cfg(_VIDEO_BASE, **_FSQ, name="DV", temporal_compression=8, spatial_compression=8),
    "DV8x16x16": _cfg(_VIDEO_BASE, **_FSQ, name="DV", temporal_compression=8, spatial_compression=16),
    # images
    "CI8x8": _cfg(_IMAGE_BASE, name="CI", z_channels=16, latent_channels=16, formulation="AE", spatial_compression=8),
    "CI16x16": _cfg(_IMAGE_BASE, name="CI", z_channels=16, latent_channels=16, formulation="AE",
                    spatial_compression=16),
    "DI8x8": _cfg(_IMAGE_BASE, **_FSQ, name="DI", z_channels=256, spatial_compression=8),
    "DI16x16": _cfg(_IMAGE_BASE, **_FSQ, name="DI", z_channels=256, spatial_compression=16),
}


def tokenizer_kind(reference_kwargs: dict) -> str:
    """'CV', 'DV', 'CI' or 'DI' from reference kwargs (by `name`, else by which fields are present)."""
    name = str(reference_kwargs.get("name", "")).upper()
    if name in ("CV", "DV", "CI", "DI"):
        return name
    discrete = "levels" in reference_kwargs or "quantizer" in reference_kwargs
    video = "temporal_compression" in reference_kwargs
    return ("D" if discrete else "C") + ("V" if video else "I")


def model_from_reference_kwargs(reference_kwargs: dict, latents_mean=None, latents_std=None):
    """Build the cosmos-hf / diffusers model that a reference tokenizer config describes (random weights)."""
    from .modeling_continuous_video import CosmosContinuousVideoTokenizer
    from .modeling_discrete_video import CosmosDiscreteVideoTokenizer
    from .modeling_image import CosmosDiscreteImageTokenizer, CosmosImageTokenizer

    kw = reference_kwargs
    kind = tokenizer_kind(kw)
    if kind != "CV" and kw.get("formulation", "AE") != "AE":
        raise ValueError(f"only the AE formulation is supported, got formulation={kw.get('formulation')!r}")
    if kw.get("quantizer", "FSQ") != "FSQ":
        raise ValueError(f"only the FSQ quantizer is supported (the released tokenizers), got {kw.get('quantizer')!r}")
    if int(kw.get("z_factor", 1)) != 1:
        raise ValueError(f"z_factor must be 1 (AE / FSQ tokenizers), got {kw.get('z_factor')}")
    if kw.get("levels") is not None and int(kw.get("embedding_dim", len(kw["levels"]))) != len(kw["levels"]):
        raise ValueError(f"embedding_dim ({kw.get('embedding_dim')}) must equal len(levels) ({len(kw['levels'])})")
    channels, mult = int(kw["channels"]), [int(m) for m in kw["channels_mult"]]
    common = dict(
        num_res_blocks=int(kw["num_res_blocks"]), attn_resolutions=tuple(kw.get("attn_resolutions", [32])),
        resolution=int(kw.get("resolution", 1024)), patch_size=int(kw.get("patch_size", 1)),
        patch_method=kw.get("patch_method", "haar"), dropout=float(kw.get("dropout", 0.0)),
        channels=channels, channels_mult=tuple(mult), in_channels=int(kw.get("in_channels", 3)),
        out_channels=int(kw.get("out_channels", 3)),
    )
    if kind == "DV":
        return CosmosDiscreteVideoTokenizer(
            **common, z_channels=int(kw["z_channels"]), levels=tuple(kw["levels"]),
            spatial_compression=int(kw["spatial_compression"]), temporal_compression=int(kw["temporal_compression"]),
            legacy_mode=bool(kw.get("legacy_mode", False)),
        )
    if kind == "DI":
        return CosmosDiscreteImageTokenizer(
            **common, z_channels=int(kw["z_channels"]), levels=tuple(kw["levels"]),
            spatial_compression=int(kw["spatial_compression"]),
        )
    if kind == "CI":
        return CosmosImageTokenizer(
            **common, z_channels=int(kw["z_channels"]), latent_channels=int(kw.get("latent_channels", kw["z_channels"])),
            spatial_compression=int(kw["spatial_compression"]),
        )
    latent_channels = int(kw.get("latent_channels", kw["z_channels"]))
    if latent_channels != int(kw["z_channels"]):
        raise ValueError(f"CV tokenizers need latent_channels == z_channels, got {latent_channels} and {kw['z_channels']}")
    return CosmosContinuousVideoTokenizer(
        in_channels=common["in_channels"], out_channels=common["out_channels"], latent_channels=latent_channels,
        encoder_block_out_channels=tuple(channels * m for m in [1, *mult]),
        decode_block_out_channels=tuple(channels * m for m in [*mult, mult[-1]]),
        attention_resolutions=common["attn_resolutions"], resolution=common["resolution"],
        num_layers=common["num_res_blocks"], patch_size=common["patch_size"], patch_type=common["patch_method"],
        spatial_compression_ratio=int(kw["spatial_compression"]),
        temporal_compression_ratio=int(kw["temporal_compression"]),
        latents_mean=latents_mean, latents_std=latents_std, legacy_mode=bool(kw.get("legacy_mode", False)),
    )


def from_config_name(name: str, **overrides):
    """A randomly initialised tokenizer from a named config, e.g. `from_config_name("DV4x8x8")`."""
    if name not in REFERENCE_CONFIGS:
        raise ValueError(f"unknown tokenizer config {name!r}; choose one of {sorted(REFERENCE_CONFIGS)}")
    return model_from_reference_kwargs(_cfg(REFERENCE_CONFIGS[name], **overrides))
