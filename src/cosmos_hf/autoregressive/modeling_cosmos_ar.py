"""The Cosmos-Predict1 autoregressive world model as a transformers causal LM.

A Llama-style decoder over discrete video tokens, numerically equal to the reference network
(cosmos_predict1/autoregressive/networks/transformer.py, PyTorch path, `pytorch_rope_version="v2"`):

- RMSNorm computed in float32 and cast back, *then* scaled by the weight;
- grouped-query attention, no biases, per-head RMSNorm on queries and keys *before* RoPE;
- 3D RoPE: each half of a head is split into t / h / w bands (head_dim 128 -> 44 / 42 / 42 channels, i.e.
  22 / 21 / 21 frequencies per half), positions are the (t, h, w) coordinates of the t-major raster, and the
  rotation is split-half (`[x1, x2] -> [-x2, x1]`, TransformerEngine style);
- YaRN per axis (temporal frequencies against the original T, the shared H/W ones against the original H), applied
  to the frequencies only (no attention-magnitude scale, as the reference's v2 RoPE);
- SwiGLU feed-forward;
- Video2World: cross-attention to `encoder_hidden_states` (T5) in every k-th layer, a 3D sin-cos absolute table
  added to the hidden state before *every* layer, and a `<bov>` token that owns position 0 (zero rotation, zero
  absolute embedding) with an input table padded to a multiple of 64 rows while the output head stays `vocab_size`;
- loss = cross-entropy + z-loss (`z_loss_coeff * mean(logsumexp(logits)^2)`).

Position tables are derived from the config (never stored in checkpoints) and computed lazily per device/dtype,
so `from_pretrained` (which builds on the meta device) and `save_pretrained` need no special handling.
"""

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, GenerationMixin, PreTrainedModel
from transformers.cache_utils import Cache
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

try:  # flex attention masks arrive prepared as a BlockMask (torch >= 2.5)
    from torch.nn.attention.flex_attention import BlockMask
except ImportError:  # pragma: no cover
    BlockMask = ()

from .configuration_cosmos_ar import CosmosARConfig

# transformers 5 renamed the output/input field `past_key_values` to `cache`; support both spellings.
_CACHE_FIELD = "cache" if "cache" in {f.name for f in fields(CausalLMOutputWithPast)} else "past_key_values"


# ---------------------------------------------------------------------------------------------------------------
# Position tables
# ---------------------------------------------------------------------------------------------------------------
def _pad_rows(table: torch.Tensor, prepend_zero_row: bool, multiple: int) -> torch.Tensor:
    if prepend_zero_row:  # <bov> sits at position 0 and gets no position signal
        table = torch.cat([table.new_zeros(1, table.shape[1]), table], dim=0)
    if multiple and table.shape[0] % multiple:
        table = torch.cat([table, table.new_zeros(multiple - table.shape[0] % multiple, table.shape[1])], dim=0)
    return table


def yarn_frequency_scale(inv_freq: torch.Tensor, scale: float, beta_fast: float, beta_slow: float, original_len: int):
    """YaRN factors as the reference computes them: 1 for fast (high) frequencies, 1/scale for slow ones, a linear
    ramp between `2*pi*beta_slow/original_len` and `2*pi*beta_fast/original_len`."""
    high_cutoff = 2 * math.pi * beta_fast / original_len
    low_cutoff = 2 * math.pi * beta_slow / original_len
    ramp = torch.clamp((inv_freq - low_cutoff) / (high_cutoff - low_cutoff), min=0, max=1)
    return (1 - ramp) / scale + ramp


def rope_3d_inverse_frequencies(config: CosmosARConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(temporal, spatial) inverse frequencies in float32, YaRN applied when configured; H and W share `spatial`."""
    dim_spatial = config.head_dim // 6 * 2
    dim_temporal = config.head_dim - 2 * dim_spatial
    spatial = 1.0 / (config.rope_theta ** (torch.arange(0, dim_spatial, 2)[: dim_spatial // 2].float() / dim_spatial))
    temporal = 1.0 / (
        config.rope_theta ** (torch.arange(0, dim_temporal, 2)[: dim_temporal // 2].float() / dim_temporal)
    )
    if config.use_yarn:
        original_t, original_h = config.yarn_original_latent_shape[0], config.yarn_original_latent_shape[1]
        args = (config.yarn_scale, config.yarn_beta_fast, config.yarn_beta_slow)
        spatial = spatial * yarn_frequency_scale(spatial, *args, original_h)
        temporal = temporal * yarn_frequency_scale(temporal, *args, original_t)
    return temporal, spatial


def rope_3d_angles(config: CosmosARConfig) -> torch.Tensor:
    """RoPE angles `[position_table_size, head_dim]` (float32); row p = position p of the t-major sequence.

    Each half of the head holds `[t-band | h-band | w-band]`; both halves are equal (split-half rotation).
    """
    t_len, h_len, w_len = config.latent_shape
    temporal, spatial = rope_3d_inverse_frequencies(config)
    coords = torch.arange(max(config.latent_shape), dtype=torch.float)
    angle_t = torch.outer(coords[:t_len], temporal)[:, None, None, :].expand(t_len, h_len, w_len, -1)
    angle_h = torch.outer(coords[:h_len], spatial)[None, :, None, :].expand(t_len, h_len, w_len, -1)
    angle_w = torch.outer(coords[:w_len], spatial)[None, None, :, :].expand(t_len, h_len, w_len, -1)
    half = torch.cat([angle_t, angle_h, angle_w], dim=-1)
    angles = torch.cat([half, half], dim=-1).reshape(t_len * h_len * w_len, config.head_dim)
    return _pad_rows(angles, config.use_bov_token, config.pad_to_multiple_of)


def _sincos_1d(dim: int, length: int) -> torch.Tensor:
    """`[length, dim]` float64: `[sin(p * w_i) | cos(p * w_i)]` with `w_i = 10000^(-i / (dim/2))`."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    angles = torch.outer(torch.arange(length, dtype=torch.float64), omega)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def abs_pos_3d_table(config: CosmosARConfig) -> torch.Tensor:
    """Absolute sin-cos table `[position_table_size, hidden_size]` in float64: channels `[t | h | w]` with h and w
    getting `hidden_size // 6 * 2` each. Cast it straight to the target dtype (as the reference does)."""
    t_len, h_len, w_len = config.latent_shape
    dim_h = config.hidden_size // 6 * 2
    dim_t = config.hidden_size - 2 * dim_h
    emb_t = _sincos_1d(dim_t, t_len)[:, None, None, :].expand(t_len, h_len, w_len, -1)
    emb_h = _sincos_1d(dim_h, h_len)[None, :, None, :].expand(t_len, h_len, w_len, -1)
    emb_w = _sincos_1d(dim_h, w_len)[None, None, :, :].expand(t_len, h_len, w_len, -1)
    table = torch.cat([emb_t, emb_h, emb_w], dim=-1).reshape(t_len * h_len * w_len, config.hidden_size)
    return _pad_rows(table, config.use_bov_token, config.pad_to_multiple_of)


class CosmosARPositionTables(nn.Module):
    """Holds the 3D RoPE cos/sin and the absolute table, built on first use for each (device, dtype)."""

    def __init__(self, config: CosmosARConfig):
        super().__init__()
        self.config = config
        self.table_size = config.position_table_size
        self._cache = {}

    def _get(self, name: str, device, dtype) -> torch.Tensor:
        key = (name, str(device), dtype)
        if key not in self._cache:
            if name in ("cos", "sin"):
                angles = rope_3d_angles(self.config)
                # cos/sin in float32 first, then cast: the reference's order, for bf16 parity.
                table = (angles.cos() if name == "cos" else angles.sin()).to(dtype)
            else:
                table = abs_pos_3d_table(self.config)
                if self.config.abs_pos_emb_dtype == "bfloat16":
                    table = table.to(torch.bfloat16)  # the unmodified reference's rounding
                table = table.to(dtype)
            self._cache[key] = table.to(device)
        return self._cache[key]

    def rope(self, position_ids: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin of shape `[B, L, 1, head_dim]` for `position_ids` `[B, L]`."""
        device = position_ids.device
        return (
            self._get("cos", device, dtype)[position_ids].unsqueeze(2),
            self._get("sin", device, dtype)[position_ids].unsqueeze(2),
        )

    def absolute(self, position_ids: torch.Tensor, dtype) -> torch.Tensor:
        """Absolute embeddings `[B, L, hidden_size]`."""
        return self._get("abs", position_ids.device, dtype)[position_ids]

    def _apply(self, fn, *args, **kwargs):
        self._cache = {}  # .to()/.cuda()/.half(): rebuild lazily on the new device
        return super()._apply(fn, *args, **kwargs)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Split-half rotation `[x1, x2] -> [-x2, x1]` (TransformerEngine / v2 convention, not interleaved pairs)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_half(x) * sin


# ---------------------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------------------
class CosmosARRMSNorm(nn.Module):
    """RMSNorm normalised in float32, cast back to the input dtype, then scaled (the reference's order)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
        return normed * self.weight


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
):
    """Plain attention in PyTorch ops (`config._attn_implementation="eager"`): query `[B, heads, L, D]`, key/value
    `[B, kv_heads, S, D]`, `attention_mask` additive `[B or 1, 1, L, S]` (as transformers' eager masks) or None.
    Returns the output `[B, L, heads, D]` and the attention weights."""
    key = key.repeat_interleave(module.num_key_value_groups, dim=1)
    value = value.repeat_interleave(module.num_key_value_groups, dim=1)
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class CosmosARAttention(nn.Module):
    """Grouped-query attention with optional QK-norm; self-attention (3D RoPE, KV cache) or cross-attention (T5).

    The attention product itself is transformers' (`ALL_ATTENTION_FUNCTIONS[config._attn_implementation]`: "sdpa" by
    default, "eager", "flex_attention"), so masks come from transformers' mask utilities in the matching format.
    """

    def __init__(self, config: CosmosARConfig, layer_idx: int, is_cross_attention: bool = False):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.is_cross_attention = is_cross_attention
        self.is_causal = not is_cross_attention  # read by transformers' sdpa / flex functions
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_kv_heads
        self.head_dim = config.head_dim
        self.scale = 1.0 / math.sqrt(self.head_dim)
        kv_input_dim = config.cross_attention_dim if is_cross_attention else config.hidden_size
        self.q_proj = nn.Linear(config.hidden_size, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(kv_input_dim, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(kv_input_dim, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=False)
        if config.use_qk_norm:
            self.q_norm = CosmosARRMSNorm(self.head_dim, config.qk_norm_eps)
            self.k_norm = CosmosARRMSNorm(self.head_dim, config.qk_norm_eps)
        else:
            self.q_norm = self.k_norm = None
        self._text_kv_memo = None  # cross-attention: K/V of the last text context (inference only)

    def _project_kv(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length, _ = source.shape
        key = self.k_proj(source).view(batch, length, self.num_kv_heads, self.head_dim)
        value = self.v_proj(source).view(batch, length, self.num_kv_heads, self.head_dim)
        if self.k_norm is not None:
            key = self.k_norm(key)
        return key, value

    def _text_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention K/V, reused across decoding steps while the *same* context tensor (same object, not
        modified in place) comes back and weights are unchanged: recomputing them for 512 T5 tokens every step would
        cost more than the rest of the layer. Never reused while autograd is recording."""
        if torch.compiler.is_compiling():  # a compiled step cannot keep Python-side state: recompute
            return self._project_kv(context.to(self.k_proj.weight.dtype))
        signature = (context._version, self.k_proj.weight._version, self.v_proj.weight._version)
        memo = self._text_kv_memo
        if memo is not None and not torch.is_grad_enabled() and memo[0]() is context and memo[1] == signature:
            return memo[2], memo[3]
        key, value = self._project_kv(context.to(self.k_proj.weight.dtype))
        self._text_kv_memo = None if torch.is_grad_enabled() else (weakref.ref(context), signature, key, value)
        return key, value

    def _apply(self, fn, *args, **kwargs):
        self._text_kv_memo = None
        return super()._apply(fn, *args, **kwargs)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: Cache | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch, length, _ = hidden_states.shape
        query = self.q_proj(hidden_states).view(batch, length, self.num_heads, self.head_dim)
        if self.q_norm is not None:  # QK-norm comes before the rotation
            query = self.q_norm(query)
        if self.is_cross_attention:
            key, value = self._text_kv(encoder_hidden_states)
        else:
            key, value = self._project_kv(hidden_states)
            cos, sin = rope
            query, key = apply_rotary(query, cos, sin), apply_rotary(key, cos, sin)
        query, key, value = (t.transpose(1, 2) for t in (query, key, value))  # [B, heads, L, D]
        if cache is not None and not self.is_cross_attention:
            key, value = cache.update(key, value, self.layer_idx)
        attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        out, _ = attention_interface(
            self, query, key, value, attention_mask, scaling=self.scale, dropout=0.0, is_causal=self.is_causal
        )
        return self.o_proj(out.reshape(batch, length, self.num_heads * self.head_dim))


class CosmosARMLP(nn.Module):
    """SwiGLU: `down(silu(gate(x)) * up(x))` (reference w1 = gate, w3 = up, w2 = down)."""

    def __init__(self, config: CosmosARConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class CosmosARDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: self-attention, optional cross-attention, SwiGLU, each with a residual.

    A `GradientCheckpointingLayer`: after `model.gradient_checkpointing_enable()` (training, grad enabled) its
    activations are recomputed in the backward pass instead of stored; the KV cache is then switched off.
    """

    def __init__(self, config: CosmosARConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = CosmosARRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = CosmosARAttention(config, layer_idx)
        if config.has_cross_attention(layer_idx):
            self.cross_attn_layernorm = CosmosARRMSNorm(config.hidden_size, config.rms_norm_eps)
            self.cross_attn = CosmosARAttention(config, layer_idx, is_cross_attention=True)
        else:
            self.cross_attn_layernorm = self.cross_attn = None
        self.post_attention_layernorm = CosmosARRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = CosmosARMLP(config)

    def forward(self, hidden_states, attention_mask=None, rope=None, cache=None, encoder_hidden_states=None,
                encoder_attention_mask=None):
        hidden_states = hidden_states + self.self_attn(
            self.input_layernorm(hidden_states), attention_mask=attention_mask, rope=rope, cache=cache
        )
        if self.cross_attn is not None:
            if encoder_hidden_states is None:
                raise ValueError(
                    "this model has cross-attention layers (Video2World): pass encoder_hidden_states "
                    "[batch, text_len, cross_attention_dim] (e.g. T5 embeddings)"
                )
            hidden_states = hidden_states + self.cross_attn(
                self.cross_attn_layernorm(hidden_states),
                attention_mask=encoder_attention_mask,
                encoder_hidden_states=encoder_hidden_states,
            )
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states))


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------
class CosmosARPreTrainedModel(PreTrainedModel):
    config_class = CosmosARConfig
    config: CosmosARConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _no_split_modules = ["CosmosARDecoderLayer"]
    supports_gradient_checkpointing = True
    _supports_cache_class = True
    _supports_sdpa = True
    _supports_flex_attn = True
    # the one-token decoding step (static cache, 4D mask from generate()) compiles without graph breaks
    _can_compile_fullgraph = True

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, CosmosARRMSNorm):
            nn.init.ones_(module.weight)


def allowed_keys_mask_function(allowed: torch.Tensor, query_offset) -> Callable:
    """A transformers mask function (`and_mask_function`) from a boolean "may attend" matrix `allowed`
    `[B, 1, L, kv_length]` whose rows are the `L` new queries (absolute query index `query_offset + row`), e.g.
    Medusa's tree attention where each candidate sees the cache and its own ancestors only."""

    def inner(batch_idx, head_idx, q_idx, kv_idx):
        return allowed[batch_idx, 0, q_idx - query_offset, kv_idx]

    return inner


class CosmosARModel(CosmosARPreTrainedModel):
    """The decoder stack (embeddings, layers, final norm) returning hidden states."""

    def __init__(self, config: CosmosARConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.embedding_vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([CosmosARDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = CosmosARRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.position_tables = CosmosARPositionTables(config)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def _check_token_ids(self, input_ids: torch.Tensor):
        vocab, bov = self.config.vocab_size, self.config.bov_token_id
        bad = (input_ids < 0) | (input_ids >= vocab)
        if bov is not None:
            bad &= input_ids != bov
        if bool(bad.any()):
            value = int(input_ids[bad][0])
            valid = f"0..{vocab - 1} (video tokens)" + (f" and {bov} (<bov>)" if bov is not None else "")
            raise ValueError(f"token id {value} out of range: valid ids are {valid}")

    def _check_positions(self, position_ids: torch.Tensor):
        limit = self.position_tables.table_size
        if bool((position_ids < 0).any()) or bool((position_ids >= limit).any()):
            raise ValueError(
                f"position ids must lie in [0, {limit}): the 3D position tables cover latent_shape "
                f"{self.config.latent_shape}" + (" plus <bov>" if self.config.use_bov_token else "")
                + f" padded to a multiple of {self.config.pad_to_multiple_of}; got max {int(position_ids.max())}"
            )

    def _self_attention_mask(self, attention_mask, inputs_embeds, cache, past, kv_length):
        """Self-attention mask in the format of `config._attn_implementation` (None, bool, additive or BlockMask),
        built by transformers' `create_causal_mask`: causal in cache order, minus padded keys (2D mask), or a 4D
        "may attend" mask intersected with it. Position ids play no part: they index the 3D tables, not the order."""
        batch, length = inputs_embeds.shape[:2]
        if isinstance(attention_mask, BlockMask):  # prepared by generate() for flex attention
            return attention_mask
        if attention_mask is not None and attention_mask.dim() == 4:
            keys = attention_mask.shape[-1]
            if attention_mask.shape[0] not in (1, batch) or attention_mask.shape[1:3] != (1, length) or (
                not torch.compiler.is_compiling() and keys not in (past + length, kv_length)
            ):
                raise ValueError(
                    f"a 4D attention_mask must be [batch or 1, 1, length, past + length] = [{batch}, 1, {length}, "
                    f"{int(past) + length}] (or [.., {kv_length}] for a static cache), got "
                    f"{tuple(attention_mask.shape)}"
                )
            if attention_mask.dtype.is_floating_point:
                # an additive mask, prepared for this attention implementation (generate() with a static cache)
                return attention_mask
            prepared_by_generate = getattr(cache, "is_compileable", False) and keys == kv_length
            sdpa = self.config._attn_implementation == "sdpa"
            if attention_mask.dtype == torch.bool and prepared_by_generate and sdpa:
                return attention_mask  # already sdpa's format (generate() with a static cache)
            allowed = attention_mask.bool().expand(batch, -1, -1, -1)
            if keys < kv_length:  # a static cache's unused tail: never attended
                allowed = F.pad(allowed, (0, kv_length - keys), value=False)
            if self.config._attn_implementation in ("sdpa", "eager"):
                # the formats of transformers' sdpa_mask / eager_mask, built directly: a mask function goes through
                # vmap, 300x slower than this (2.6 ms a Medusa step on the nano model)
                device = inputs_embeds.device
                causal = torch.arange(kv_length, device=device) <= (torch.arange(length, device=device) + past)[:, None]
                allowed = allowed & causal
                if self.config._attn_implementation == "sdpa":
                    return allowed
                min_value = torch.finfo(inputs_embeds.dtype).min
                return torch.zeros(allowed.shape, dtype=inputs_embeds.dtype, device=device).masked_fill(~allowed,
                                                                                                       min_value)
            return create_causal_mask(  # e.g. flex attention's BlockMask
                config=self.config,
                inputs_embeds=inputs_embeds,
                attention_mask=None,
                cache=cache,
                and_mask_function=allowed_keys_mask_function(allowed, past),
            )
        compiling = torch.compiler.is_compiling()
        if attention_mask is not None and (
            attention_mask.dim() != 2 or (not compiling and attention_mask.shape[1] != past + length)
        ):
            raise ValueError(
                f"attention_mask must be [batch, past + length] = [{batch}, {int(past) + length}] (or 4D "
                f"[batch, 1, length, past + length]), got {tuple(attention_mask.shape)}"
            )
        return create_causal_mask(
            config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=cache
        )

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ):
        r"""
        Args:
            input_ids (`torch.LongTensor` `[B, L]`): video token ids (0..vocab_size-1) and, for Video2World, `<bov>`.
            attention_mask (`torch.Tensor` `[B, past + L]` or `[B, 1, L, past + L]`, *optional*): 2D: 1 for real
                tokens, 0 for (left) padding, combined with the causal mask. 4D boolean (or 0/1 integer): True / 1
                where query `i` may attend to key `j` (e.g. Medusa's tree attention, where candidates see only their
                ancestors), intersected with the causal mask. 4D floating point: an additive mask already prepared for
                `config._attn_implementation` (what `generate()` passes with a static cache), used as is. With a
                `StaticCache` the key dimension may also be the cache's `max_cache_len`.
            position_ids (`torch.LongTensor` `[B, L]`, *optional*): index into the t-major 3D position tables;
                defaults to `past + arange(L)`.
            cache (`Cache`, *optional*): transformers KV cache: `DynamicCache`, or a preallocated `StaticCache` (for
                `torch.compile`; `generate(..., cache_implementation="static")` builds one).
            encoder_hidden_states (`torch.Tensor` `[B, S, cross_attention_dim]`, *optional*): text embeddings for
                the cross-attention layers (required when the config has them).
            encoder_attention_mask (`torch.Tensor` `[B, S]`, *optional*): True / 1 where the text token is valid.
            output_hidden_states (`bool`, *optional*): also return the hidden state entering each layer (after the
                absolute embedding, if any) plus the final normed one.
        """
        if cache is None:
            cache = past_key_values
        use_cache = self.config.use_cache if use_cache is None else use_cache
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if input_ids is not None:
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must be [batch, length], got shape {tuple(input_ids.shape)}")
            if not torch.compiler.is_compiling():
                self._check_token_ids(input_ids)
            inputs_embeds = self.embed_tokens(input_ids)
        batch, length, _ = inputs_embeds.shape
        device = inputs_embeds.device
        if not use_cache:
            cache = None
        elif cache is None:
            cache = DynamicCache()
        compiling = torch.compiler.is_compiling()
        # cache entries already written: an int for a DynamicCache, a 0-dim tensor for a StaticCache (so that a
        # compiled decoding step does not recompile for every new position)
        past = cache.get_seq_length() if cache is not None else 0
        # keys the attention sees: past + L, or the whole preallocated buffer of a StaticCache
        kv_length = cache.get_mask_sizes(length, 0)[0] if cache is not None else length
        if not compiling and cache is not None and cache.get_max_length(0) > 0 and past + length > kv_length:
            raise ValueError(
                f"the static KV cache holds {kv_length} positions; {int(past)} are used and {length} more were fed "
                "(allocate it with max_cache_len >= prompt + new tokens)"
            )

        if position_ids is None:
            position_ids = (torch.arange(length, device=device) + past).unsqueeze(0).expand(batch, -1)
        if not compiling:  # data-dependent checks would break the compiled graph; the eager prefill ran them
            self._check_positions(position_ids)

        self_mask = self._self_attention_mask(attention_mask, inputs_embeds, cache, past, kv_length)
        cross_mask = None
        if encoder_hidden_states is not None:
            if encoder_hidden_states.dim() != 3 or encoder_hidden_states.shape[-1] != self.config.cross_attention_dim:
                raise ValueError(
                    f"encoder_hidden_states must be [batch, text_len, {self.config.cross_attention_dim}], "
                    f"got {tuple(encoder_hidden_states.shape)}"
                )
            if encoder_attention_mask is not None:
                cross_mask = create_bidirectional_mask(
                    config=self.config,
                    inputs_embeds=inputs_embeds,
                    attention_mask=encoder_attention_mask,
                    encoder_hidden_states=encoder_hidden_states,
                )

        rope = self.position_tables.rope(position_ids, inputs_embeds.dtype)
        abs_pos = (
            self.position_tables.absolute(position_ids, inputs_embeds.dtype) if self.config.use_abs_pos_emb else None
        )
        hidden_states = inputs_embeds
        all_hidden = () if output_hidden_states else None
        for layer in self.layers:
            if abs_pos is not None:  # added before every layer, not only the first
                hidden_states = hidden_states + abs_pos
            if output_hidden_states:
                all_hidden += (hidden_states,)
            hidden_states = layer(  # keywords: gradient checkpointing drops `cache` by name
                hidden_states,
                attention_mask=self_mask,
                rope=rope,
                cache=cache,
                encoder_hidden_states=encoder_hidden_states,
                encoder_attention_mask=cross_mask,
            )
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            all_hidden += (hidden_states,)
        output = BaseModelOutputWithPast(
            last_hidden_state=hidden_states, hidden_states=all_hidden, **{_CACHE_FIELD: cache}
        )
        return output if return_dict else output.to_tuple()


class CosmosARMedusaHead(nn.Module):
    """One Medusa head: `num_layers` residual blocks `x + silu(W x)` and its own vocabulary projection."""

    def __init__(self, config: CosmosARConfig):
        super().__init__()
        self.blocks = nn.ModuleList(
            [nn.Linear(config.hidden_size, config.hidden_size, bias=False) for _ in range(config.medusa_num_layers)]
        )
        self.proj = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            hidden_states = hidden_states + F.silu(block(hidden_states))
        return self.proj(hidden_states)


def compute_medusa_loss(medusa_logits: torch.Tensor, labels: torch.Tensor, decay: float = 0.8) -> torch.Tensor:
    """Medusa training loss: head k (1-based) at position t predicts token t + 1 + k; head losses weighted
    `decay**k` as in the Medusa paper. `medusa_logits` `[K, B, L, V]`, `labels` `[B, L]` (-100 = ignore)."""
    loss = medusa_logits.new_zeros((), dtype=torch.float32)
    for k, head_logits in enumerate(medusa_logits, start=1):
        shifted = head_logits[:, : -(k + 1)].float()
        if shifted.shape[1] == 0:
            continue
        target = labels[:, k + 1 :]
        loss = loss + decay**k * F.cross_entropy(
            shifted.reshape(-1, shifted.shape[-1]), target.reshape(-1), ignore_index=-100
        )
    return loss


@dataclass
class CosmosARCausalLMOutput(CausalLMOutputWithPast):
    """`CausalLMOutputWithPast` plus the loss terms and, with Medusa heads, their logits `[heads, B, L, vocab]`."""

    ce_loss: torch.Tensor | None = None
    z_loss: torch.Tensor | None = None
    medusa_loss: torch.Tensor | None = None
    medusa_logits: torch.Tensor | None = None


class CosmosARForCausalLM(CosmosARPreTrainedModel, GenerationMixin):
    """Decoder + output head (`vocab_size` rows) with z-loss, KV-cache `generate()` and optional Medusa heads."""

    def __init__(self, config: CosmosARConfig):
        super().__init__(config)
        self.model = CosmosARModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.medusa_heads = (
            nn.ModuleList([CosmosARMedusaHead(config) for _ in range(config.medusa_num_heads)])
            if config.medusa_num_heads
            else None
        )
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """Next-token cross-entropy (labels == -100 ignored) plus z-loss over every predicted position.

        As in the reference, the z-loss averages over all positions (ignored labels included); only padding
        (attention_mask == 0), which the reference never has, is left out. Returns (total, ce, z).
        """
        logits = logits[:, :-1].float()
        targets = labels[:, 1:]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        log_z = torch.logsumexp(logits, dim=-1)
        if attention_mask is not None:
            keep = attention_mask[:, -log_z.shape[1] - 1 : -1].bool()
            z = (log_z[keep] ** 2).mean()
        else:
            z = (log_z**2).mean()
        z = self.config.z_loss_coeff * z
        return ce + z, ce, z

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
        output_medusa_logits: bool = False,
        past_key_values: Cache | None = None,
        **kwargs,
    ):
        r"""
        Args:
            labels (`torch.LongTensor` `[B, L]`, *optional*): usually `input_ids` (shifted inside); -100 = ignore.
            logits_to_keep (`int`): compute logits for the last N positions only (0 = all).
            output_medusa_logits (`bool`): also return the Medusa heads' logits (`medusa_logits`).
            See [`CosmosARModel.forward`] for the other arguments.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,
            inputs_embeds=inputs_embeds,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        hidden_states = outputs.last_hidden_state
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]
        logits = self.lm_head(hidden_states)

        medusa_logits = None
        if self.medusa_heads is not None and (output_medusa_logits or labels is not None):
            medusa_logits = torch.stack([head(hidden_states) for head in self.medusa_heads])

        loss = ce = z = medusa_loss = None
        if labels is not None:
            if attention_mask is not None and attention_mask.dim() != 2:
                raise ValueError("labels need a 2D padding attention_mask [batch, length] (or none), not a 4D mask")
            loss, ce, z = self.compute_loss(logits, labels, attention_mask)
            if medusa_logits is not None:
                medusa_loss = compute_medusa_loss(medusa_logits, labels)
                loss = loss + medusa_loss

        output = CosmosARCausalLMOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            ce_loss=ce,
            z_loss=z,
            medusa_loss=medusa_loss,
            medusa_logits=medusa_logits if output_medusa_logits else None,
            **{_CACHE_FIELD: getattr(outputs, _CACHE_FIELD)},
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "CosmosARModel",
    "CosmosARForCausalLM",
    "CosmosARPreTrainedModel",
    "compute_medusa_loss",
    "rope_3d_angles",
    "abs_pos_3d_table",
]
