"""Gradient (activation) checkpointing is real: the AR model and the causal video tokenizers keep fewer activations
for the backward pass when it is on, and their gradients are unchanged."""

import pytest
import torch

from cosmos_hf import CosmosARForCausalLM
from cosmos_hf.tokenizers import CosmosContinuousVideoTokenizer, CosmosDiscreteVideoTokenizer

from test_autoregressive_model import text_context, tiny_video2world_config, video2world_prompt


def saved_activation_bytes(fn):
    """Run `fn()` (a forward building a graph) and return (its result, bytes autograd saved for the backward outside
    checkpointed regions, distinct storages counted once)."""
    storages = {}

    def pack(tensor):
        if tensor.device.type != "meta":
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = fn()
    return result, sum(storages.values())


def parameter_gradients(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}


def assert_same_gradients(with_checkpointing, without):
    assert with_checkpointing.keys() == without.keys() and len(without) > 0
    for name, grad in without.items():
        torch.testing.assert_close(with_checkpointing[name], grad, rtol=1e-5, atol=1e-6, msg=name)


def test_ar_gradient_checkpointing_saves_activations_and_keeps_gradients():
    config = tiny_video2world_config(num_hidden_layers=3)
    torch.manual_seed(0)
    model = CosmosARForCausalLM(config).train()
    tokens = video2world_prompt(config, length=40, batch=2)
    context, mask = text_context(batch=2)
    text = dict(encoder_hidden_states=context, encoder_attention_mask=mask)

    def loss():
        return model(tokens, labels=tokens, **text).loss

    plain_loss, plain_bytes = saved_activation_bytes(loss)
    plain_grads = parameter_gradients(model, plain_loss)
    assert model.supports_gradient_checkpointing
    with pytest.warns(FutureWarning, match="activation_checkpointing_enable"):  # transformers' newer name
        model.gradient_checkpointing_enable()  # what training/train_autoregressive.py calls
    assert all(layer.gradient_checkpointing for layer in model.model.layers)
    checkpointed_loss, checkpointed_bytes = saved_activation_bytes(loss)
    assert checkpointed_bytes < 0.5 * plain_bytes  # only layer inputs stay, not each layer's internals
    torch.testing.assert_close(checkpointed_loss, plain_loss)
    assert_same_gradients(parameter_gradients(model, checkpointed_loss), plain_grads)

    # generation from a model with checkpointing on still uses the KV cache (no grad: nothing is checkpointed)
    model.eval()
    with torch.no_grad():
        assert model(tokens[:1, :8], use_cache=True, **{k: v[:1] for k, v in text.items()}).cache is not None


def tiny_tokenizer(kind):
    torch.manual_seed(0)
    if kind == "DV":
        return CosmosDiscreteVideoTokenizer(channels=8, channels_mult=(1, 2, 2), num_res_blocks=1,
                                            attn_resolutions=(8,), resolution=16, z_channels=8, patch_size=2,
                                            spatial_compression=8, temporal_compression=4)
    return CosmosContinuousVideoTokenizer(latent_channels=8, encoder_block_out_channels=(8, 8, 16, 16),
                                          decode_block_out_channels=(8, 16, 16, 16), attention_resolutions=(8,),
                                          resolution=16, num_layers=1, patch_size=2, spatial_compression_ratio=8,
                                          temporal_compression_ratio=4)


@pytest.mark.parametrize("kind", ["DV", "CV"])
def test_tokenizer_gradient_checkpointing_saves_activations_and_keeps_gradients(kind):
    model = tiny_tokenizer(kind).train()
    video = torch.rand(1, 3, 5, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    if kind == "DV":
        def loss():
            return model.decode(model.encode_pre_quant(video)).sample.square().mean()
    else:
        def loss():
            return model.decode(model.encode(video).latent_dist.mode()).sample.square().mean()

    plain_loss, plain_bytes = saved_activation_bytes(loss)
    plain_grads = parameter_gradients(model, plain_loss)
    model.enable_gradient_checkpointing()
    checkpointed_loss, checkpointed_bytes = saved_activation_bytes(loss)
    assert checkpointed_bytes < 0.5 * plain_bytes
    torch.testing.assert_close(checkpointed_loss, plain_loss)
    assert_same_gradients(parameter_gradients(model, checkpointed_loss), plain_grads)

    # streamed chunks are not checkpointed (a recompute would read moved-on stream caches): still exact
    model.enable_streaming(chunk_latent_frames=1)
    streamed_loss = loss()
    torch.testing.assert_close(streamed_loss, plain_loss, rtol=1e-5, atol=1e-6)
    assert_same_gradients(parameter_gradients(model, streamed_loss), plain_grads)
