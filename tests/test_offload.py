"""CPU offload on every pipeline, tiny random components: `enable_model_cpu_offload()` moves each component in when it
runs (accelerate's hooks fire, also through the tokenizers' encode/decode/tokenize/detokenize) and
sequential offload (weights on the meta device, loaded per module) gives outputs identical to no offload.

Without an accelerator the execution device is the CPU itself, so the moves are no-ops: what is checked is that the
hooks fire for every component that runs and that nothing reads a weight the hooks have not loaded."""

import functools
import tempfile
from pathlib import Path

import pytest
import torch
from accelerate import cpu_offload
from accelerate.hooks import CpuOffload
from diffusers import EDMEulerScheduler

from cosmos_hf.diffusion.diffusion_decoder import CosmosDiffusionDecoderPipeline, CosmosDVTokenEmbedder
from cosmos_hf.diffusion.nano import tiny_cosmos_vae, tiny_t5_text_encoder, tiny_transformer
from cosmos_hf.pipelines.pipeline_cosmos_ar_video2world import CosmosARVideo2WorldPipeline

from test_pipelines_action_conditioned import action_pipeline, actions, rollout
from test_pipelines_ar import frames, tiny_ar, tiny_dv
from test_pipelines_camera_control import call as camera_call
from test_pipelines_camera_control import camera_pipeline, orbit
from test_pipelines_cosmos import make_t2w, make_v2w
from test_pipelines_multiview import generate as multiview_call
from test_pipelines_multiview import multiview_pipeline


@functools.cache
def tiny_base_folder():
    """A saved tiny Video2World pipeline: the base the post-trained pipelines are made from (perturbed, so that
    their new inputs matter)."""
    folder = Path(tempfile.mkdtemp(prefix="offload_base_")) / "pipeline"
    make_v2w(tiny_t5_text_encoder(), disable_safety_checker=True).save_pretrained(folder)
    return folder


def diffusion_decoder(dv):
    tokenizer, text_encoder = tiny_t5_text_encoder()
    torch.manual_seed(2)
    return CosmosDiffusionDecoderPipeline(
        text_encoder, tokenizer, tiny_transformer(latent_channels=4, in_channels=4 + 32), tiny_cosmos_vae(),
        EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, prediction_type="epsilon",
                          final_sigmas_type="sigma_min"),
        CosmosDVTokenEmbedder(), dv_tokenizer=dv, default_fps=24, max_sequence_length=8,
        disable_safety_checker=True,
    )


def seeded():
    return dict(generator=torch.Generator().manual_seed(0))


# name -> (build the pipeline, call it, the components that run)
CASES = {
    "ar_video2world": (
        lambda: CosmosARVideo2WorldPipeline(tiny_ar(), tiny_dv(), disable_safety_checker=True),
        lambda pipe: pipe(video=frames(5), output_type="pt").frames,
        {"dv_tokenizer", "ar_model"},
    ),
    "ar_video2world_with_diffusion_decoder": (
        lambda: CosmosARVideo2WorldPipeline.from_components(tiny_ar(), (dv := tiny_dv()),
                                                            diffusion_decoder=diffusion_decoder(dv),
                                                            disable_safety_checker=True),
        lambda pipe: pipe(video=frames(1), output_type="pt", decoder_num_inference_steps=2, **seeded()).frames,
        {"dv_tokenizer", "ar_model", "decoder_text_encoder", "decoder_token_embedder", "decoder_transformer",
         "decoder_vae"},
    ),
    "diffusion_decoder": (
        lambda: diffusion_decoder(tiny_dv()),
        lambda pipe: pipe(video=frames(9), output_type="pt", num_inference_steps=2, **seeded()).frames,
        {"dv_tokenizer", "text_encoder", "token_embedder", "transformer", "vae"},
    ),
    "text2world": (
        lambda: make_t2w(tiny_t5_text_encoder(), disable_safety_checker=True),
        lambda pipe: pipe("a red ball falls", num_inference_steps=2, output_type="pt", **seeded()).frames,
        {"text_encoder", "transformer", "vae"},
    ),
    "video2world": (
        lambda: make_v2w(tiny_t5_text_encoder(), disable_safety_checker=True),
        lambda pipe: pipe(video=torch.rand(1, 3, 5, 32, 32) * 2 - 1, prompt="a red ball", num_inference_steps=2,
                          output_type="pt", **seeded()).frames,
        {"text_encoder", "transformer", "vae"},
    ),
    "camera_control": (
        lambda: camera_pipeline(tiny_base_folder(), perturb=True)[0],
        lambda pipe: torch.from_numpy(camera_call(pipe, cam_to_world=orbit(), output_type="np")),
        {"text_encoder", "transformer", "vae"},
    ),
    "action_conditioned": (
        lambda: action_pipeline(tiny_base_folder(), perturb=True)[0],
        lambda pipe: torch.from_numpy(rollout(pipe, actions(12))),
        {"text_encoder", "transformer", "vae"},
    ),
    "multiview": (
        lambda: multiview_pipeline(tiny_base_folder())[0],
        lambda pipe: torch.from_numpy(multiview_call(pipe)),
        {"text_encoder", "transformer", "vae"},
    ),
}


def build(case):
    pipe = CASES[case][0]()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("case", CASES)
def test_model_cpu_offload_hooks_fire_for_every_component_and_outputs_are_identical(case, monkeypatch):
    _, call, runs = CASES[case]
    reference = build(case)
    torch.manual_seed(0)
    expected = call(reference)
    pipe = build(case)
    names = {id(module): name for name, module in pipe.components.items() if isinstance(module, torch.nn.Module)}
    fired = set()
    pre_forward = CpuOffload.pre_forward

    def recording_pre_forward(self, module, *args, **kwargs):
        fired.add(names.get(id(module)))
        return pre_forward(self, module, *args, **kwargs)

    monkeypatch.setattr(CpuOffload, "pre_forward", recording_pre_forward)
    pipe.enable_model_cpu_offload(device="cpu")  # no accelerator here: the CPU stands in for it
    torch.manual_seed(0)
    got = call(pipe)
    assert fired == runs
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("case", CASES)
def test_sequential_cpu_offload_outputs_are_identical(case):
    _, call, _ = CASES[case]
    reference = build(case)
    torch.manual_seed(0)
    expected = call(reference)
    pipe = build(case)
    # what pipe.enable_sequential_cpu_offload() does, with execution device "cpu": diffusers would pass "cpu:0", on
    # which accelerate's weight reloading fails for diffusers' own models too (accelerate 1.16)
    for name, module in pipe.components.items():
        if isinstance(module, torch.nn.Module) and name not in pipe._exclude_from_cpu_offload:
            cpu_offload(module, torch.device("cpu"), offload_buffers=len(module._parameters) > 0)
    offloaded = [name for name, module in pipe.components.items() if isinstance(module, torch.nn.Module)
                 and any(p.device.type == "meta" for p in module.parameters())]
    assert len(offloaded) >= 2  # the weights really left: only the hooks can bring them back
    torch.manual_seed(0)
    torch.testing.assert_close(call(pipe), expected, rtol=0, atol=0)
