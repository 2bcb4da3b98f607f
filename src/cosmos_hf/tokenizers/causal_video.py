"""Whole-clip and streaming execution of Cosmos causal 3D tokenizer encoders/decoders.

The parameters live in diffusers' Cosmos modules (`CosmosEncoder3d` / `CosmosDecoder3d`, shared by diffusers'
`AutoencoderKLCosmos` and our `CosmosDiscreteVideoTokenizer`). This file walks those module trees with its own
forward functions for three reasons diffusers' forwards cannot serve:

1. Streaming. Every temporal operation in the network is causal, so a long video can be processed chunk by chunk:
   each causal conv keeps the last `kernel - stride` frames of its input, each temporal attention keeps its keys and
   values, and the first-frame rules (haar patcher repetition, replication padding, temporal-upsampling drop) are
   applied only to the first chunk. The result equals whole-clip execution up to float rounding
   (tests/test_tokenizers_streaming.py states the tolerance), with activation memory set by the chunk length.
2. bfloat16 on the CPU. `avg_pool3d` has no bf16 CPU kernel; the pooling here is done with 2D pooling / reshapes.
3. Speed. Activations stay channels-last (B, T, H, W, C in memory), so convolutions that are purely spatial
   (kernel 1x3x3) or purely temporal (3x1x1) run as 2D convolutions on free reshapes, on oneDNN's fast path.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..utils import cpu_has_native_bf16


# oneDNN runs bf16 convolutions natively only on CPUs with AVX512-BF16 / AMX; elsewhere PyTorch falls back to an
# emulated kernel about 8x slower than fp32. There, bf16 models keep bf16 activations and weights (the memory saving)
# but each convolution computes in fp32.
NATIVE_BF16_CONV = cpu_has_native_bf16() or torch.cuda.is_available()


def _conv2d(x, weight, bias, **kwargs):
    if x.dtype == torch.bfloat16 and x.device.type == "cpu" and not NATIVE_BF16_CONV:
        bias = None if bias is None else bias.float()
        return F.conv2d(x.float(), weight.float(), bias, **kwargs).to(torch.bfloat16)
    return F.conv2d(x, weight, bias, **kwargs)


@contextmanager
def module_weights(module):
    """Make `module`'s own weights usable while this file reads them directly (it never calls `module.forward`).

    accelerate's sequential CPU offload (`pipe.enable_sequential_cpu_offload()`) keeps every weight on the meta device
    and loads it in a hook around `forward`; here that hook's pre/post steps run around the read instead."""
    hook = getattr(module, "_hf_hook", None)
    if hook is None:
        yield
        return
    hook.pre_forward(module)
    try:
        yield
    finally:
        hook.post_forward(module, None)


@dataclass
class CausalStreamState:
    """Caches carried from one chunk to the next for one encoder or decoder pass.

    `more_chunks_follow` must be set for the first chunk of a multi-chunk decode: the decoder's temporal upsampling
    rule depends on whether the latent has more than one frame, which a 1-frame first chunk cannot see.
    """

    first_chunk: bool = True
    more_chunks_follow: bool = False
    conv_cache: dict = field(default_factory=dict)
    attention_cache: dict = field(default_factory=dict)


def _frames_2d(x):
    """[B, C, T, H, W] -> [B*T, C, H, W] (a view-friendly frame batch)."""
    batch, channels, frames, height, width = x.shape
    return x.transpose(1, 2).reshape(batch * frames, channels, height, width), batch


def _frames_3d(x, batch):
    """[B*T, C, H, W] -> [B, C, T, H, W]."""
    frames = x.shape[0] // batch
    return x.reshape(batch, frames, *x.shape[1:]).transpose(1, 2)


def causal_conv(conv, x, state: CausalStreamState | None = None):
    """Apply a `CosmosCausalConv3d` with replicate-first-frame causal padding (or the streamed cache)."""
    with module_weights(conv):
        return _causal_conv(conv, x, state)


def _store_weight_channels_last(conv):
    """Keep a CPU conv weight channels-last, like the activations it meets.

    oneDNN convolves a channels-last input with a channels-last weight and reorders any other weight on every call:
    for a 512x512x3x3 kernel on a small frame that copy cost about a third of the convolution itself. Converting the
    stored weight once removes it. Values, `state_dict()` and saved files are unchanged (only the memory layout of
    the parameter differs). A weight that an offload hook swaps in on every call is converted per call instead, so
    that offloaded and resident models compute bit-identical outputs.
    """
    weight = conv.weight
    if weight.device.type != "cpu" or weight.dim() != 5 or weight.is_contiguous(memory_format=torch.channels_last_3d):
        return weight
    if getattr(conv, "_hf_hook", None) is not None:
        return weight.contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        weight.data = weight.data.contiguous(memory_format=torch.channels_last_3d)
    return weight


def _prepend_frames(previous, x):
    """torch.cat([previous, x], dim=2) that stays channels-last (cat of an expanded first frame would not)."""
    out = torch.empty(*x.shape[:2], previous.shape[2] + x.shape[2], *x.shape[3:], dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last_3d)
    out[:, :, : previous.shape[2]] = previous
    out[:, :, previous.shape[2] :] = x
    return out


def _causal_conv(conv, x, state):
    # Channels-last (B, T, H, W, C in memory) lets the frame and temporal reshapes below be free views and puts
    # oneDNN on its fast convolution path; a no-op when the input already is.
    x = x.contiguous(memory_format=torch.channels_last_3d)
    pad = conv.temporal_pad
    if pad > 0:
        cached = state.conv_cache.get(id(conv)) if state is not None else None
        previous = cached if cached is not None else x[:, :, :1].expand(-1, -1, pad, -1, -1)
        x = _prepend_frames(previous, x)
        if state is not None:
            state.conv_cache[id(conv)] = x[:, :, -pad:]
    kt, kh, kw = conv.kernel_size
    st, sh, sw = conv.stride
    spatial_pad = conv.spatial_pad[0]
    weight, bias = _store_weight_channels_last(conv), conv.bias
    if kt == 1 and st == 1:
        # Purely spatial: a 2D conv over the batch of frames.
        frames, batch = _frames_2d(x)
        if conv.pad_mode != "constant" and spatial_pad:
            frames = F.pad(frames, conv.spatial_pad, mode=conv.pad_mode)
            spatial_pad = 0
        out = _conv2d(frames, weight[:, :, 0], bias, stride=(sh, sw), padding=spatial_pad)
        return _frames_3d(out, batch)
    if kh == 1 and kw == 1 and sh == 1 and sw == 1 and spatial_pad == 0:
        # Purely temporal: a (kt x 1) 2D conv over [B, C, T, H*W].
        batch, channels, frames, height, width = x.shape
        out = _conv2d(x.reshape(batch, channels, frames, height * width), weight[..., 0], bias, stride=(st, 1))
        return out.reshape(batch, out.shape[1], out.shape[2], height, width)
    x = F.pad(x, (*conv.spatial_pad, 0, 0), mode=conv.pad_mode, value=0.0)
    return F.conv3d(x, weight, bias, stride=conv.stride, dilation=conv.dilation)


def frame_norm(norm, x):
    """`CosmosCausalGroupNorm`: GroupNorm per frame when num_groups == 1 (the reference's choice), else over T too."""
    with module_weights(norm.norm):
        if norm.num_groups == 1:
            frames, batch = _frames_2d(x)
            out = F.group_norm(frames, 1, norm.norm.weight, norm.norm.bias, norm.norm.eps)
            return _frames_3d(out, batch)
        return F.group_norm(x, norm.num_groups, norm.norm.weight, norm.norm.bias, norm.norm.eps)


def conv_projection(projection, x, state):
    """`CosmosConvProjection3d`: 1x3x3 spatial conv then 3x1x1 causal temporal conv."""
    return causal_conv(projection.conv_t, causal_conv(projection.conv_s, x, state), state)


def resnet_block(block, x, state):
    residual = x if isinstance(block.conv_shortcut, torch.nn.Identity) else causal_conv(block.conv_shortcut, x, state)
    h = conv_projection(block.conv1, F.silu(frame_norm(block.norm1, x)), state)
    h = block.dropout(F.silu(frame_norm(block.norm2, h)))
    return conv_projection(block.conv2, h, state) + residual


def spatial_attention(attn, x):
    """Per-frame self-attention over H*W positions (single head, as in the reference)."""
    batch, channels, frames, height, width = x.shape
    h = frame_norm(attn.norm, x)
    q, k, v = (causal_conv(proj, h) for proj in (attn.to_q, attn.to_k, attn.to_v))

    def tokens(t):  # [B, C, T, H, W] -> [B*T, heads, H*W, C/heads]
        t = t.permute(0, 2, 3, 4, 1).reshape(batch * frames, height * width, channels)
        return t.unflatten(2, (attn.num_attention_heads, -1)).transpose(1, 2)

    out = F.scaled_dot_product_attention(tokens(q), tokens(k), tokens(v))
    out = out.transpose(1, 2).reshape(batch, frames, height, width, channels).permute(0, 4, 1, 2, 3)
    return x + causal_conv(attn.to_out[0], out)


def temporal_attention(attn, x, state):
    """Causal self-attention over time at each spatial position; streams by caching keys and values."""
    batch, channels, frames, height, width = x.shape
    h = frame_norm(attn.norm, x)
    q, k, v = (causal_conv(proj, h) for proj in (attn.to_q, attn.to_k, attn.to_v))

    def tokens(t):  # [B, C, T, H, W] -> [B*H*W, heads, T, C/heads]
        t = t.permute(0, 3, 4, 2, 1).reshape(batch * height * width, t.shape[2], channels)
        return t.unflatten(2, (attn.num_attention_heads, -1)).transpose(1, 2)

    q, k, v = tokens(q), tokens(k), tokens(v)
    past = 0
    if state is not None:
        cached = state.attention_cache.get(id(attn))
        if cached is not None:
            past = cached[0].shape[2]
            k, v = torch.cat([cached[0], k], dim=2), torch.cat([cached[1], v], dim=2)
        state.attention_cache[id(attn)] = (k, v)
    # query i (global frame past+i) sees keys 0..past+i
    mask = torch.ones(frames, past + frames, dtype=torch.bool, device=x.device).tril(diagonal=past)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = out.transpose(1, 2).reshape(batch, height, width, frames, channels).permute(0, 4, 3, 1, 2)
    return x + causal_conv(attn.to_out[0], out)


def _avg_pool_space(x):
    frames, batch = _frames_2d(x)
    return _frames_3d(F.avg_pool2d(frames, kernel_size=2, stride=2), batch)


def _avg_pool_time(x):
    batch, channels, frames, height, width = x.shape
    return x.reshape(batch, channels, frames // 2, 2, height, width).mean(dim=3)


def downsample(down, x, state):
    """`CosmosDownsample3d`: hybrid (strided conv + average pool) downsampling in space and/or time."""
    if not down.spatial_downsample and not down.temporal_downsample:
        return x
    if down.spatial_downsample:
        x = F.pad(x, (0, 1, 0, 1, 0, 0))
        x = causal_conv(down.conv1, x, state) + _avg_pool_space(x[..., :-1, :-1])
    if down.temporal_downsample:
        if state is None or state.first_chunk:
            x = torch.cat([x[:, :, :1], x], dim=2)  # replication pad: frame 0 becomes its own pair
        x = causal_conv(down.conv2, x, state) + _avg_pool_time(x)
    return causal_conv(down.conv3, x, state)


def upsample(up, x, state):
    """`CosmosUpsample3d`: repeat-interleave upsampling plus a residual conv, in time and/or space."""
    if not up.spatial_upsample and not up.temporal_upsample:
        return x
    if up.temporal_upsample:
        first = state is None or state.first_chunk
        multi_frame = x.shape[2] > 1 or (state is not None and state.more_chunks_follow) or not first
        if multi_frame:
            x = x.repeat_interleave(2, dim=2)
            if first:
                x = x[:, :, 1:]  # frame 0 of a causal latent stands for a single input frame
        x = causal_conv(up.conv1, x, state) + x
    if up.spatial_upsample:
        x = x.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)
        x = causal_conv(up.conv2, x, state) + x
    return causal_conv(up.conv3, x, state)


def _blocks_forward(block, x, state):
    """A down or up block: resnets with optional spatial + causal temporal attention."""
    for resnet, attention, temp_attention in zip(block.resnets, block.attentions, block.temp_attentions):
        x = resnet_block(resnet, x, state)
        if attention is not None:
            x = spatial_attention(attention, x)
        if temp_attention is not None:
            x = temporal_attention(temp_attention, x, state)
    return x


def mid_block(mid, x, state):
    x = resnet_block(mid.resnets[0], x, state)
    for attention, temp_attention, resnet in zip(mid.attentions, mid.temp_attentions, mid.resnets[1:]):
        x = spatial_attention(attention, x)
        x = temporal_attention(temp_attention, x, state)
        x = resnet_block(resnet, x, state)
    return x


def patchify(patch_embed, x, first_chunk: bool = True):
    """Haar-wavelet (or rearrange) patching; the first frame is repeated `patch_size` times only in the first chunk."""
    p = patch_embed.patch_size
    if first_chunk:
        x = torch.cat([x[:, :, :1].repeat_interleave(p, dim=2), x[:, :, 1:]], dim=2)
    if patch_embed.patch_method == "haar":
        for _ in range(int(p).bit_length() - 1):
            x = patch_embed._dwt(x, rescale=True)
        return x
    batch, channels, frames, height, width = x.shape
    x = x.reshape(batch, channels, frames // p, p, height // p, p, width // p, p)
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6).flatten(1, 4).contiguous()


def unpatchify(unpatch, x, first_chunk: bool = True):
    p = unpatch.patch_size
    if unpatch.patch_method == "haar":
        for _ in range(int(p).bit_length() - 1):
            x = unpatch._idwt(x, rescale=True)
    else:
        x = x.unflatten(1, (-1, p, p, p)).permute(0, 1, 5, 2, 6, 3, 7, 4)
        x = x.flatten(6, 7).flatten(4, 5).flatten(2, 3)
    return x[:, :, p - 1 :] if first_chunk else x


def _down_level(block, h, state=None):
    h = _blocks_forward(block, h, state)
    return downsample(block.downsamplers[0], h, state) if block.downsamplers is not None else h


def _up_level(block, h, state=None):
    h = _blocks_forward(block, h, state)
    return upsample(block.upsamplers[0], h, state) if block.upsamplers is not None else h


def _run_level(network, level_fn, block, h, state):
    """One resolution level (or the mid block); recomputed in the backward pass instead of keeping its activations
    when diffusers' `enable_gradient_checkpointing()` set `network.gradient_checkpointing` and autograd records.
    Streamed chunks are never checkpointed: a recompute would read the stream caches after they moved on."""
    if getattr(network, "gradient_checkpointing", False) and torch.is_grad_enabled() and state is None:
        return network._gradient_checkpointing_func(lambda hidden: level_fn(block, hidden, None), h)
    return level_fn(block, h, state)


def run_encoder(encoder, x, state: CausalStreamState | None = None):
    """Run a diffusers `CosmosEncoder3d` on `x [B, 3, T, H, W]` (a whole clip, or one chunk of a stream)."""
    first = state is None or state.first_chunk
    h = patchify(encoder.patch_embed, x, first)
    h = conv_projection(encoder.conv_in, h, state)
    for block in encoder.down_blocks:
        h = _run_level(encoder, _down_level, block, h, state)
    h = _run_level(encoder, mid_block, encoder.mid_block, h, state)
    h = F.silu(frame_norm(encoder.norm_out, h))
    h = conv_projection(encoder.conv_out, h, state)
    if state is not None:
        state.first_chunk = False
    return h


def run_decoder(decoder, z, state: CausalStreamState | None = None):
    """Run a diffusers `CosmosDecoder3d` on latent `z [B, C, T', H', W']` (whole, or one chunk of a stream)."""
    first = state is None or state.first_chunk
    h = conv_projection(decoder.conv_in, z, state)
    h = _run_level(decoder, mid_block, decoder.mid_block, h, state)
    for block in decoder.up_blocks:
        h = _run_level(decoder, _up_level, block, h, state)
    h = F.silu(frame_norm(decoder.norm_out, h))
    h = conv_projection(decoder.conv_out, h, state)
    h = unpatchify(decoder.unpatch_embed, h, first)
    if state is not None:
        state.first_chunk = False
    return h


def stream_chunks(num_frames: int, first_chunk: int, chunk: int):
    """Frame ranges [(start, stop)] covering `num_frames`: a first chunk, then fixed-size chunks."""
    ranges, start = [], 0
    stop = min(first_chunk, num_frames)
    while start < num_frames:
        ranges.append((start, stop))
        start, stop = stop, min(stop + chunk, num_frames)
    return ranges


def _write_chunks(chunks, total_frames):
    """Concatenate chunk outputs along time into one preallocated tensor (no second full-size copy)."""
    out = None
    start = 0
    for chunk in chunks:
        if out is None:
            out = chunk.new_empty(*chunk.shape[:2], total_frames, *chunk.shape[3:])
        out[:, :, start : start + chunk.shape[2]] = chunk
        start += chunk.shape[2]
    if start != total_frames:
        raise RuntimeError(f"streamed {start} frames, expected {total_frames}")
    return out


def encode_streaming(encode_chunk, video, chunk_latent_frames: int, temporal_compression: int):
    """Encode `video [B,3,T,H,W]` chunk by chunk. `encode_chunk(x, state)` runs encoder (+quant conv) on one chunk.

    Chunks hold `chunk_latent_frames` latent frames: the first covers 1 + (n-1)*tc input frames, the others n*tc.
    """
    if chunk_latent_frames < 1:
        raise ValueError(f"chunk_latent_frames must be >= 1, got {chunk_latent_frames}")
    tc = temporal_compression
    state = CausalStreamState()
    ranges = stream_chunks(video.shape[2], 1 + (chunk_latent_frames - 1) * tc, chunk_latent_frames * tc)
    chunks = (encode_chunk(video[:, :, start:stop], state) for start, stop in ranges)
    return _write_chunks(chunks, 1 + (video.shape[2] - 1) // tc)


def decode_streaming(decode_chunk, latent, chunk_latent_frames: int, temporal_compression: int):
    """Decode `latent [B,C,T',H',W']` chunk by chunk with `decode_chunk(z, state)`; equals whole-clip decoding.

    Peak memory: one chunk's activations plus the output video (written in place, not concatenated).
    """
    if chunk_latent_frames < 1:
        raise ValueError(f"chunk_latent_frames must be >= 1, got {chunk_latent_frames}")
    state = CausalStreamState(more_chunks_follow=latent.shape[2] > 1)
    ranges = stream_chunks(latent.shape[2], chunk_latent_frames, chunk_latent_frames)
    chunks = (decode_chunk(latent[:, :, start:stop], state) for start, stop in ranges)
    return _write_chunks(chunks, 1 + (latent.shape[2] - 1) * temporal_compression)


class CausalStreamingMixin:
    """Streaming controls and chunk runners shared by the causal video tokenizers (CV and DV).

    The model provides `encoder`, `quant_conv`, `post_quant_conv`, `decoder` (diffusers' Cosmos modules) and
    `temporal_compression_factor`; `encode_latent` / `decode_latent` then run whole-clip or streamed.
    """

    use_streaming = False
    streaming_chunk_latent_frames = 2

    def enable_streaming(self, chunk_latent_frames: int = 2):
        """Encode/decode in causal chunks of `chunk_latent_frames` latent frames: exact, with bounded memory."""
        if chunk_latent_frames < 1:
            raise ValueError(f"chunk_latent_frames must be >= 1, got {chunk_latent_frames}")
        self.use_streaming = True
        self.streaming_chunk_latent_frames = chunk_latent_frames

    def disable_streaming(self):
        self.use_streaming = False

    def enable_tiling(self, chunk_latent_frames: int = 2, **ignored_spatial_tiling_kwargs):
        """diffusers-style name for `enable_streaming`: temporal tiling that really runs (spatial sizes unused)."""
        self.enable_streaming(chunk_latent_frames)

    def disable_tiling(self):
        self.disable_streaming()

    def _encode_chunk(self, video, state=None):
        return causal_conv(self.quant_conv, run_encoder(self.encoder, video, state), state)

    def _decode_chunk(self, latent, state=None):
        return run_decoder(self.decoder, causal_conv(self.post_quant_conv, latent, state), state)

    def encode_latent(self, video):
        """Encoder + quant conv on a validated `[B,3,T,H,W]` video (streamed when enabled)."""
        if self.use_streaming:
            return encode_streaming(self._encode_chunk, video, self.streaming_chunk_latent_frames,
                                    self.temporal_compression_factor)
        return self._encode_chunk(video)

    def decode_latent(self, latent):
        """Post-quant conv + decoder (streamed when enabled)."""
        if self.use_streaming:
            return decode_streaming(self._decode_chunk, latent, self.streaming_chunk_latent_frames,
                                    self.temporal_compression_factor)
        return self._decode_chunk(latent)
