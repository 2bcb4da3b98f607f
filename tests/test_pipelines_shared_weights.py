"""The bundled pipelines store the nano CV tokenizers' weights once: their `vae/` (`decoder_vae/`) is a sha256-checked
reference to a bundled tokenizer folder, `pipelines/cosmos-nano-tokenizer-cv4x8x8` or `-cv4x4x4`
(cosmos_hf.pipelines.shared_weights)."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKLCosmos, DiffusionPipeline
from safetensors.torch import load_file

import cosmos_hf  # noqa: F401
from cosmos_hf.diffusion.nano import tiny_cosmos_vae
from cosmos_hf.pipelines.shared_weights import (
    REFERENCED_VAE_MODULE,
    VAE_COMPONENTS,
    WEIGHTS_FROM_FOLDER_KEY,
    WEIGHTS_NAME,
    WEIGHTS_SHA256_KEY,
    ReferencedAutoencoderKLCosmos,
    link_bundled_vae,
    write_weights_reference,
)

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
CV_TOKENIZERS = {(PIPELINES / f"cosmos-nano-tokenizer-{name}").resolve() for name in ("cv4x8x8", "cv4x4x4")}


def _referenced_tokenizer(folder, component) -> Path:
    """The bundled tokenizer folder a pipeline's VAE component names."""
    component_folder = PIPELINES / folder / component
    config = json.loads((component_folder / "config.json").read_text())
    return (component_folder / config[WEIGHTS_FROM_FOLDER_KEY]).resolve()


def _bundled_vae_components():
    """(pipeline folder name, component) for every bundled pipeline with a CV tokenizer component."""
    found = []
    for index_path in sorted(PIPELINES.glob("*/model_index.json")):
        index = json.loads(index_path.read_text())
        found += [(index_path.parent.name, name) for name in VAE_COMPONENTS
                  if isinstance(index.get(name), list) and index[name][0] is not None]
    return found


BUNDLED = _bundled_vae_components()


def test_bundled_pipelines_with_a_vae_are_found():
    expected = {"cosmos-nano-video2world", "cosmos-nano-text2world", "cosmos-nano-ar-video2world"}
    assert expected <= {folder for folder, _ in BUNDLED}


@pytest.mark.parametrize("folder,component", BUNDLED)
def test_bundled_vae_is_a_reference_with_no_weight_copy(folder, component):
    component_folder = PIPELINES / folder / component
    assert sorted(p.name for p in component_folder.iterdir()) == ["config.json"]
    assert _referenced_tokenizer(folder, component) in CV_TOKENIZERS
    index = json.loads((PIPELINES / folder / "model_index.json").read_text())
    assert index[component] == [REFERENCED_VAE_MODULE, "ReferencedAutoencoderKLCosmos"]


@pytest.mark.parametrize("folder,component", BUNDLED)
def test_bundled_pipeline_loads_the_tokenizer_weights_both_ways(folder, component):
    tokenizer_folder = _referenced_tokenizer(folder, component)
    reference = load_file(str(tokenizer_folder / WEIGHTS_NAME))
    tokenizer = AutoencoderKLCosmos.from_pretrained(tokenizer_folder).eval()
    latents = torch.randn(1, tokenizer.config.latent_channels, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    expected = tokenizer.decode(latents).sample
    pipe = DiffusionPipeline.from_pretrained(PIPELINES / folder, trust_remote_code=True)
    own = type(pipe).from_pretrained(PIPELINES / folder)  # the pipeline class itself, without remote code
    for loaded in (pipe, own):
        vae = getattr(loaded, component)
        assert isinstance(vae, ReferencedAutoencoderKLCosmos)
        state = vae.state_dict()
        assert set(state) == set(reference) and all(torch.equal(state[k], reference[k]) for k in reference)
        with torch.no_grad():
            assert torch.equal(vae.decode(latents).sample, expected)


def _tokenizer_and_reference(tmp_path):
    """A tiny tokenizer folder and a component folder referencing it: (tokenizer folder, component folder, model)."""
    model = tiny_cosmos_vae()
    tokenizer_folder = tmp_path / "tokenizer"
    model.save_pretrained(tokenizer_folder)
    component_folder = tmp_path / "pipeline" / "vae"
    component_folder.mkdir(parents=True)
    write_weights_reference(component_folder, dict(model.config), tokenizer_folder)
    return tokenizer_folder, component_folder, model


def test_vae_reference_with_a_tampered_hash_names_both_paths(tmp_path):
    tokenizer_folder, component_folder, model = _tokenizer_and_reference(tmp_path)
    loaded = ReferencedAutoencoderKLCosmos.from_pretrained(component_folder)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    config = json.loads((component_folder / "config.json").read_text())
    config[WEIGHTS_SHA256_KEY] = "0" * 64
    (component_folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="sha256") as error:
        ReferencedAutoencoderKLCosmos.from_pretrained(component_folder)
    assert str(component_folder) in str(error.value) and str(tokenizer_folder.resolve()) in str(error.value)


def test_vae_reference_to_changed_tokenizer_weights_is_refused(tmp_path):
    tokenizer_folder, component_folder, _ = _tokenizer_and_reference(tmp_path)
    tiny_cosmos_vae(seed=1).save_pretrained(tokenizer_folder)  # the tokenizer was retrained after linking
    with pytest.raises(ValueError, match="sha256"):
        ReferencedAutoencoderKLCosmos.from_pretrained(component_folder)


def test_vae_reference_to_a_missing_folder_names_both_paths(tmp_path):
    tokenizer_folder, component_folder, _ = _tokenizer_and_reference(tmp_path)
    shutil.rmtree(tokenizer_folder)
    with pytest.raises(FileNotFoundError) as error:
        ReferencedAutoencoderKLCosmos.from_pretrained(component_folder)
    assert str(component_folder) in str(error.value) and str(tokenizer_folder.resolve()) in str(error.value)


def test_saving_a_referenced_vae_writes_a_reference_while_the_folder_exists_else_a_full_copy(tmp_path):
    tokenizer_folder, component_folder, model = _tokenizer_and_reference(tmp_path)
    loaded = ReferencedAutoencoderKLCosmos.from_pretrained(component_folder)
    loaded.save_pretrained(tmp_path / "again")
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["config.json"]
    assert json.loads((tmp_path / "again" / "config.json").read_text())[WEIGHTS_FROM_FOLDER_KEY] == "../tokenizer"

    shutil.rmtree(tokenizer_folder)  # referenced folder gone: the save keeps the weights itself
    loaded.save_pretrained(tmp_path / "copy")
    assert (tmp_path / "copy" / WEIGHTS_NAME).is_file()
    copy = ReferencedAutoencoderKLCosmos.from_pretrained(tmp_path / "copy")
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), model.state_dict().values()))


def test_saving_a_fine_tuned_referenced_vae_writes_a_full_copy(tmp_path):
    _, component_folder, _ = _tokenizer_and_reference(tmp_path)
    loaded = ReferencedAutoencoderKLCosmos.from_pretrained(component_folder)
    with torch.no_grad():
        next(loaded.parameters()).add_(1.0)
    loaded.save_pretrained(tmp_path / "tuned")
    assert WEIGHTS_FROM_FOLDER_KEY not in json.loads((tmp_path / "tuned" / "config.json").read_text())
    tuned = ReferencedAutoencoderKLCosmos.from_pretrained(tmp_path / "tuned")
    assert torch.equal(next(tuned.parameters()), next(loaded.parameters()))


def test_bundled_pipeline_round_trips_through_save_pretrained_as_a_reference(tmp_path):
    pipe = DiffusionPipeline.from_pretrained(PIPELINES / "cosmos-nano-video2world", trust_remote_code=True)
    pipe.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved" / "vae").iterdir()) == ["config.json"]
    again = type(pipe).from_pretrained(tmp_path / "saved")
    reference = load_file(str(_referenced_tokenizer("cosmos-nano-video2world", "vae") / WEIGHTS_NAME))
    assert isinstance(again.vae, ReferencedAutoencoderKLCosmos)
    assert all(torch.equal(again.vae.state_dict()[k], reference[k]) for k in reference)


def test_link_bundled_vae_refuses_other_weights_and_leaves_the_folder_as_it_was(tmp_path):
    model = tiny_cosmos_vae()
    model.save_pretrained(tmp_path / "tokenizer")
    pipeline_folder = tmp_path / "pipeline"
    tiny_cosmos_vae(seed=1).save_pretrained(pipeline_folder / "vae")
    index = {"_class_name": ["pipeline", "X"], "vae": ["diffusers", "AutoencoderKLCosmos"]}
    (pipeline_folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="differ"):
        link_bundled_vae(pipeline_folder, tmp_path / "tokenizer")
    assert (pipeline_folder / "vae" / WEIGHTS_NAME).is_file()
    assert json.loads((pipeline_folder / "model_index.json").read_text()) == index

    model.save_pretrained(pipeline_folder / "vae")  # now the same weights: linking replaces them by a reference
    assert link_bundled_vae(pipeline_folder, tmp_path / "tokenizer") == ["vae"]
    assert sorted(p.name for p in (pipeline_folder / "vae").iterdir()) == ["config.json"]
    loaded = ReferencedAutoencoderKLCosmos.from_pretrained(pipeline_folder, subfolder="vae")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_link_bundled_vae_repoints_a_reference_broken_by_copying_the_pipeline(tmp_path):
    # a pipeline post-trained from a bundled one is saved under outputs/ (its vae a reference from there), then copied
    # into pipelines/ next to the tokenizer: the relative path no longer resolves until linked again
    _, component_folder, model = _tokenizer_and_reference(tmp_path / "outputs")
    (component_folder.parent / "model_index.json").write_text(
        json.dumps({"_class_name": ["pipeline", "X"], "vae": [REFERENCED_VAE_MODULE, "ReferencedAutoencoderKLCosmos"]}))
    bundled = tmp_path / "pipelines"
    shutil.copytree(tmp_path / "outputs" / "tokenizer", bundled / "cosmos-nano-tokenizer-cv4x8x8")
    shutil.copytree(component_folder.parent, bundled / "new-pipeline")
    shutil.rmtree(tmp_path / "outputs")
    with pytest.raises(FileNotFoundError):
        ReferencedAutoencoderKLCosmos.from_pretrained(bundled / "new-pipeline" / "vae")
    assert link_bundled_vae(bundled / "new-pipeline") == ["vae"]
    loaded = ReferencedAutoencoderKLCosmos.from_pretrained(bundled / "new-pipeline" / "vae")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
