"""Cosmos-Predict1 autoregressive Video2World pipeline: input frames -> DV tokens -> next-token generation -> video.

1 (image) or more input frames (1 + k * the DV tokenizer's temporal compression, e.g. 1 or 9 for DV8x16x16) are
tokenized by the causal DV tokenizer (tokens of the first latent frames do not depend on later frames, so the
conditioning frames are tokenized alone), flattened t-major (after `<bov>` for Video2World models), continued by
`CosmosARForCausalLM` with a KV cache (greedy, temperature / top-k / top-p sampling with `generator=`, or Medusa
speculative decoding) up to the model's latent grid, then decoded by the DV tokenizer — or, when the pipeline has a
diffusion decoder (`cosmos_hf.diffusion.diffusion_decoder`), refined into CV latents and decoded by the CV tokenizer.

Video2World variants (`config.insert_cross_attention`) take a `prompt` through `text_encoder` for cross-attention.

Guardrails are on by default; `output_type="tokens"` skips the video guard and is therefore refused unless the
pipeline was built (or loaded) with `disable_safety_checker=True`. Arguments are validated in `check_inputs`.
"""

from __future__ import annotations

import numbers

import torch
from diffusers import AutoencoderKLCosmos, CosmosTransformer3DModel, DiffusionPipeline, EDMEulerScheduler
from diffusers.pipelines.cosmos.pipeline_output import CosmosPipelineOutput
from diffusers.video_processor import VideoProcessor
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

# imported so that saved folders load: diffusers resolves custom components through already-imported modules
from ..autoregressive.medusa import add_previous_frame_logit_bias
from ..autoregressive.modeling_cosmos_ar import CosmosARForCausalLM
from ..diffusion.diffusion_decoder import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS, CosmosDVTokenEmbedder
from ..diffusion.text_encoding import encode_prompts
from ..guardrails.checker import CosmosSafetyChecker, resolve_safety_checker
from ..tokenizers.modeling_discrete_video import CosmosDiscreteVideoTokenizer
from .guardrail import check_prompt_safety, guard_videos
from .hub_layout import HubLayoutMixin
from .input_checks import (
    check_generator,
    check_guardrail_coverage,
    check_number,
    check_output_type,
    preprocess_conditioning_frames,
    rgb_distance_option,
)
from .pipeline_cosmos_diffusion_decoder import CosmosDiffusionDecoderPipeline
from ..utils import warn_if_emulated_bf16
from .shared_weights import ReferencedAutoencoderKLCosmos

OUTPUT_TYPES = ("pil", "np", "pt", "tokens")
# `use_medusa=True` verifies the heads' guesses and the previous latent frame's next 16 tokens in one candidate tree
# (bench/autoregressive.py --model compares the trees; on the nano model this one is far faster than the heads
# alone); the greedy output never depends on the tree
MEDUSA_DEFAULTS = {"temporal_candidates": 16}
_DECODER_COMPONENTS = ("decoder_transformer", "decoder_token_embedder", "decoder_vae", "decoder_scheduler",
                       "decoder_text_encoder", "decoder_tokenizer")


def sample_next_tokens(logits: torch.Tensor, do_sample: bool, temperature: float = 1.0, top_k: int | None = None,
                       top_p: float | None = None, generator: torch.Generator | None = None) -> torch.LongTensor:
    """Next token per row of `logits` [B, V]: argmax, or a sample after temperature, top-k and top-p filtering."""
    if not do_sample:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    # transformers' warpers, as generate() applies them (top-k, then top-p); they never read input_ids
    if top_k:
        logits = TopKLogitsWarper(top_k)(None, logits)
    if top_p is not None and top_p < 1.0:
        logits = TopPLogitsWarper(top_p)(None, logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


class CosmosARVideo2WorldPipeline(HubLayoutMixin, DiffusionPipeline):
    r"""Video continuation with the Cosmos autoregressive world model.

    Components:
        ar_model: `CosmosARForCausalLM` (its `latent_shape` fixes the output's token grid).
        dv_tokenizer: `CosmosDiscreteVideoTokenizer` that produced the model's tokens.
        text_encoder, tokenizer: optional, for models with cross-attention (Video2World variants).
        decoder_*: optional diffusion decoder (see `CosmosDiffusionDecoderPipeline`): `decoder_transformer`,
            `decoder_token_embedder`, `decoder_vae`, `decoder_scheduler`, `decoder_text_encoder`, `decoder_tokenizer`.
    Config: `max_sequence_length` (text tokens), `decoder_max_sequence_length`, `decoder_chunk_latent_frames`,
    `decoder_chunk_blend` (the decoder's `chunk_blend`: "pixel", the reference's seams, or "latent"),
    `default_use_diffusion_decoder` (whether a call without `use_diffusion_decoder` refines with the decoder),
    `default_condition_keep_threshold` (the call default of `condition_keep_threshold`; None = off),
    `default_condition_detail_gate` (the call default of `condition_detail_gate`; None = off),
    `default_previous_frame_logit_bias` (the call default of `previous_frame_logit_bias`; None = off).
    """

    _optional_components = ["text_encoder", "tokenizer", "safety_checker", *_DECODER_COMPONENTS]
    # enable_model_cpu_offload(): the order the components first run in (the DV tokenizer's encoder comes first,
    # its decoder or the diffusion decoder last)
    model_cpu_offload_seq = ("dv_tokenizer->text_encoder->ar_model->decoder_text_encoder->decoder_token_embedder->"
                             "decoder_transformer->decoder_vae")
    _exclude_from_cpu_offload = ["safety_checker"]

    def __init__(
        self,
        ar_model: CosmosARForCausalLM,
        dv_tokenizer: CosmosDiscreteVideoTokenizer,
        text_encoder: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        decoder_transformer: CosmosTransformer3DModel | None = None,
        decoder_token_embedder: CosmosDVTokenEmbedder | None = None,
        decoder_vae: AutoencoderKLCosmos | ReferencedAutoencoderKLCosmos | None = None,
        decoder_scheduler: EDMEulerScheduler | None = None,
        decoder_text_encoder: PreTrainedModel | None = None,
        decoder_tokenizer: PreTrainedTokenizerBase | None = None,
        safety_checker: CosmosSafetyChecker | None = None,
        max_sequence_length: int = 512,
        decoder_max_sequence_length: int = 512,
        decoder_chunk_latent_frames: int | None = None,
        decoder_chunk_blend: str = "pixel",
        default_fps: int = 24,
        disable_safety_checker: bool = False,
        default_use_diffusion_decoder: bool = True,
        default_condition_keep_threshold: float | None = None,
        default_condition_detail_gate: float | None = None,
        default_previous_frame_logit_bias: float | None = None,
    ):
        super().__init__()
        # guardrails on by default (our CosmosSafetyChecker), off only with disable_safety_checker=True
        safety_checker = resolve_safety_checker(safety_checker, disable_safety_checker)
        self.register_modules(ar_model=ar_model, dv_tokenizer=dv_tokenizer, text_encoder=text_encoder,
                              safety_checker=safety_checker,
                              tokenizer=tokenizer, decoder_transformer=decoder_transformer,
                              decoder_token_embedder=decoder_token_embedder, decoder_vae=decoder_vae,
                              decoder_scheduler=decoder_scheduler, decoder_text_encoder=decoder_text_encoder,
                              decoder_tokenizer=decoder_tokenizer)
        self.register_to_config(max_sequence_length=max_sequence_length,
                                decoder_max_sequence_length=decoder_max_sequence_length,
                                decoder_chunk_latent_frames=decoder_chunk_latent_frames,
                                decoder_chunk_blend=decoder_chunk_blend, default_fps=default_fps,
                                default_use_diffusion_decoder=default_use_diffusion_decoder,
                                default_condition_keep_threshold=default_condition_keep_threshold,
                                default_condition_detail_gate=default_condition_detail_gate,
                                default_previous_frame_logit_bias=default_previous_frame_logit_bias)
        present = [name for name in _DECODER_COMPONENTS if getattr(self, name, None) is not None]
        if present and len(present) != len(_DECODER_COMPONENTS):
            missing = sorted(set(_DECODER_COMPONENTS) - set(present))
            raise ValueError(f"the diffusion decoder needs all of {list(_DECODER_COMPONENTS)}; missing {missing}")
        if ar_model.config.insert_cross_attention and (text_encoder is None or tokenizer is None):
            raise ValueError("this autoregressive model has cross-attention (Video2World): pass text_encoder and "
                             "tokenizer")
        if ar_model.config.vocab_size < dv_tokenizer.codebook_size:
            raise ValueError(f"ar_model vocab_size {ar_model.config.vocab_size} < DV tokenizer codebook "
                             f"{dv_tokenizer.codebook_size}")
        self.video_processor = VideoProcessor(vae_scale_factor=dv_tokenizer.config.spatial_compression)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_components(cls, ar_model, dv_tokenizer, text_encoder=None, tokenizer=None,
                        diffusion_decoder: CosmosDiffusionDecoderPipeline | None = None, **config):
        """Assemble from an AR model, its DV tokenizer and optionally a `CosmosDiffusionDecoderPipeline`."""
        decoder = {}
        if diffusion_decoder is not None:
            decoder = dict(decoder_transformer=diffusion_decoder.transformer,
                           decoder_token_embedder=diffusion_decoder.token_embedder,
                           decoder_vae=diffusion_decoder.vae, decoder_scheduler=diffusion_decoder.scheduler,
                           decoder_text_encoder=diffusion_decoder.text_encoder,
                           decoder_tokenizer=diffusion_decoder.tokenizer)
            config.setdefault("decoder_max_sequence_length", diffusion_decoder.config.max_sequence_length)
            config.setdefault("decoder_chunk_latent_frames", diffusion_decoder.config.chunk_latent_frames)
            config.setdefault("decoder_chunk_blend", diffusion_decoder.config.chunk_blend)
        return cls(ar_model, dv_tokenizer, text_encoder, tokenizer, **decoder, **config)

    @property
    def has_diffusion_decoder(self) -> bool:
        return getattr(self, "decoder_transformer", None) is not None

    @property
    def diffusion_decoder(self) -> CosmosDiffusionDecoderPipeline | None:
        """The decoder components as a `CosmosDiffusionDecoderPipeline` (shares the modules, copies nothing)."""
        if not self.has_diffusion_decoder:
            return None
        pipe = CosmosDiffusionDecoderPipeline(
            self.decoder_text_encoder, self.decoder_tokenizer, self.decoder_transformer, self.decoder_vae,
            self.decoder_scheduler, self.decoder_token_embedder, dv_tokenizer=self.dv_tokenizer,
            default_fps=self.config.default_fps, max_sequence_length=self.config.decoder_max_sequence_length,
            chunk_latent_frames=self.config.decoder_chunk_latent_frames,
            chunk_blend=self.config.get("decoder_chunk_blend", "pixel"),
            safety_checker=self.safety_checker, disable_safety_checker=self.safety_checker is None,
        )
        pipe.set_progress_bar_config(**getattr(self, "_progress_bar_config", {}))
        return pipe

    # ------------------------------------------------------------------ inputs
    @property
    def pixel_size(self) -> tuple[int, int]:
        _, h, w = self.ar_model.config.latent_shape
        s = self.dv_tokenizer.config.spatial_compression
        return h * s, w * s

    @property
    def num_output_frames(self) -> int:
        """Frames of the model's full token grid: 1 + (T' - 1) * temporal compression."""
        return 1 + (self.ar_model.config.latent_shape[0] - 1) * self.dv_tokenizer.config.temporal_compression

    def _conditioning_frames(self, image, video) -> torch.Tensor:
        """Input -> float [B, 3, T, H, W] in [-1, 1] at the model's pixel size, with a valid frame count."""
        height, width = self.pixel_size
        frames = preprocess_conditioning_frames(self.video_processor, image, video, height, width)
        temporal, total = self.dv_tokenizer.config.temporal_compression, self.num_output_frames
        valid = [1 + temporal * k for k in range(self.ar_model.config.latent_shape[0] - 1)]
        if frames.shape[2] not in valid:
            raise ValueError(f"got {frames.shape[2]} input frames; this model ({total} output frames, DV tokenizer "
                             f"x{temporal} in time) takes one of {valid}")
        return frames

    def _text_features(self, prompt, batch, device):
        if not self.ar_model.config.insert_cross_attention:
            return {}
        if prompt is None:
            raise ValueError("this model has cross-attention (Video2World): pass `prompt`")
        prompts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
        if len(prompts) != batch:
            raise ValueError(f"got {len(prompts)} prompts for {batch} videos")
        text = encode_prompts(self.tokenizer, self.text_encoder, prompts, self.config.max_sequence_length,
                              device=device, dtype=self.ar_model.dtype)
        return {"encoder_hidden_states": text}

    def check_inputs(self, prompt, do_sample, temperature, top_k, top_p, use_medusa, decoder_num_inference_steps,
                     decoder_guidance_scale, generator, output_type, medusa_kwargs=None):
        """Validate call arguments before any work; every error names the argument and its valid range."""
        check_output_type(output_type, OUTPUT_TYPES)
        # token output skips the video guard: only without a guard, decided when the pipeline was built
        check_guardrail_coverage(self.safety_checker, prompt, None, output_type, undecoded_output_types=("tokens",))
        if prompt is not None and not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt
                                                                    and all(isinstance(p, str) for p in prompt))):
            raise ValueError(f"`prompt` must be a string or a non-empty list of strings, got {type(prompt).__name__}")
        if do_sample:
            check_number("temperature", temperature, minimum=0, exclusive_minimum=True, note="when sampling")
        if top_p is not None:
            check_number("top_p", top_p, minimum=0, maximum=1, exclusive_minimum=True)
        if top_k is not None:
            check_number("top_k", top_k, minimum=1, integer=True, note="None keeps every token")
        check_number("decoder_num_inference_steps", decoder_num_inference_steps, minimum=1, integer=True)
        check_number("decoder_guidance_scale", decoder_guidance_scale, minimum=0, note="0 disables guidance")
        check_generator(generator)
        if do_sample and isinstance(generator, (list, tuple)):
            # the sampler draws every video's tokens in one stream (torch.multinomial takes one generator)
            raise TypeError("token sampling draws every video from one torch.Generator: pass one generator, not a "
                            "list (a list, one per video, is only taken with do_sample=False, by the diffusion "
                            "decoder)")
        if use_medusa:
            from ..autoregressive.medusa import check_candidate_sources

            tree = {**MEDUSA_DEFAULTS, **(medusa_kwargs or {})}
            check_candidate_sources(self.ar_model, tree.get("num_candidates"), tree.get("temporal_candidates", 0))

    @torch.no_grad()
    def keep_still_pixels(self, frames: torch.Tensor, decoded: torch.Tensor, threshold: float) -> torch.Tensor:
        """`decoded` [B, 3, T, H, W] in [-1, 1] with the last conditioning frame's pixels wherever a predicted frame
        (after the `frames` given) is within `threshold` (max over RGB, [0, 1] units) of the DV round trip of a
        still video of that frame. The conditioning frames' own decode is left as it is."""
        return self.restore_still_detail(frames, decoded, keep_threshold=threshold)

    @torch.no_grad()
    def restore_still_detail(self, frames: torch.Tensor, decoded: torch.Tensor, keep_threshold: float | None = None,
                             detail_gate: float | None = None) -> torch.Tensor:
        """Give back what the DV tokenizer loses where the model predicted no change.

        d is, per pixel, the largest RGB difference (in [0, 1] units) between `decoded` [B, 3, T, H, W] (in [-1, 1])
        and the DV round trip of a still video of the last conditioning frame. With `detail_gate` g, the still
        frame's detail (the frame minus that round trip) is added weighted by ``max(0, 1 - d / g)``: fully where the
        decode is the still round trip, not at all where it departs by g or more (an object moved there or away), as
        `CosmosVideo2WorldPipeline.condition_detail` does. With `keep_threshold` t, wherever d < t the output is the
        last conditioning frame's own pixel. Only predicted frames change; the conditioning frames keep their decode.
        """
        still = frames[:, :, -1:].expand(-1, -1, decoded.shape[2], -1, -1).float()
        still_decoded = self.dv_tokenizer.detokenize(self.dv_tokenizer.tokenize(still.to(frames.dtype)))
        still_decoded = still_decoded.float().clamp(-1, 1)
        departure = (decoded - still_decoded).abs().amax(dim=1, keepdim=True) / 2.0  # [-1, 1] -> [0, 1] units
        predicted = torch.zeros_like(departure, dtype=torch.bool)
        predicted[:, :, frames.shape[2]:] = True
        out = decoded
        if detail_gate is not None:
            weight = (1.0 - departure / detail_gate).clamp(min=0.0) * predicted
            out = (out + (still - still_decoded) * weight).clamp(-1, 1)
        if keep_threshold is not None:
            out = torch.where((departure < keep_threshold) & predicted, still, out)
        return out

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate_tokens(self, input_ids, max_new_tokens, text, do_sample, temperature, top_k, top_p, generator,
                        use_medusa=False, medusa_kwargs=None, previous_frame_logit_bias=0.0):
        """Continue `input_ids` [B, L] by `max_new_tokens` tokens with the KV cache (or Medusa, one row at a time);
        `previous_frame_logit_bias` is added to the logit of the token one latent frame earlier at every step
        (`add_previous_frame_logit_bias`)."""
        model = self.ar_model
        warn_if_emulated_bf16(model.dtype, input_ids.device, f"{type(self).__name__}'s {type(model).__name__}")
        if use_medusa:
            from ..autoregressive.medusa import medusa_generate

            rows = []
            for row in range(input_ids.shape[0]):
                row_text = {k: v[row : row + 1] for k, v in text.items()}
                out = medusa_generate(model, input_ids[row : row + 1], max_new_tokens, do_sample=do_sample,
                                      temperature=temperature, top_p=top_p, top_k=top_k, generator=generator,
                                      previous_frame_logit_bias=previous_frame_logit_bias,
                                      **{**MEDUSA_DEFAULTS, **(medusa_kwargs or {})}, **row_text)
                rows.append(out.sequences)
            return torch.cat(rows)
        tokens_per_frame = model.config.latent_shape[1] * model.config.latent_shape[2]
        video_start = int(model.config.bov_token_id is not None)  # sequence index of video token 0
        prompt_length = input_ids.shape[1]
        cache = DynamicCache()
        out = model(input_ids, cache=cache, use_cache=True, logits_to_keep=1, **text)
        new = []
        with self.progress_bar(total=max_new_tokens) as progress_bar:
            for step in range(max_new_tokens):
                logits = out.logits[:, -1]
                previous = prompt_length + step - tokens_per_frame  # one frame before the token predicted now
                if previous_frame_logit_bias and previous >= video_start:
                    column = input_ids[:, previous] if previous < prompt_length else new[previous - prompt_length]
                    logits = add_previous_frame_logit_bias(logits, column.tolist(), previous_frame_logit_bias)
                next_tokens = sample_next_tokens(logits, do_sample, temperature, top_k, top_p, generator)
                new.append(next_tokens)
                progress_bar.update()
                if step + 1 < max_new_tokens:
                    out = model(next_tokens[:, None], cache=cache, use_cache=True, **text)
        return torch.cat([input_ids, torch.stack(new, dim=1)], dim=1)

    @torch.no_grad()
    def __call__(
        self,
        image=None,
        video=None,
        prompt: str | list[str] | None = None,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = 0.8,
        use_medusa: bool = False,
        medusa_kwargs: dict | None = None,
        use_diffusion_decoder: bool | None = None,
        decoder_prompt: str | list[str] = "",
        decoder_num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
        decoder_guidance_scale: float = DEFAULT_GUIDANCE_SCALE,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        condition_keep_threshold: float | None = None,
        condition_detail_gate: float | None = None,
        previous_frame_logit_bias: float | None = None,
    ):
        r"""Continue `video` (or `image`) to the model's full token grid.

        `video`: tensor [B, 3, T, H, W] / [3, T, H, W] in [-1, 1], uint8 array [T, H, W, 3], or a list of frames;
        resized to the model's pixel size. `do_sample=False` is greedy decoding; otherwise `temperature`, `top_k`,
        `top_p` (reference default 0.8) apply, seeded by `generator`. `use_medusa` decodes speculatively: the
        model's Medusa heads and the previous latent frame's tokens propose, one forward verifies (greedy Medusa gives
        exactly the greedy tokens); a model without heads verifies the previous frame's tokens only; `medusa_kwargs`
        go to `medusa_generate` over `MEDUSA_DEFAULTS` (the candidate tree: `head_top_k`, `temporal_candidates`,
        ...). `output_type="tokens"` returns the token grid `[B, T', H', W']` without decoding. With a diffusion
        decoder and `use_diffusion_decoder`, the tokens are refined by it (`decoder_num_inference_steps` 15,
        `decoder_guidance_scale` 1.8, the reference defaults; it is the decoder's `guidance_scale`: the Cosmos rule
        ``x0_cond + g * (x0_cond - x0_uncond)``, 0 disables guidance);
        `use_diffusion_decoder=None` uses the config's `default_use_diffusion_decoder` (True unless saved otherwise).

        `condition_keep_threshold` (in (0, 1], image units; not the reference; `None` uses the config's
        `default_condition_keep_threshold`, `None` = off; 0 turns a saved default off) applies to the DV tokenizer's
        decode: where the decoded video is within this RGB distance of the decode of a still video of the last
        conditioning frame, the model predicted no change there (up to the tokenizer's loss), and the last
        conditioning frame's own pixels are output, as `CosmosVideo2WorldPipeline`'s keep threshold does. A DV
        tokenizer loses small objects and edges even in a still scene; this gives them back where nothing moves.
        `condition_detail_gate` (in (0, 1], image units; not the reference; `None` uses the config's
        `default_condition_detail_gate`, `None` = off; 0 turns a saved default off) adds back the still frame's
        detail that the DV round trip loses, weighted per pixel by how far the decode stays from the still round trip
        (`restore_still_detail`): the soft form of the keep threshold. Both cost one more tokenize + detokenize
        (shared when both are on).
        Passed explicitly, neither can be combined with the diffusion decoder or token output; saved defaults are
        used by the DV decode only.

        `previous_frame_logit_bias` (a finite number; not the reference; `None` uses the config's
        `default_previous_frame_logit_bias`, `None` = off; 0 turns a saved default off) is added at every step to
        the logit of the token at the same (h, w) one latent frame earlier (`add_previous_frame_logit_bias`): greedy
        decoding then changes a token only where the model prefers the change by more than that many nats, a prior
        that what it is unsure of stays as it was. It applies to the tokens, so to every output type and decoder,
        and greedy Medusa returns the same tokens with it as plain greedy decoding.
        """
        if use_diffusion_decoder is None:
            use_diffusion_decoder = self.config.get("default_use_diffusion_decoder", True)
        explicit = {name: value for name, value in (("condition_keep_threshold", condition_keep_threshold),
                                                    ("condition_detail_gate", condition_detail_gate))
                    if value is not None and not (isinstance(value, numbers.Real) and value == 0)}  # 0 = off
        condition_keep_threshold = rgb_distance_option(self.config, "condition_keep_threshold",
                                                       condition_keep_threshold, zero_is_off=True)
        condition_detail_gate = rgb_distance_option(self.config, "condition_detail_gate", condition_detail_gate,
                                                    zero_is_off=True)
        for name in explicit:
            if output_type == "tokens":
                raise ValueError(f"{name} works on decoded frames; it cannot be used with output_type='tokens'")
            if use_diffusion_decoder and self.has_diffusion_decoder:
                raise ValueError(f"{name} applies to the DV tokenizer's decode: pass use_diffusion_decoder=False "
                                 "with it")
        self.check_inputs(prompt, do_sample, temperature, top_k, top_p, use_medusa, decoder_num_inference_steps,
                          decoder_guidance_scale, generator, output_type, medusa_kwargs)
        if previous_frame_logit_bias is None:
            previous_frame_logit_bias = self.config.get("default_previous_frame_logit_bias", None)
        previous_frame_logit_bias = 0.0 if previous_frame_logit_bias is None else check_number(
            "previous_frame_logit_bias", previous_frame_logit_bias, note="nats added to the previous latent frame's "
            "token; 0 = off")
        device = self._execution_device
        frames = self._conditioning_frames(image, video).to(device, self.dv_tokenizer.dtype)
        batch = frames.shape[0]
        prompt_tokens = self.dv_tokenizer.tokenize(frames)  # [B, T_cond', H', W']
        grid = self.ar_model.config.latent_shape
        input_ids = prompt_tokens.reshape(batch, -1)
        bov = self.ar_model.config.bov_token_id
        if bov is not None:
            input_ids = torch.cat([input_ids.new_full((batch, 1), bov), input_ids], dim=1)
        max_new_tokens = (grid[0] - prompt_tokens.shape[1]) * grid[1] * grid[2]
        check_prompt_safety(self.safety_checker, prompt, device)
        text = self._text_features(prompt, batch, device)
        sequences = self.generate_tokens(input_ids, max_new_tokens, text, do_sample, temperature, top_k,
                                         top_p if do_sample else None, generator, use_medusa, medusa_kwargs,
                                         previous_frame_logit_bias)
        video_tokens = sequences[:, int(bov is not None):].reshape(batch, *grid)
        if output_type == "tokens":
            result = video_tokens
        elif use_diffusion_decoder and self.has_diffusion_decoder:
            result = self.diffusion_decoder(tokens=video_tokens, prompt=decoder_prompt,
                                            num_inference_steps=decoder_num_inference_steps,
                                            guidance_scale=decoder_guidance_scale, generator=generator,
                                            output_type=output_type).frames
        else:  # the diffusion decoder pipeline above runs the same guard on its own output
            decoded = self.dv_tokenizer.detokenize(video_tokens).float().clamp(-1, 1)
            if condition_keep_threshold is not None or condition_detail_gate is not None:
                decoded = self.restore_still_detail(frames, decoded, condition_keep_threshold, condition_detail_gate)
            decoded = guard_videos(self.safety_checker, self.video_processor, decoded, device, round_to_nearest=True)
            result = self.video_processor.postprocess_video(decoded, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (result,)
        return CosmosPipelineOutput(frames=result)


__all__ = ["CosmosARVideo2WorldPipeline", "sample_next_tokens"]
