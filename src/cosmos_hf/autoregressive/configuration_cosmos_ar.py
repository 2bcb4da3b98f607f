"""Configuration of the Cosmos-Predict1 autoregressive world foundation model (`model_type="cosmos_ar"`).

The model is a Llama-style decoder over discrete video tokens (Cosmos-Tokenize1 DV, FSQ vocabulary of 64,000
codes) laid out t-major over a latent grid `latent_shape = [T, H, W]`. Names follow transformers conventions;
`CosmosARConfig.from_reference_params` maps the reference implementation's `ModelConfig` fields onto them.
"""

import math

from transformers import PretrainedConfig

# Hyper-parameters of the released checkpoints, read from the reference configs
# (cosmos_predict1/autoregressive/configs/base/model_config.py and inference/world_generation_pipeline.py):
# 33 frames at 640x1024 through the DV8x16x16 tokenizer give a [5, 40, 64] latent grid = 12,800 tokens.
_LATENT_SHAPE_33F_640x1024 = [5, 40, 64]
_BASE_4B = dict(
    vocab_size=64000,
    hidden_size=4096,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    intermediate_size=14336,
    rms_norm_eps=1e-5,
    rope_theta=500000.0,
    latent_shape=_LATENT_SHAPE_33F_640x1024,
    use_qk_norm=True,
)
_BASE_12B = dict(
    _BASE_4B,
    hidden_size=5120,
    num_hidden_layers=40,
    # 12B: explicit head_dim 128 although 32 * 128 != 5120; RoPE extended with YaRN from a [3, 40, 64] grid.
    use_yarn=True,
    yarn_scale=2.0,
    yarn_beta_fast=4.0,
    yarn_beta_slow=1.0,
    yarn_original_latent_shape=[3, 40, 64],
)
# Video2World = base network + T5 cross-attention in every layer + absolute 3D sin-cos table + a <bov> token.
_VIDEO2WORLD = dict(
    insert_cross_attention=True,
    cross_attention_every_k_layers=1,
    cross_attention_dim=1024,
    use_abs_pos_emb=True,
    use_bov_token=True,
)
VARIANTS = {
    "4B": dict(_BASE_4B),
    "5B-Video2World": dict(_BASE_4B, **_VIDEO2WORLD),
    "12B": dict(_BASE_12B),
    "13B-Video2World": dict(_BASE_12B, **_VIDEO2WORLD),
}


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple) if multiple else value


class CosmosARConfig(PretrainedConfig):
    r"""Configuration for [`CosmosARModel`] / [`CosmosARForCausalLM`].

    Args:
        vocab_size (`int`, defaults to 64000): number of video token ids the output head predicts (FSQ codes).
        hidden_size (`int`): model width (`dim` in the reference).
        intermediate_size (`int`): SwiGLU hidden width (`ffn_hidden_size`).
        num_hidden_layers (`int`), num_attention_heads (`int`), num_key_value_heads (`int`): depth, query heads,
            key/value heads (grouped-query attention).
        head_dim (`int`, *optional*): per-head width; defaults to `hidden_size // num_attention_heads`. May differ
            from that (the 12B model uses 128 with width 5120).
        rms_norm_eps (`float`): epsilon of the block and final RMSNorms (`norm_eps`).
        qk_norm_eps (`float`, defaults to 1e-5): epsilon of the per-head query/key RMSNorms. The reference never
            forwards `norm_eps` to them, so they always use 1e-5.
        use_qk_norm (`bool`): RMSNorm on queries and keys (per head, before RoPE).
        rope_theta (`float`): RoPE base.
        latent_shape (`list[int]`): `[T, H, W]` of the token grid. Tokens are flattened t-major (t, then h, then w);
            the 3D RoPE and the absolute table are functions of these coordinates.
        pad_to_multiple_of (`int`, defaults to 64): the position tables are zero-padded to a multiple of this
            (zero angle = identity rotation, zero absolute embedding), as in the reference.
        max_position_embeddings (`int`, *optional*): largest position id + 1; defaults to the padded table length.
        use_yarn (`bool`), yarn_scale (`float`), yarn_beta_fast (`float`), yarn_beta_slow (`float`),
        yarn_original_latent_shape (`list[int]`): YaRN as the reference computes it for 3D RoPE: only the inverse
            frequencies are rescaled, the temporal ones against `original[0]`, the shared H/W ones against
            `original[1]`; the magnitude scale (mscale) is *not* applied to cos/sin.
        use_bov_token (`bool`): Video2World: a `<bov>` token (id `vocab_size`) starts the sequence. It takes position
            0 of the tables (zero RoPE angle, zero absolute embedding) and the video grid starts at position 1.
        embedding_vocab_size (`int`, *optional*): rows of the input embedding table. Defaults to `vocab_size`, or with
            `<bov>` to `vocab_size + 1` rounded up to a multiple of 64 (64,064 for the released models); the output
            head keeps `vocab_size` rows.
        insert_cross_attention (`bool`), cross_attention_every_k_layers (`int`), cross_attention_dim (`int`):
            Video2World text conditioning: layers whose index is divisible by k get a cross-attention block over
            `encoder_hidden_states` (T5-XXL embeddings, width 1024).
        use_abs_pos_emb (`bool`): add the 3D sin-cos absolute table to the hidden state before every layer.
        abs_pos_emb_dtype (`str`, defaults to `"float32"`): precision of that table. The unmodified reference builds it
            in bfloat16 (a side effect of a default argument); `"bfloat16"` reproduces that rounding exactly.
        z_loss_coeff (`float`, defaults to 1e-4): weight of the z-loss `mean(logsumexp(logits)^2)` added to the
            cross-entropy.
        medusa_num_heads (`int`, defaults to 0), medusa_num_layers (`int`, defaults to 1): Medusa speculative heads
            (0 = none). Each head is `medusa_num_layers` residual SiLU blocks plus its own vocabulary projection.
        initializer_range (`float`): std of the normal init of linear and embedding weights.
    """

    model_type = "cosmos_ar"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]

    def __init__(
        self,
        vocab_size: int = 64000,
        hidden_size: int = 4096,
        intermediate_size: int = 14336,
        num_hidden_layers: int = 16,
        num_attention_heads: int = 32,
        num_key_value_heads: int = 8,
        head_dim: int | None = None,
        rms_norm_eps: float = 1e-5,
        qk_norm_eps: float = 1e-5,
        use_qk_norm: bool = True,
        rope_theta: float = 500000.0,
        latent_shape=(5, 40, 64),
        pad_to_multiple_of: int = 64,
        max_position_embeddings: int | None = None,
        use_yarn: bool = False,
        yarn_scale: float | None = None,
        yarn_beta_fast: float | None = None,
        yarn_beta_slow: float | None = None,
        yarn_original_latent_shape=None,
        use_bov_token: bool = False,
        embedding_vocab_size: int | None = None,
        insert_cross_attention: bool = False,
        cross_attention_every_k_layers: int = 1,
        cross_attention_dim: int = 1024,
        use_abs_pos_emb: bool = False,
        abs_pos_emb_dtype: str = "float32",
        z_loss_coeff: float = 1e-4,
        medusa_num_heads: int = 0,
        medusa_num_layers: int = 1,
        initializer_range: float = 0.02,
        use_cache: bool = True,
        tie_word_embeddings: bool = False,
        **kwargs,
    ):
        self.vocab_size = int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.intermediate_size = int(intermediate_size)
        self.num_hidden_layers = int(num_hidden_layers)
        self.num_attention_heads = int(num_attention_heads)
        self.num_key_value_heads = int(num_key_value_heads if num_key_value_heads is not None else num_attention_heads)
        # before head_dim divides by num_attention_heads (0 heads was a bare ZeroDivisionError naming nothing)
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self.head_dim = int(head_dim) if head_dim is not None else self.hidden_size // self.num_attention_heads
        self.rms_norm_eps = float(rms_norm_eps)
        self.qk_norm_eps = float(qk_norm_eps)
        self.use_qk_norm = bool(use_qk_norm)
        self.rope_theta = float(rope_theta)
        self.latent_shape = [int(x) for x in latent_shape]
        if len(self.latent_shape) != 3 or min(self.latent_shape) < 1:
            raise ValueError(f"latent_shape must be [T, H, W] with positive entries, got {self.latent_shape}")
        self.pad_to_multiple_of = int(pad_to_multiple_of or 0)
        self.use_yarn = bool(use_yarn)
        self.yarn_scale = None if yarn_scale is None else float(yarn_scale)
        self.yarn_beta_fast = None if yarn_beta_fast is None else float(yarn_beta_fast)
        self.yarn_beta_slow = None if yarn_beta_slow is None else float(yarn_beta_slow)
        self.yarn_original_latent_shape = (
            None if yarn_original_latent_shape is None else [int(x) for x in yarn_original_latent_shape]
        )
        self.use_bov_token = bool(use_bov_token)
        if embedding_vocab_size is None:
            # The reference's expand_vocab(vocab + 1) rounds the new table up to a multiple of 64.
            embedding_vocab_size = _round_up(self.vocab_size + 1, 64) if self.use_bov_token else self.vocab_size
        self.embedding_vocab_size = int(embedding_vocab_size)
        self.insert_cross_attention = bool(insert_cross_attention)
        self.cross_attention_every_k_layers = int(cross_attention_every_k_layers)
        self.cross_attention_dim = int(cross_attention_dim)
        self.use_abs_pos_emb = bool(use_abs_pos_emb)
        self.abs_pos_emb_dtype = str(abs_pos_emb_dtype)
        self.z_loss_coeff = float(z_loss_coeff)
        self.medusa_num_heads = int(medusa_num_heads)
        self.medusa_num_layers = int(medusa_num_layers)
        self.initializer_range = float(initializer_range)
        self.use_cache = bool(use_cache)
        if max_position_embeddings is None:
            max_position_embeddings = self.position_table_size
        self.max_position_embeddings = int(max_position_embeddings)
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
        self._validate()

    # -- derived quantities -------------------------------------------------------------------------------------
    @property
    def num_video_tokens(self) -> int:
        """Tokens of one latent grid: T * H * W."""
        t, h, w = self.latent_shape
        return t * h * w

    @property
    def bov_token_id(self) -> int | None:
        """Id of the `<bov>` (begin-of-video) token, `vocab_size`, when the model has one."""
        return self.vocab_size if self.use_bov_token else None

    @property
    def position_table_size(self) -> int:
        """Rows of the RoPE / absolute tables: grid tokens (+1 for `<bov>`), zero-padded to `pad_to_multiple_of`."""
        return _round_up(self.num_video_tokens + int(self.use_bov_token), self.pad_to_multiple_of)

    def has_cross_attention(self, layer_idx: int) -> bool:
        return self.insert_cross_attention and layer_idx % self.cross_attention_every_k_layers == 0

    def _validate(self):
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        # 3D RoPE splits each half of the head into t/h/w bands; h and w get head_dim // 6 * 2 channels each.
        if self.head_dim % 2 or (self.head_dim - 2 * (self.head_dim // 6 * 2)) % 2 or self.head_dim < 6:
            raise ValueError(f"head_dim must be even and >= 6 for 3D RoPE, got {self.head_dim}")
        if self.use_yarn:
            missing = [
                name
                for name in ("yarn_scale", "yarn_beta_fast", "yarn_beta_slow", "yarn_original_latent_shape")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"use_yarn=True needs {', '.join(missing)}")
        if self.use_bov_token and self.embedding_vocab_size <= self.vocab_size:
            raise ValueError(
                f"embedding_vocab_size ({self.embedding_vocab_size}) must exceed vocab_size ({self.vocab_size}) "
                "to hold the <bov> token"
            )
        if self.embedding_vocab_size < self.vocab_size:
            raise ValueError(f"embedding_vocab_size ({self.embedding_vocab_size}) < vocab_size ({self.vocab_size})")
        if self.insert_cross_attention and self.cross_attention_every_k_layers < 1:
            raise ValueError(f"cross_attention_every_k_layers must be >= 1, got {self.cross_attention_every_k_layers}")
        if self.abs_pos_emb_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"abs_pos_emb_dtype must be 'float32' or 'bfloat16', got {self.abs_pos_emb_dtype!r}")
        if self.medusa_num_heads < 0 or self.medusa_num_layers < 0:
            raise ValueError("medusa_num_heads and medusa_num_layers must be >= 0")

    # -- construction helpers -----------------------------------------------------------------------------------
    @classmethod
    def from_variant(cls, variant: str, **overrides) -> "CosmosARConfig":
        """Config of a released model: one of `4B`, `5B-Video2World`, `12B`, `13B-Video2World`."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        return cls(**{**VARIANTS[variant], **overrides})

    @classmethod
    def from_reference_params(cls, params: dict, training_type: str | None = None, **overrides) -> "CosmosARConfig":
        """Map the reference `ModelConfig` fields (`dim`, `n_layers`, `video_latent_shape`, ...) onto this config.

        `training_type="text_to_video"` is the Video2World flow: a `<bov>` token is added (embedding table expanded,
        output head kept) and prepended to the position tables.
        """
        if params.get("rope_dim", "3D") != "3D":
            raise ValueError(f"only rope_dim='3D' is supported, got {params.get('rope_dim')!r}")
        if params.get("pytorch_rope_version", "v2") != "v2":
            raise ValueError("only pytorch_rope_version='v2' (split-half rotation, as TransformerEngine) is supported")
        if str(params.get("norm_type", "rmsnorm")).lower() != "rmsnorm":
            raise ValueError(f"only norm_type='rmsnorm' is supported, got {params.get('norm_type')!r}")
        if int(params.get("tensor_model_parallel_size", 1) or 1) != 1:
            raise ValueError("tensor-parallel shards must be merged into one checkpoint first")
        if params.get("video_latent_shape") is None:
            raise ValueError("reference params need video_latent_shape [T, H, W]")
        kwargs = dict(
            vocab_size=params["vocab_size"],
            hidden_size=params["dim"],
            intermediate_size=params["ffn_hidden_size"],
            num_hidden_layers=params["n_layers"],
            num_attention_heads=params["n_heads"],
            num_key_value_heads=params.get("n_kv_heads"),
            head_dim=params.get("head_dim"),
            rms_norm_eps=params.get("norm_eps", 1e-5),
            use_qk_norm=params.get("use_qk_normalization", False),
            rope_theta=params.get("rope_theta", 500000),
            latent_shape=params["video_latent_shape"],
            pad_to_multiple_of=params.get("pad_to_multiple_of") or 0,
            max_position_embeddings=params.get("max_seq_len"),
            use_yarn=bool(params.get("apply_yarn", False)),
            yarn_scale=params.get("yarn_scale"),
            yarn_beta_fast=params.get("yarn_beta_fast"),
            yarn_beta_slow=params.get("yarn_beta_slow"),
            yarn_original_latent_shape=params.get("original_latent_shape"),
            use_bov_token=training_type == "text_to_video",
            insert_cross_attention=bool(params.get("insert_cross_attn", False)),
            cross_attention_every_k_layers=params.get("insert_cross_attn_every_k_layers", 1),
            cross_attention_dim=params.get("context_dim") or 1024,
            use_abs_pos_emb=bool(params.get("apply_abs_pos_emb", False)),
        )
        if not kwargs["use_yarn"]:
            for key in ("yarn_scale", "yarn_beta_fast", "yarn_beta_slow", "yarn_original_latent_shape"):
                kwargs[key] = None
        kwargs.update(overrides)
        return cls(**kwargs)


__all__ = ["CosmosARConfig", "VARIANTS"]
