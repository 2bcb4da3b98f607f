"""CPU speed of the causal video tokenizers: no per-call weight reorder, same numbers, same saved files.

oneDNN convolves channels-last activations with channels-last weights and copies any other weight into that layout
on every call (torch.profiler put those copies at about a fifth of CV8x8x8's encode time at 64x64).
`causal_video` therefore stores each conv weight channels-last the first time it uses it.
"""

import torch
from conftest import load_reference_case
from torch.profiler import ProfilerActivity, profile

from cosmos_hf.tokenizers import CosmosContinuousVideoTokenizer, convert_tokenizer_checkpoint


def _cv_model():
    kwargs, _, folder = load_reference_case("cv_video")
    return convert_tokenizer_checkpoint([folder / "state_dict.safetensors"], reference_config=kwargs).eval()


def _video(frames=9, size=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, frames, size, size, generator=generator) * 2 - 1


def _conv_weight_views(model):
    """Shapes of the 4D kernels `causal_video` hands to conv2d (1xkxk spatial and kx1x1 temporal convs)."""
    shapes = set()
    for parameter in model.parameters():
        if parameter.dim() == 5:
            out_channels, in_channels, kt, kh, kw = parameter.shape
            shapes.add((out_channels, in_channels, kh, kw) if kt == 1 else (out_channels, in_channels, kt, kh))
    return shapes


def test_encode_and_decode_do_not_copy_conv_weights_on_every_call():
    model = _cv_model()
    video = _video()
    with torch.no_grad():
        model.decode(model.encode(video).latent_dist.mode())  # first use: weights stored channels-last once
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            model.decode(model.encode(video).latent_dist.mode())
    weight_shapes = _conv_weight_views(model)
    weight_copies = [event for event in prof.events() if event.name == "aten::copy_" and event.input_shapes
                     and tuple(event.input_shapes[0]) in weight_shapes]
    assert not weight_copies, (f"{len(weight_copies)} conv weights reordered per call, "
                               f"e.g. {weight_copies[0].input_shapes}")


def test_channels_last_weights_keep_outputs_state_dict_and_saved_files(tmp_path):
    from diffusers import AutoencoderKLCosmos

    model = _cv_model()
    plain = AutoencoderKLCosmos(**{k: v for k, v in model.config.items() if not k.startswith("_") and k != "legacy_mode"})
    plain.load_state_dict(model.state_dict())
    video = _video(seed=1)
    with torch.no_grad():
        first = model.decode(model.encode(video).latent_dist.mode()).sample  # converts the weights
        assert any(p.dim() == 5 and p.is_contiguous(memory_format=torch.channels_last_3d) and not p.is_contiguous()
                   for p in model.parameters())
        second = model.decode(model.encode(video).latent_dist.mode()).sample
        reference = plain.decode(plain.encode(video).latent_dist.mode()).sample
    torch.testing.assert_close(second, first, rtol=0, atol=1e-6)
    torch.testing.assert_close(second, reference, rtol=0, atol=1e-5)

    model.save_pretrained(tmp_path / "cv")
    reloaded = CosmosContinuousVideoTokenizer.from_pretrained(tmp_path / "cv")
    for (name, saved), (_, original) in zip(reloaded.state_dict().items(), model.state_dict().items()):
        assert torch.equal(saved, original), name
