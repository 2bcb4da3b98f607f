"""`train_diffusion.py --condition camera|action|multiview` end to end on tiny configs (a tiny Video2World base,
physics-world clips simulated up front): the saved folder loads through `DiffusionPipeline.from_pretrained(...,
trust_remote_code=True)` as the post-trained pipeline class and generates; LoRA post-training trains the new input
layers fully and saves a merged pipeline; the post-training datasets and config errors."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "train_diffusion.py"
CONFIGS = REPO / "training" / "configs"


def load_script():
    spec = importlib.util.spec_from_file_location("train_diffusion", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def post_train(condition, base, output, *extra):
    args = ["--config", CONFIGS / f"diffusion_tiny_{condition}.yaml", "--condition", condition,
            "--pretrained_pipeline", base, "--output_dir", output, *extra]
    assert load_script().main([str(a) for a in args]) == 0
    return output / "pipeline"


def load_remote(folder):
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True, disable_safety_checker=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


CONDITION = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 1, 32, 32)


def test_camera_post_training_saves_a_camera_pipeline_that_loads_and_generates(tiny_video2world_folder, tmp_path):
    from cosmos_hf.pipelines import CosmosCameraControlPipeline

    folder = post_train("camera", tiny_video2world_folder, tmp_path / "camera")
    pipe = load_remote(folder)
    assert type(pipe) is CosmosCameraControlPipeline
    frames = pipe(video=CONDITION, prompt="a red ball", camera_moves="turn_left", num_inference_steps=2,
                  output_type="np", generator=torch.Generator().manual_seed(0)).frames
    assert frames.shape == (1, 9, 32, 32, 3) and np.isfinite(frames).all()
    log = [json.loads(line) for line in (tmp_path / "camera" / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2] and all(np.isfinite(e["loss"]) for e in log)


def test_a_still_frame_reference_base_is_post_trained_onto_the_last_latent_frame(tiny_video2world_folder, tmp_path):
    # post-trained models take the last conditioning latent frame as their reference, whatever the base used
    from cosmos_hf.pipelines import CosmosVideo2WorldPipeline

    base = tmp_path / "still_base"
    still = CosmosVideo2WorldPipeline.from_pretrained(tiny_video2world_folder, condition_reference="still_frame")
    still.save_pretrained(base)
    folder = post_train("camera", base, tmp_path / "camera", "--set", "training.max_train_steps=1")
    assert json.loads((folder / "model_index.json").read_text())["condition_reference"] == "last_latent_frame"


def test_action_post_training_saves_an_action_pipeline_that_rolls_out(tiny_video2world_folder, tmp_path):
    from cosmos_hf.pipelines import CosmosActionConditionedPipeline

    folder = post_train("action", tiny_video2world_folder, tmp_path / "action")
    pipe = load_remote(folder)
    assert type(pipe) is CosmosActionConditionedPipeline
    # the saved defaults are the post-training data's (the push task runs at 8 fps), the window its clip length
    assert pipe.config.default_fps == 8 and pipe.transformer.config.num_action_frames == 8
    frames = pipe(video=CONDITION, actions=np.zeros((10, 7)), num_inference_steps=1, output_type="np").frames
    assert frames.shape == (1, 11, 32, 32, 3) and np.isfinite(frames).all()


def test_action_post_training_with_normalised_per_latent_frame_actions(tiny_video2world_folder, tmp_path):
    folder = post_train("action", tiny_video2world_folder, tmp_path / "action", "--set", "model.normalize_actions=true",
                        "--set", "model.actions_per_latent_frame=4")
    pipe = load_remote(folder)
    config = pipe.transformer.config
    assert config.actions_per_latent_frame == 4 and len(config.action_std) == 7
    # the statistics are the training clips' (translations: millimetres per frame; the gripper: 0 or 1)
    assert max(config.action_std[:3]) < 0.1 and all(std > 0 for std in config.action_std)
    frames = pipe(video=CONDITION, actions=np.zeros((10, 7)), num_inference_steps=1, output_type="np").frames
    assert frames.shape == (1, 11, 32, 32, 3) and np.isfinite(frames).all()


def test_multiview_post_training_saves_a_multiview_pipeline_that_generates(tiny_video2world_folder, tmp_path):
    from cosmos_hf.pipelines import CosmosMultiViewPipeline

    folder = post_train("multiview", tiny_video2world_folder, tmp_path / "multiview")
    pipe = load_remote(folder)
    assert type(pipe) is CosmosMultiViewPipeline and pipe.num_views == 2
    frames = pipe(prompt=["front view", "side view"], video=CONDITION.expand(2, -1, -1, -1, -1),
                  trajectory=np.zeros((9, 3)), num_inference_steps=1, output_type="np").frames
    assert frames.shape == (1, 2, 9, 32, 32, 3) and np.isfinite(frames).all()


def test_multiview_post_training_with_a_normalised_trajectory(tiny_video2world_folder, tmp_path):
    folder = post_train("multiview", tiny_video2world_folder, tmp_path / "multiview", "--set",
                        "model.normalize_trajectory=true")
    pipe = load_remote(folder)
    config = pipe.transformer.config
    # the statistics are the training rigs' paths (9 waypoints x (x, y, z), metres): the origin and the constant
    # height keep the 1 cm floor, the forward distance varies by more
    assert len(config.trajectory_mean) == len(config.trajectory_std) == 27
    assert config.trajectory_std[:3] == [0.01] * 3 and max(config.trajectory_std) > 0.01
    frames = pipe(prompt=["front view", "side view"], video=CONDITION.expand(2, -1, -1, -1, -1),
                  trajectory=np.zeros((9, 3)), num_inference_steps=1, output_type="np").frames
    assert frames.shape == (1, 2, 9, 32, 32, 3) and np.isfinite(frames).all()


def test_lora_post_training_trains_the_new_input_layers_and_saves_a_merged_pipeline(tiny_video2world_folder,
                                                                                    tmp_path):
    from cosmos_hf.pipelines import CosmosVideo2WorldPipeline

    folder = post_train("camera", tiny_video2world_folder, tmp_path / "lora",
                        "--set", "training.lora={rank: 2, alpha: 2}")
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").is_file()
    pipe = load_remote(folder)
    base = CosmosVideo2WorldPipeline.from_pretrained(tiny_video2world_folder, disable_safety_checker=True)
    # the patch embedding reads channel-major blocks of patch-volume columns: [base channels | 6 rays | padding]
    volume = int(np.prod(pipe.transformer.config.patch_size))
    weight = pipe.transformer.patch_embed.proj.weight.reshape(-1, base.transformer.config.in_channels + 7, volume)
    base_weight = base.transformer.patch_embed.proj.weight.reshape(-1, base.transformer.config.in_channels + 1, volume)
    rays = weight[:, base.transformer.config.in_channels : -1]
    assert rays.shape[1] == 6 and rays.abs().max() > 0  # zero-initialised, trained fully (not frozen under LoRA)
    assert not torch.equal(weight[:, : base.transformer.config.in_channels], base_weight[:, :-1])
    # merged: plain linear layers, no adapter left in the saved DiT
    assert not any("lora" in name for name, _ in pipe.transformer.named_parameters())


def test_post_training_datasets_hold_the_conditioning_signals():
    from cosmos_hf.data.post_training_datasets import (
        CameraClips,
        MultiViewClips,
        PushActionClips,
        collate_post_training,
    )

    push = collate_post_training([PushActionClips(1, num_frames=5, height=16, width=16, workers=1)[0]])
    assert push["video"].shape == (1, 3, 5, 16, 16) and push["actions"].shape == (1, 4, 7)
    assert push["video"].min() >= -1 and push["video"].max() <= 1
    camera = CameraClips(1, num_frames=5, height=16, width=16, workers=1)[0]
    assert camera["cam_to_world"].shape == (5, 4, 4) and camera["intrinsics"].shape == (3, 3)
    rig = MultiViewClips(1, num_views=2, num_frames=5, height=16, width=16, workers=1)[0]
    assert rig["video"].shape == (2, 3, 5, 16, 16) and len(rig["caption"]) == 2
    assert rig["caption"][0] != rig["caption"][1]  # each view's caption names its camera
    torch.testing.assert_close(rig["trajectory"][0], torch.zeros(3))  # the path starts at the rig's own origin
    # scene captions say what is seen, not how the camera or rig moves (the poses / trajectory carry that)
    scene = CameraClips(1, num_frames=5, height=16, width=16, workers=1, captions="scene")[0]["caption"]
    assert camera["caption"].startswith("The camera ") and scene.startswith("A still scene of ")
    assert camera["caption"].endswith(scene[len("A still scene of "):])
    rig_scene = MultiViewClips(1, num_views=2, num_frames=5, height=16, width=16, workers=1, captions="scene")[0]
    assert "rig" in rig["caption"][0] and all("rig" not in c and "curve" not in c for c in rig_scene["caption"])
    with pytest.raises(ValueError, match="captions must be 'full'"):
        CameraClips(1, num_frames=5, height=16, width=16, workers=1, captions="none")
    with pytest.raises(ValueError, match="num_frames must be an integer >= 2"):
        PushActionClips(1, num_frames=1, workers=1)
    with pytest.raises(ValueError, match="push policies"):
        PushActionClips(1, policies=["teleport"], workers=1)


def test_post_training_config_errors_are_clear(tiny_video2world_folder, tmp_path):
    script = load_script()
    with pytest.raises(ValueError, match="validation.prompts is not supported"):
        script.main(["--config", str(CONFIGS / "diffusion_tiny_camera.yaml"), "--output_dir", str(tmp_path / "a"),
                     "--pretrained_pipeline", str(tiny_video2world_folder), "--set", "validation.prompts=[a]"])
    with pytest.raises(ValueError, match="condition_frame_channels"):
        script.main(["--config", str(CONFIGS / "diffusion_tiny_camera.yaml"), "--output_dir", str(tmp_path / "b"),
                     "--pretrained_pipeline", str(tiny_video2world_folder),
                     "--set", "objective.condition_frame_channels=false"])
    with pytest.raises(ValueError, match="--pretrained_pipeline"):
        script.main(["--config", str(CONFIGS / "diffusion_tiny_action.yaml"), "--output_dir", str(tmp_path / "c")])
    # the post-trained pipelines take the last conditioning latent frame as their reference only
    with pytest.raises(ValueError, match="post-training supports condition_reference='last_latent_frame' only"):
        script.main(["--config", str(CONFIGS / "diffusion_tiny_camera.yaml"), "--output_dir", str(tmp_path / "d"),
                     "--pretrained_pipeline", str(tiny_video2world_folder),
                     "--set", "objective.condition_reference=still_frame"])


def test_extra_inputs_pass_view_indices_given_once_for_every_sample_unchanged():
    # the multi-view pipeline documents view_indices as [V] or [B, V] and hands them to this hook; a [V] tensor was
    # taken for a batch of V samples: refused ("batch 3 does not divide the batch 2") unless B == V, or repeated to
    # [B] and refused by the model
    from cosmos_hf.diffusion import CosmosMultiViewTransformer3DModel
    from cosmos_hf.diffusion.nano import tiny_transformer
    from cosmos_hf.diffusion.post_training import extra_transformer_inputs

    model = CosmosMultiViewTransformer3DModel.from_video2world(tiny_transformer(video2world=True), num_views=3,
                                                               view_embed_dim=3)
    g = torch.Generator().manual_seed(0)
    for batch in (1, 2, 6):
        inputs = dict(hidden_states=torch.randn(batch, 4, 6, 8, 8, generator=g),
                      timestep=torch.rand(batch, generator=g),
                      encoder_hidden_states=torch.randn(batch, 15, 16, generator=g), fps=24,
                      condition_mask=torch.zeros(batch, 1, 6, 8, 8), padding_mask=torch.zeros(1, 1, 8, 8))
        view_indices = torch.tensor([2, 1, 0])
        expected = model(**inputs, view_indices=view_indices, return_dict=False)[0]
        with extra_transformer_inputs(model, view_indices=view_indices):
            assert torch.equal(model(**inputs, return_dict=False)[0], expected)
        with extra_transformer_inputs(model, view_indices=view_indices[None]):  # [1, V]: repeated per sample
            assert torch.equal(model(**inputs, return_dict=False)[0], expected)
