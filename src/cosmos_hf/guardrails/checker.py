"""One safety checker for every Cosmos pipeline, ours and diffusers' own, with no external package.

diffusers' `CosmosTextToWorldPipeline`, `CosmosVideoToWorldPipeline`, `Cosmos2TextToImagePipeline`,
`Cosmos2VideoToWorldPipeline` and the Predict2.5 pipelines refuse to build without the `cosmos_guardrail`
package unless a `safety_checker` is passed. They call exactly: `safety_checker.to(device)`,
`check_text_safety(prompt) -> bool` before denoising, and `check_video_safety(uint8 [T, H, W, 3]) -> frames`
after decoding. `CosmosSafetyChecker` implements that contract:

    from diffusers import CosmosTextToWorldPipeline
    from cosmos_hf.guardrails import CosmosSafetyChecker

    pipe = CosmosTextToWorldPipeline.from_pretrained(path, safety_checker=CosmosSafetyChecker())

Guards (each one optional; the built-in, offline ones are on by default):
  text:  keyword blocklist (default on)  -> LLM safety classifier (Aegis / LlamaGuard, when given)
  video: per-frame content classifier (SigLIP + head, when given) -> face pixelation (default on, Haar)

Fail closed: an unsafe prompt makes `check_text_safety` return False (diffusers then raises); a guard that
raises makes the checker raise `GuardrailBlockedError` naming the guard and the error; an unsafe video raises
`GuardrailBlockedError` (or, with `on_unsafe_video="blank"`, comes back as black frames) — never the
original frames. `checker.last_verdict` holds the latest verdict with its reason.
"""

import logging
from pathlib import Path

import numpy as np
import torch

from .blocklist import KeywordBlocklist
from .core import GuardrailBlockedError, GuardrailVerdict, run_guard_fail_closed, safe_verdict
from .face_blur import FacePixelator
from .video_classifier import validate_frames

logger = logging.getLogger(__name__)

UNSAFE_VIDEO_ACTIONS = ("raise", "blank")

# The models the reference's guardrail checkpoint folder holds (as Hugging Face caches, by Hub id).
REFERENCE_MODEL_IDS = {
    "llm": "meta-llama/LlamaGuard-7b",
    "llm_adapter": "nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0",
    "siglip": "google/siglip-so400m-patch14-384",
}
DEFAULT = "default"  # sentinel: build the built-in offline guard


class CosmosSafetyChecker(torch.nn.Module):
    """Pre-guard on prompts, post-guard on generated videos; a drop-in `safety_checker` for diffusers' Cosmos.

    Args:
        blocklist: a `KeywordBlocklist`, "default" (the shipped lists) or None (off).
        text_classifier: an `LLMSafetyClassifier` (or any callable prompt -> GuardrailVerdict), or None.
        video_classifier: a `VideoContentSafetyClassifier` (or callable frames -> GuardrailVerdict), or None.
        face_pixelator: a `FacePixelator`, "default" (Haar cascades, offline) or None (off).
        on_unsafe_video: "raise" (GuardrailBlockedError) or "blank" (return black frames).
        require_all: refuse to build unless all four guards are configured (for deployments that must run the
            full reference guard set; the default only logs which guards are off).
    """

    def __init__(
        self,
        blocklist=DEFAULT,
        text_classifier=None,
        video_classifier=None,
        face_pixelator=DEFAULT,
        on_unsafe_video: str = "raise",
        require_all: bool = False,
    ):
        super().__init__()
        if on_unsafe_video not in UNSAFE_VIDEO_ACTIONS:
            raise ValueError(f"on_unsafe_video must be one of {UNSAFE_VIDEO_ACTIONS}, got {on_unsafe_video!r}")
        self.blocklist = KeywordBlocklist.default() if blocklist == DEFAULT else blocklist
        self.text_classifier = text_classifier  # nn.Module when an LLM: moves with .to(device)
        self.video_classifier = video_classifier
        self.face_pixelator = FacePixelator() if face_pixelator == DEFAULT else face_pixelator
        self.on_unsafe_video = on_unsafe_video
        self.last_verdict: GuardrailVerdict | None = None
        missing = [name for name, guard in self._all_guards().items() if guard is None]
        if require_all and missing:
            raise ValueError(f"require_all=True but these guards are not configured: {', '.join(missing)}")
        if not self.active_text_guards:
            raise ValueError("no text guard configured: pass blocklist='default' and/or a text_classifier")
        if missing:
            logger.info("Cosmos safety checker: guards not configured (no weights given): %s", ", ".join(missing))

    @classmethod
    def from_reference_checkpoints(cls, checkpoint_dir, device=None, llm_dtype=torch.bfloat16, model_ids=None,
                                   **kwargs) -> "CosmosSafetyChecker":
        """All four guards from the reference's downloaded `guardrail/` folder (offline; nothing is fetched):

            guardrail/aegis/                         HF cache: LlamaGuard-7b + the Aegis adapter
            guardrail/video_content_safety_filter/   safety_filter.pt + HF cache: SigLIP so400m
            guardrail/face_blur_filter/              Resnet50_Final.pth (RetinaFace)
            guardrail/blocklist/                     optional: custom/, exact_match/, whitelist/ keyword files

        `checkpoint_dir` may be the `guardrail/` folder itself or any folder containing it.
        """
        from .llm_classifier import LLMSafetyClassifier
        from .retinaface import RetinaFaceDetector
        from .video_classifier import VideoContentSafetyClassifier

        ids = {**REFERENCE_MODEL_IDS, **(model_ids or {})}
        root = Path(checkpoint_dir)
        found = [root] if root.name == "guardrail" else sorted(root.rglob("guardrail"))
        if not found or not found[0].is_dir():
            raise FileNotFoundError(f"no guardrail/ folder in {root}")
        root = found[0]
        needed = {
            "aegis": root / "aegis",
            "safety_filter.pt": root / "video_content_safety_filter" / "safety_filter.pt",
            "Resnet50_Final.pth": root / "face_blur_filter" / "Resnet50_Final.pth",
        }
        missing = [f"{name} ({path})" for name, path in needed.items() if not path.exists()]
        if missing:
            raise FileNotFoundError(f"reference guardrail checkpoints missing: {', '.join(missing)}")
        blocklist = (
            KeywordBlocklist.from_reference_directory(root / "blocklist")
            if (root / "blocklist").is_dir()
            else KeywordBlocklist.default()
        )
        text_classifier = LLMSafetyClassifier.from_pretrained(
            ids["llm"], adapter_name_or_path=ids["llm_adapter"], cache_dir=root / "aegis", torch_dtype=llm_dtype,
            device=device,
        )
        video_classifier = VideoContentSafetyClassifier.from_pretrained(
            ids["siglip"], needed["safety_filter.pt"], cache_dir=root / "video_content_safety_filter", device=device
        )
        detector = RetinaFaceDetector.from_checkpoint(needed["Resnet50_Final.pth"], device=device)
        return cls(blocklist, text_classifier, video_classifier, FacePixelator(detector=detector), require_all=True,
                   **kwargs)

    def _all_guards(self) -> dict:
        return {
            "blocklist": self.blocklist,
            "llm_classifier": self.text_classifier,
            "video_classifier": self.video_classifier,
            "face_pixelation": self.face_pixelator,
        }

    @property
    def active_text_guards(self) -> list[str]:
        return [n for n in ("blocklist", "llm_classifier") if self._all_guards()[n] is not None]

    @property
    def active_video_guards(self) -> list[str]:
        return [n for n in ("video_classifier", "face_pixelation") if self._all_guards()[n] is not None]

    # diffusers reads `.device` / `.dtype` of every nn.Module component.
    @property
    def device(self) -> torch.device:
        param = next(self.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        param = next(self.parameters(), None)
        return param.dtype if param is not None else torch.float32

    # ------------------------------------------------------------------------------------------- our API
    def check_text(self, prompt: str) -> GuardrailVerdict:
        """Run the text guards in order; the first that blocks (or fails) decides."""
        for name in self.active_text_guards:
            guard = self._all_guards()[name]
            check = guard.check if hasattr(guard, "check") else guard
            verdict = run_guard_fail_closed(name, check, prompt)
            if not verdict.is_safe:
                self.last_verdict = verdict
                return verdict
        self.last_verdict = safe_verdict(guards=self.active_text_guards)
        return self.last_verdict

    def check_video(self, frames) -> tuple[GuardrailVerdict, np.ndarray | None]:
        """(verdict, frames with faces pixelated) for uint8 frames [T, H, W, 3]; frames are None when blocked."""
        try:
            frames = validate_frames(frames)
        except ValueError as err:
            self.last_verdict = GuardrailVerdict(False, "video_input", str(err), details={"error": repr(err)})
            return self.last_verdict, None
        if self.video_classifier is not None:
            check = self.video_classifier.check if hasattr(self.video_classifier, "check") else self.video_classifier
            verdict = run_guard_fail_closed("video_classifier", check, frames)
            if not verdict.is_safe:
                self.last_verdict = verdict
                return verdict, None
        details = {}
        if self.face_pixelator is not None:
            result = {}

            def pixelate(f):
                result["frames"], boxes = self.face_pixelator(f)
                return safe_verdict("face_pixelation", faces_per_frame=[len(b) for b in boxes])

            verdict = run_guard_fail_closed("face_pixelation", pixelate, frames)
            if not verdict.is_safe:  # faces may be visible: never hand the frames out
                self.last_verdict = verdict
                return verdict, None
            frames = result["frames"]
            details = verdict.details
        self.last_verdict = safe_verdict(guards=self.active_video_guards, **details)
        return self.last_verdict, frames

    # ---------------------------------------------------------------------------- diffusers' interface
    def check_text_safety(self, prompt: str) -> bool:
        """True if the prompt may be used. False for unsafe prompts; raises GuardrailBlockedError if a guard failed."""
        verdict = self.check_text(prompt)
        if verdict.is_safe:
            return True
        if "error" in verdict.details:  # a broken guard: say why instead of a generic "unsafe prompt"
            raise GuardrailBlockedError(verdict)
        logger.warning("Cosmos guardrail blocked a prompt: %s", verdict.reason)
        return False

    def check_video_safety(self, frames: np.ndarray) -> np.ndarray:
        """Frames with faces pixelated; raises GuardrailBlockedError (or returns black frames) if unsafe."""
        verdict, out = self.check_video(frames)
        if verdict.is_safe:
            return out
        logger.warning("Cosmos guardrail blocked a video: %s", verdict.reason)
        if self.on_unsafe_video == "blank" and "error" not in verdict.details:
            return np.zeros_like(np.asarray(frames, dtype=np.uint8))
        raise GuardrailBlockedError(verdict)

    def forward(self, *args, **kwargs):
        raise TypeError("CosmosSafetyChecker is not called directly: use check_text_safety / check_video_safety")


def resolve_safety_checker(safety_checker=None, disable_safety_checker: bool = False):
    """What our pipelines do with their `safety_checker` argument: on by default, off only when asked explicitly.

    None -> a default `CosmosSafetyChecker()`; `disable_safety_checker=True` -> None (with a warning); anything
    else is used as given (it must offer check_text_safety and check_video_safety).
    """
    if disable_safety_checker:
        if safety_checker is not None:
            raise ValueError("pass either a safety_checker or disable_safety_checker=True, not both")
        logger.warning("Cosmos guardrails disabled by disable_safety_checker=True: prompts and videos are not checked")
        return None
    if safety_checker is None:
        return CosmosSafetyChecker()
    for method in ("check_text_safety", "check_video_safety"):
        if not callable(getattr(safety_checker, method, None)):
            raise ValueError(f"safety_checker of type {type(safety_checker).__name__} has no {method}() method")
    return safety_checker
