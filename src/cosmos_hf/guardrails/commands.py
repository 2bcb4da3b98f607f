"""`cosmos-hf guard ...`: check a prompt, check and pixelate a video, score the blocklist, upsample a prompt.

    cosmos-hf guard text "a robot arm stacks cubes"                 # exit 0 = safe, 1 = blocked
    cosmos-hf guard video in.mp4 --out out.mp4                      # pixelate faces; exit 1 = blocked
    cosmos-hf guard redteam                                         # held-out red-team set (the README's numbers)
    cosmos-hf guard redteam tests/data/guardrails/red_team_tuning.jsonl
    cosmos-hf guard upsample "a robot" --model path/to/chat-lm
"""

import json
import sys
from pathlib import Path


def _add_text_guard_args(parser):
    parser.add_argument("--llm", help="LLM safety classifier (local folder or cached Hub id), e.g. LlamaGuard-7b")
    parser.add_argument("--llm-adapter", help="PEFT adapter for --llm (e.g. the Aegis adapter)")
    parser.add_argument("--no-blocklist", action="store_true", help="skip the keyword blocklist (needs --llm)")


def _build_checker(args, video: bool = False):
    from .checker import CosmosSafetyChecker

    text_classifier = None
    if getattr(args, "llm", None):
        from .llm_classifier import LLMSafetyClassifier

        text_classifier = LLMSafetyClassifier.from_pretrained(args.llm, adapter_name_or_path=args.llm_adapter)
    elif getattr(args, "llm_adapter", None):
        raise ValueError("--llm-adapter needs --llm (the base model it adapts)")
    video_classifier = face_pixelator = None
    if video:
        from .face_blur import FacePixelator

        if bool(args.siglip) != bool(args.head):
            raise ValueError("--siglip and --head go together (SigLIP encoder + classifier head)")
        if args.siglip:
            from .video_classifier import VideoContentSafetyClassifier

            video_classifier = VideoContentSafetyClassifier.from_pretrained(args.siglip, args.head)
        detector = None
        if args.retinaface:
            from .retinaface import RetinaFaceDetector

            detector = RetinaFaceDetector.from_checkpoint(args.retinaface)
        face_pixelator = None if args.no_face_pixelation else FacePixelator(detector=detector)
    return CosmosSafetyChecker(
        blocklist=None if getattr(args, "no_blocklist", False) else "default",
        text_classifier=text_classifier,
        video_classifier=video_classifier,
        face_pixelator=face_pixelator,
    )


def _print_verdict(verdict, as_json: bool):
    if as_json:
        print(json.dumps({"is_safe": verdict.is_safe, "guard": verdict.guard, "reason": verdict.reason,
                          "details": verdict.details}, default=str))
    else:
        print(("SAFE" if verdict.is_safe else "BLOCKED") + f" [{verdict.guard}] {verdict.reason}")


def run_text(args) -> int:
    checker = _build_checker(args)
    verdict = checker.check_text(args.prompt)
    _print_verdict(verdict, args.json)
    return 0 if verdict.is_safe else 1


def run_video(args) -> int:
    from ..data import read_video, write_video

    frames, fps = read_video(args.video)
    checker = _build_checker(args, video=True)
    verdict, out = checker.check_video(frames)
    _print_verdict(verdict, args.json)
    if not verdict.is_safe:
        return 1  # nothing is written for a blocked video
    if args.out:
        write_video(args.out, out, fps)
        print(f"wrote {args.out} ({len(out)} frames)", file=sys.stderr)
    return 0


def run_redteam(args) -> int:
    from .blocklist import KeywordBlocklist
    from .red_team import evaluate_text_guard, load_red_team

    report = evaluate_text_guard(KeywordBlocklist.default(), load_red_team(args.file))
    if not args.verbose:
        report = {k: v for k, v in report.items() if k not in ("false_positive_prompts", "false_negative_prompts")}
    print(json.dumps(report, indent=2))
    return 0


def run_upsample(args) -> int:
    from .checker import CosmosSafetyChecker
    from .prompt_upsampler import CosmosPromptUpsampler

    upsampler = CosmosPromptUpsampler.from_pretrained(
        args.model, do_sample=args.seed is not None, seed=args.seed, max_new_tokens=args.max_new_tokens,
        safety_checker=CosmosSafetyChecker(face_pixelator=None),
    )
    print(upsampler(args.prompt))
    return 0


def register(subparsers):
    parser = subparsers.add_parser(
        "guard", help="guardrails: check prompts and videos, pixelate faces, upsample prompts"
    )
    sub = parser.add_subparsers(dest="guard_command", metavar="GUARD_COMMAND", required=True)

    text = sub.add_parser("text", help="check a prompt (exit 0 safe, 1 blocked)")
    text.add_argument("prompt")
    _add_text_guard_args(text)
    text.add_argument("--json", action="store_true", help="print the verdict as JSON")
    text.set_defaults(func=run_text)

    video = sub.add_parser("video", help="check a video and pixelate faces (exit 0 safe, 1 blocked)")
    video.add_argument("video", type=Path)
    video.add_argument("--out", type=Path, help="where to write the video with faces pixelated")
    video.add_argument("--siglip", help="SigLIP encoder (local folder / cached id) for the per-frame classifier")
    video.add_argument("--head", help="classifier head: save_pretrained folder or reference safety_filter.pt")
    video.add_argument(
        "--retinaface", type=Path, help="RetinaFace ResNet-50 weights (Resnet50_Final.pth); default: Haar cascades"
    )
    video.add_argument("--no-face-pixelation", action="store_true")
    video.add_argument("--json", action="store_true")
    video.set_defaults(func=run_video)

    redteam = sub.add_parser("redteam", help="blocklist false positives / negatives on a labelled JSONL set")
    redteam.add_argument("file", nargs="?", default="tests/data/guardrails/red_team_heldout.jsonl", type=Path,
                         help="labelled JSONL (default: the held-out set, never used to tune the lists)")
    redteam.add_argument("--verbose", action="store_true", help="also list the misclassified prompts")
    redteam.set_defaults(func=run_redteam)

    upsample = sub.add_parser("upsample", help="rewrite a short prompt into a long caption with a chat LM")
    upsample.add_argument("prompt")
    upsample.add_argument("--model", required=True, help="chat LM folder (or cached Hub id)")
    upsample.add_argument("--seed", type=int, help="sample with this seed (default: greedy)")
    upsample.add_argument("--max-new-tokens", type=int, default=512)
    upsample.set_defaults(func=run_upsample)
    return parser


__all__ = ["register"]
