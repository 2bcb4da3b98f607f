import json
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))

REPO_ROOT = Path(__file__).resolve().parents[1]


def _find_fixtures():
    # The reference fixtures live in ../shared/fixtures/reference next to the checkout (CI lays shared/ beside the clone).
    for base in (REPO_ROOT.parent / "shared", REPO_ROOT / "shared", Path("/work/shared")):
        candidate = base / "fixtures" / "reference"
        if candidate.is_dir():
            return candidate
    return None


FIXTURES = _find_fixtures()


@pytest.fixture(scope="session")
def reference_fixtures():
    if FIXTURES is None:
        pytest.fail("reference fixtures not found: expected ../shared/fixtures/reference beside the repository")
    return FIXTURES


def load_reference_case(case: str):
    """(constructor_kwargs, io tensors, folder) of one fixture case."""
    from safetensors.torch import load_file

    if FIXTURES is None:
        pytest.fail("reference fixtures not found: expected ../shared/fixtures/reference beside the repository")
    folder = FIXTURES / case
    config = json.loads((folder / "config.json").read_text())
    return config["constructor_kwargs"], load_file(str(folder / "io.safetensors")), folder


def drop_saved_weights(folder, prefix: str):
    """Delete the weights whose names start with `prefix` from a saved diffusers model folder (a damaged or
    mismatched checkpoint, for strict-loading tests)."""
    from safetensors.torch import load_file, save_file

    path = Path(folder) / "diffusion_pytorch_model.safetensors"
    save_file({k: v for k, v in load_file(str(path)).items() if not k.startswith(prefix)}, str(path))


@pytest.fixture(scope="session")
def tiny_video2world_folder(tmp_path_factory):
    """A saved random tiny Video2World pipeline (32x32, 9 frames, latent 4 x 3 x 4 x 4, condition_frame_channels like
    the nano model): the base that the post-training tests turn into camera / action / multi-view models."""
    from diffusers import CosmosTransformer3DModel, EDMEulerScheduler

    from cosmos_hf.diffusion.nano import tiny_cosmos_vae, tiny_t5_text_encoder, transformer_config
    from cosmos_hf.pipelines.pipeline_cosmos_video2world import CosmosVideo2WorldPipeline

    tokenizer, text_encoder = tiny_t5_text_encoder()
    torch.manual_seed(0)
    transformer = CosmosTransformer3DModel(**transformer_config("tiny", 4, 16, video2world=True,
                                                                condition_frame_channels=True)).eval()
    scheduler = EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, sigma_schedule="karras",
                                  num_train_timesteps=1000, prediction_type="epsilon", rho=7.0,
                                  final_sigmas_type="sigma_min")
    pipe = CosmosVideo2WorldPipeline(text_encoder, tokenizer, transformer, tiny_cosmos_vae(), scheduler,
                                     disable_safety_checker=True, default_height=32, default_width=32,
                                     default_num_frames=9, default_fps=12, max_sequence_length=8,
                                     condition_frame_channels=True, default_guidance_scale=1.0)
    folder = tmp_path_factory.mktemp("tiny_v2w") / "pipeline"
    pipe.save_pretrained(folder)
    return folder
