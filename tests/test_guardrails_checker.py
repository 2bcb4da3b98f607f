"""CosmosSafetyChecker: fail-closed combination of the guards, and a drop-in for diffusers' Cosmos pipelines."""

import numpy as np
import pytest
import torch
from test_guardrails_tiny_models import scripted_causal_lm, word_level_tokenizer
from test_guardrails_video import draw_face

from cosmos_hf.guardrails import CosmosSafetyChecker, GuardrailBlockedError, GuardrailVerdict, LLMSafetyClassifier
from cosmos_hf.guardrails.checker import resolve_safety_checker


def unsafe_video_classifier(frames):
    return GuardrailVerdict(False, "video_classifier", "frame 0 classified as Violence")


def broken_guard(_):
    raise RuntimeError("weights missing")


# ---------------------------------------------------------------------------------------------- unit level
def test_default_checker_is_offline_and_blocks_text():
    checker = CosmosSafetyChecker()
    assert checker.active_text_guards == ["blocklist"] and checker.active_video_guards == ["face_pixelation"]
    assert checker.check_text_safety("a robot arm stacks three cubes")
    assert not checker.check_text_safety("a man st@bbing a stranger")
    assert checker.last_verdict.details["category"] == "violence"


def test_llm_classifier_runs_after_the_blocklist():
    tokenizer = word_level_tokenizer()
    llm = LLMSafetyClassifier(scripted_causal_lm(tokenizer, {"[/INST]": "unsafe", "unsafe": "O1"}), tokenizer)
    checker = CosmosSafetyChecker(text_classifier=llm)
    assert not checker.check_text_safety("a man pushes his father down the stairs")  # passes the blocklist
    assert checker.last_verdict.guard == "llm_classifier" and "violence" in checker.last_verdict.reason
    assert isinstance(dict(checker.named_modules())["text_classifier"], LLMSafetyClassifier)  # moves with .to()


def test_a_failing_guard_blocks_and_says_why():
    checker = CosmosSafetyChecker(text_classifier=broken_guard)
    with pytest.raises(GuardrailBlockedError, match="llm_classifier.*RuntimeError: weights missing"):
        checker.check_text_safety("a robot arm stacks three cubes")
    checker = CosmosSafetyChecker(video_classifier=broken_guard)
    with pytest.raises(GuardrailBlockedError, match="weights missing"):
        checker.check_video_safety(np.zeros((2, 32, 32, 3), np.uint8))

    class BrokenDetector:
        def __call__(self, frame):
            raise MemoryError("out of memory")

    from cosmos_hf.guardrails import FacePixelator

    checker = CosmosSafetyChecker(face_pixelator=FacePixelator(detector=BrokenDetector()))
    with pytest.raises(GuardrailBlockedError, match="face_pixelation.*out of memory"):
        checker.check_video_safety(np.zeros((2, 32, 32, 3), np.uint8))


def test_unsafe_video_raises_or_blanks_never_passes():
    frames = np.full((2, 32, 32, 3), 128, np.uint8)
    with pytest.raises(GuardrailBlockedError, match="Violence"):
        CosmosSafetyChecker(video_classifier=unsafe_video_classifier).check_video_safety(frames)
    blank = CosmosSafetyChecker(video_classifier=unsafe_video_classifier, on_unsafe_video="blank")
    assert not blank.check_video_safety(frames).any()
    with pytest.raises(GuardrailBlockedError, match=r"\(T, H, W, 3\)"):
        CosmosSafetyChecker().check_video_safety(np.zeros((32, 32, 3), np.uint8))


def test_configuration_errors_are_named():
    with pytest.raises(ValueError, match="require_all.*llm_classifier, video_classifier"):
        CosmosSafetyChecker(require_all=True)
    with pytest.raises(ValueError, match="no text guard"):
        CosmosSafetyChecker(blocklist=None)
    with pytest.raises(ValueError, match="on_unsafe_video"):
        CosmosSafetyChecker(on_unsafe_video="ignore")


def test_resolve_safety_checker_is_on_by_default_with_explicit_opt_out():
    assert isinstance(resolve_safety_checker(None), CosmosSafetyChecker)
    assert resolve_safety_checker(None, disable_safety_checker=True) is None
    with pytest.raises(ValueError, match="check_text_safety"):
        resolve_safety_checker(object())
    with pytest.raises(ValueError, match="not both"):
        resolve_safety_checker(CosmosSafetyChecker(), disable_safety_checker=True)


# ------------------------------------------------------------------------------------ diffusers' pipeline
def tiny_diffusers_text2world(safety_checker):
    """diffusers' CosmosTextToWorldPipeline with random tiny components (diffusers' own test sizes), no downloads."""
    from diffusers import AutoencoderKLCosmos, CosmosTextToWorldPipeline, CosmosTransformer3DModel, EDMEulerScheduler
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = CosmosTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2, mlp_ratio=2,
        text_embed_dim=32, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
        concat_padding_mask=True, extra_pos_embed_type="learnable",
    )
    vae = AutoencoderKLCosmos(
        in_channels=3, out_channels=3, latent_channels=4, encoder_block_out_channels=(8, 8, 8, 8),
        decode_block_out_channels=(8, 8, 8, 8), attention_resolutions=(8,), resolution=64, num_layers=2,
        patch_size=4, patch_type="haar", scaling_factor=1.0, spatial_compression_ratio=4, temporal_compression_ratio=4,
    )
    scheduler = EDMEulerScheduler(
        sigma_max=80, sigma_data=0.5, prediction_type="epsilon", final_sigmas_type="sigma_min"
    )
    tokenizer = word_level_tokenizer(chat_template=None)
    text_encoder = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer), d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4)
    )
    return CosmosTextToWorldPipeline(
        text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer, vae=vae, scheduler=scheduler,
        safety_checker=safety_checker,
    )


CALL = dict(height=96, width=96, num_frames=9, num_inference_steps=1, max_sequence_length=8, output_type="np")


def test_diffusers_cosmos_pipeline_runs_with_our_checker_and_pixelates_faces():
    pipe = tiny_diffusers_text2world(CosmosSafetyChecker()).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    face = draw_face(96)
    face_video = torch.from_numpy(np.stack([face] * 9)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1

    # Let the decoder "generate" a face: the pipeline must send it through check_video_safety.
    pipe.vae.decode = lambda latents, return_dict=False: (face_video,)
    frames = pipe("a robot arm stacks cubes", generator=torch.Generator().manual_seed(0), **CALL).frames[0]
    assert frames.shape == (9, 96, 96, 3)
    out = np.round(frames * 255).astype(np.uint8)
    assert pipe.safety_checker.last_verdict.details["faces_per_frame"][0] >= 1
    center = (slice(34, 46), slice(28, 68))
    assert np.abs(out[0][center].astype(int) - face[center].astype(int)).max() > 60  # eyes averaged away
    assert np.abs(out[0][:4, :4].astype(int) - face[:4, :4].astype(int)).max() <= 1  # background kept


def test_diffusers_cosmos_pipeline_refuses_unsafe_prompts_and_videos():
    pipe = tiny_diffusers_text2world(CosmosSafetyChecker(video_classifier=unsafe_video_classifier))
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match="unsafe text"):
        pipe("how to make a p1pe b0mb", **CALL)
    assert pipe.safety_checker.last_verdict.details["entry"] == "pipe bomb"
    with pytest.raises(GuardrailBlockedError, match="Violence"):
        pipe("a robot arm stacks cubes", generator=torch.Generator().manual_seed(0), **CALL)


def test_diffusers_pipeline_saved_and_reloaded_with_our_checker(tmp_path):
    from diffusers import CosmosTextToWorldPipeline

    tiny_diffusers_text2world(CosmosSafetyChecker()).save_pretrained(tmp_path / "pipe")  # checker recorded as None
    pipe = CosmosTextToWorldPipeline.from_pretrained(tmp_path / "pipe", safety_checker=CosmosSafetyChecker())
    with pytest.raises(ValueError, match="unsafe text"):
        pipe("a man st4bbing a guard", **CALL)


def hub_cache_snapshot(cache_dir, repo_id):
    """The folder a Hugging Face cache keeps `repo_id` in (models--org--name/snapshots/<rev>), created empty."""
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    return snapshot


def test_reference_checkpoint_folder_loads_all_four_guards(tmp_path):
    """The reference's guardrail/ layout, filled with tiny random models, loads offline into one checker."""
    from peft import LoraConfig, get_peft_model
    from test_guardrails_video import EMBED_DIM, head_that_always_predicts, tiny_siglip_folder

    from cosmos_hf.guardrails.checker import REFERENCE_MODEL_IDS
    from cosmos_hf.guardrails.retinaface import RetinaFace, RetinaFaceDetector

    root = tmp_path / "checkpoints" / "Cosmos-Guardrail1" / "guardrail"
    tokenizer = word_level_tokenizer()
    base = scripted_causal_lm(tokenizer, {"[/INST]": "safe"})
    snapshot = hub_cache_snapshot(root / "aegis", REFERENCE_MODEL_IDS["llm"])
    base.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)
    target = scripted_causal_lm(tokenizer, {"[/INST]": "unsafe", "unsafe": "O3"})
    size = base.config.vocab_size
    adapter = get_peft_model(base, LoraConfig(r=size, lora_alpha=size, target_modules=["lm_head"]))
    with torch.no_grad():
        adapter.base_model.model.lm_head.lora_A["default"].weight.copy_(torch.eye(size))
        adapter.base_model.model.lm_head.lora_B["default"].weight.copy_(target.lm_head.weight - base.lm_head.weight)
    adapter.save_pretrained(hub_cache_snapshot(root / "aegis", REFERENCE_MODEL_IDS["llm_adapter"]),
                            save_embedding_layers=False)

    video_dir = root / "video_content_safety_filter"
    siglip = tiny_siglip_folder(tmp_path)
    snapshot = hub_cache_snapshot(video_dir, REFERENCE_MODEL_IDS["siglip"])
    for path in siglip.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())
    head = head_that_always_predicts(0)
    torch.save({"model": {f"network.{k}": v for k, v in head.state_dict().items()}}, video_dir / "safety_filter.pt")
    (root / "face_blur_filter").mkdir()
    torch.save({f"module.{k}": v for k, v in RetinaFace().state_dict().items()},
               root / "face_blur_filter" / "Resnet50_Final.pth")
    (root / "blocklist" / "custom").mkdir(parents=True)
    (root / "blocklist" / "custom" / "words").write_text("zorblax\n")

    checker = CosmosSafetyChecker.from_reference_checkpoints(tmp_path / "checkpoints", llm_dtype=torch.float32)
    assert checker.active_text_guards == ["blocklist", "llm_classifier"]
    assert checker.active_video_guards == ["video_classifier", "face_pixelation"]
    assert isinstance(checker.face_pixelator.detector, RetinaFaceDetector)
    assert checker.video_classifier.head.config.input_size == EMBED_DIM
    assert not checker.check_text_safety("the zorblax appears")  # the reference's own list is merged in
    assert checker.last_verdict.details["category"] == "reference_custom"
    assert not checker.check_text_safety("a robot stacks cubes")  # the Aegis adapter answers "unsafe O3"
    assert checker.last_verdict.details["names"] == ["criminal_planning"]

    (root / "face_blur_filter" / "Resnet50_Final.pth").unlink()
    with pytest.raises(FileNotFoundError, match="Resnet50_Final.pth"):
        CosmosSafetyChecker.from_reference_checkpoints(root)
