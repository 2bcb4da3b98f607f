"""Built-in, fail-closed guardrails and the prompt upsampler.

Pre-guard (text): `KeywordBlocklist` (lemmatised, obfuscation-aware word lists that ship with the package)
and `LLMSafetyClassifier` (Aegis = LlamaGuard + PEFT adapter, or any transformers chat safety model).
Post-guard (video): `VideoContentSafetyClassifier` (SigLIP embeddings + 7-class MLP head per frame) and
`FacePixelator` (OpenCV Haar cascades offline; RetinaFace when its weights are given).
`CosmosSafetyChecker` combines them and is a drop-in `safety_checker` for diffusers' Cosmos pipelines.
`CosmosPromptUpsampler` / `CosmosVideoPromptUpsampler` rewrite short prompts into long captions.
"""

from ..utils import lazy_exports

_LAZY_IMPORTS = {
    "GuardrailVerdict": "core",
    "GuardrailBlockedError": "core",
    "KeywordBlocklist": "blocklist",
    "LLMSafetyClassifier": "llm_classifier",
    "build_moderation_prompt": "llm_classifier",
    "parse_safety_assessment": "llm_classifier",
    "AEGIS_CATEGORIES": "categories",
    "VIDEO_SAFETY_CLASSES": "categories",
    "SafetyCategory": "categories",
    "VideoSafetyHead": "video_classifier",
    "SiglipFrameEmbedder": "video_classifier",
    "VideoContentSafetyClassifier": "video_classifier",
    "HaarCascadeFaceDetector": "face_blur",
    "FacePixelator": "face_blur",
    "pixelate_region": "face_blur",
    "RetinaFaceDetector": "retinaface",
    "CosmosSafetyChecker": "checker",
    "resolve_safety_checker": "checker",
    "CosmosPromptUpsampler": "prompt_upsampler",
    "CosmosVideoPromptUpsampler": "prompt_upsampler",
}

__all__ = sorted(_LAZY_IMPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY_IMPORTS)
