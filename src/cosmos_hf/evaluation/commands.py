"""`cosmos-hf eval tokenizer|geometry|camera|physics`: run a benchmark, write results.json + report.md + PNG plots."""

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from ..utils import non_negative_int, positive_int


def _command_line() -> str:
    return "cosmos-hf " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else "cosmos-hf eval"


def _videos_from(paths):
    from .tokenizer_metrics import list_videos

    videos = []
    for path in paths:
        videos += list_videos(path)
    return videos


def _parse_intrinsics(text, height, width, fov):
    from .geometry import default_intrinsics

    if text is None:
        return default_intrinsics(height, width, fov)
    try:
        fx, fy, cx, cy = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--intrinsics must be 'fx,fy,cx,cy' in pixels, got {text!r}") from None
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])


def load_camera_file(path):
    """cam_to_world (T, 4, 4) and intrinsics (3, 3) from .npz or .json with those keys (the sim record's names)."""
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"camera file not found: {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files}
    elif path.suffix == ".json":
        fields = {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(path.read_text()).items()}
    else:
        raise ValueError(f"camera file must be .npz or .json, got {path}")
    if "cam_to_world" not in fields:
        raise ValueError(f"{path} needs a 'cam_to_world' array (T, 4, 4, OpenCV axes); it has {sorted(fields)}")
    intrinsics = fields.get("intrinsics")
    if intrinsics is not None:
        intrinsics = np.asarray(intrinsics, dtype=np.float64)
        if intrinsics.ndim == 3:  # per-frame K: evaluation assumes it constant
            intrinsics = intrinsics[0]
    return np.asarray(fields["cam_to_world"], dtype=np.float64), intrinsics


# ----------------------------------------------------------------------------------------------------------- tokenizer
def run_tokenizer(args) -> int:
    from .report import markdown_table, plot_grouped_bars, write_json, write_text
    from .tokenizer_metrics import (
        evaluate_video_pairs,
        load_autoencoder,
        load_video,
        pair_videos,
        reconstruct_with_autoencoder,
    )

    sources = [bool(args.reconstructed), bool(args.tokenizer), bool(args.pipeline)]
    if sum(sources) != 1:
        raise ValueError("give exactly one of --reconstructed FOLDER, --tokenizer FOLDER or --pipeline FOLDER")
    i3d = None
    if args.i3d:
        from .i3d import load_i3d

        i3d = load_i3d(args.i3d, device=args.device)
    else:
        print(
            "rFVD skipped: pass --i3d PATH (local i3d_torchscript.pt of StyleGAN-V/TokenBench, "
            "or an InceptionI3d state dict)"
        )
    if args.reconstructed:
        pairs = (
            (ref.stem, load_video(ref), load_video(rec))
            for ref, rec in pair_videos(args.reference, args.reconstructed)
        )
    else:
        autoencoder = load_autoencoder(args.tokenizer or args.pipeline, device=args.device)

        def generate():
            for ref in _videos_from([args.reference]):
                video = load_video(ref)[: args.max_frames]
                yield ref.stem, video, reconstruct_with_autoencoder(autoencoder, video)

        pairs = generate()
    lpips_model = None
    if args.lpips_vgg or args.lpips_lin:
        if not (args.lpips_vgg and args.lpips_lin):
            raise ValueError(
                "LPIPS needs both --lpips-vgg (torchvision VGG16 state dict) and --lpips-lin (LPIPS v0.1 vgg.pth)"
            )
        from .lpips import LPIPS

        lpips_model = LPIPS.from_files(args.lpips_vgg, args.lpips_lin).to(args.device)
    result = evaluate_video_pairs(
        pairs, i3d=i3d, max_frames=args.max_frames, progress=not args.no_progress, lpips_model=lpips_model
    )
    result["config"] = {
        "reference": str(args.reference),
        "i3d": args.i3d,
        "max_frames": args.max_frames,
        "command": _command_line(),
    }
    out = Path(args.out)
    write_json(out / "results.json", result)
    names = [v["name"] for v in result["per_video"]]
    plot_grouped_bars(
        out / "psnr_per_video.png",
        names,
        {"PSNR": [v["psnr"] for v in result["per_video"]]},
        "PSNR per video",
        "PSNR (dB)",
        inf_cap=60.0,
    )
    plot_grouped_bars(
        out / "ssim_per_video.png", names, {"SSIM": [v["ssim"] for v in result["per_video"]]}, "SSIM per video", "SSIM"
    )
    rfvd = "n/a (no --i3d)" if result["rfvd"] is None else f"{result['rfvd']:.3f}"
    lpips_text = "n/a (no --lpips-vgg/--lpips-lin)" if result["lpips"] is None else f"{result['lpips']:.4f}"
    text = "\n".join(
        [
            "# Tokenizer evaluation",
            "",
            "```bash",
            result["config"]["command"],
            "```",
            "",
            markdown_table(
                ["videos", "PSNR", "SSIM", "rFVD", "LPIPS"],
                [[str(result["num_videos"]), result["psnr"], result["ssim"], rfvd, lpips_text]],
            ),
            "",
            markdown_table(
                ["video", "frames", "PSNR", "SSIM"],
                [[v["name"], str(v["frames"]), v["psnr"], v["ssim"]] for v in result["per_video"]],
            ),
            "",
            "![PSNR per video](psnr_per_video.png) ![SSIM per video](ssim_per_video.png)",
            "",
        ]
    )
    write_text(out / "report.md", text)
    print(
        f"PSNR {result['psnr']:.3f} dB  SSIM {result['ssim']:.4f}  rFVD {rfvd}  LPIPS {lpips_text}  "
        f"({result['num_videos']} videos) -> {out}"
    )
    return 0


# ------------------------------------------------------------------------------------------------------------ geometry
def run_geometry(args) -> int:
    from .geometry import geometric_consistency
    from .report import markdown_table, plot_curves, plot_grouped_bars, write_json, write_text
    from .tokenizer_metrics import load_video

    camera_intrinsics = load_camera_file(args.poses)[1] if args.poses else None
    per_video = []
    for path in _videos_from(args.video):
        video = load_video(path)
        intrinsics = (
            camera_intrinsics
            if camera_intrinsics is not None
            else _parse_intrinsics(args.intrinsics, *video.shape[1:3], args.fov)
        )
        metrics = geometric_consistency(video, intrinsics, stride=args.stride, progress=not args.no_progress,
                                        min_parallax_px=args.min_parallax_px, max_frames=args.max_frames)
        metrics["name"] = path.stem
        per_video.append(metrics)
    errors = [v["sampson_error_px"] for v in per_video if not np.isnan(v["sampson_error_px"])]
    result = {
        "benchmark": "geometry",
        "num_videos": len(per_video),
        "sampson_error_px": float(np.mean(errors)) if errors else float("nan"),
        "pose_success_rate_pairs": float(np.mean([v["pose_success_rate"] for v in per_video])),
        "pose_success_rate_videos": float(np.mean([v["video_pose_success"] for v in per_video])),
        "per_video": per_video,
        "config": {"stride": args.stride, "min_parallax_px": args.min_parallax_px, "max_frames": args.max_frames,
                   "fov": args.fov, "intrinsics": args.intrinsics, "command": _command_line()},
    }
    out = Path(args.out)
    write_json(out / "results.json", result)
    names = [v["name"] for v in per_video]
    plot_grouped_bars(
        out / "sampson_per_video.png",
        names,
        {"Sampson error (px)": [v["sampson_error_px"] for v in per_video]},
        "Sampson error per video",
        "pixels",
    )
    plot_curves(
        out / "sampson_per_pair.png",
        {v["name"]: [p["sampson_error_px"] for p in v["pairs"]] for v in per_video},
        "Sampson error per frame pair",
        "pair",
        "pixels",
    )
    text = "\n".join(
        [
            "# 3D consistency",
            "",
            "```bash",
            result["config"]["command"],
            "```",
            "",
            markdown_table(
                ["videos", "Sampson error (px)", "pose success (pairs)", "pose success (videos)"],
                [
                    [
                        str(result["num_videos"]),
                        result["sampson_error_px"],
                        result["pose_success_rate_pairs"],
                        result["pose_success_rate_videos"],
                    ]
                ],
            ),
            "",
            markdown_table(
                ["video", "Sampson (px)", "pair success", "video success", "mean matches"],
                [
                    [
                        v["name"],
                        v["sampson_error_px"],
                        v["pose_success_rate"],
                        str(v["video_pose_success"]),
                        v["mean_matches"],
                    ]
                    for v in per_video
                ],
            ),
            "",
            "![Sampson per video](sampson_per_video.png) ![Sampson per pair](sampson_per_pair.png)",
            "",
        ]
    )
    write_text(out / "report.md", text)
    print(
        f"Sampson error {result['sampson_error_px']:.3f} px, "
        f"pose success {result['pose_success_rate_videos']:.3f} of videos -> {out}"
    )
    return 0


# -------------------------------------------------------------------------------------------------------------- camera
def run_camera(args) -> int:
    from .camera import camera_control_errors
    from .report import markdown_table, plot_curves, write_json, write_text
    from .tokenizer_metrics import load_video

    cam_to_world, intrinsics = load_camera_file(args.poses)
    video = load_video(args.video)
    if args.intrinsics or intrinsics is None:
        intrinsics = _parse_intrinsics(args.intrinsics, *video.shape[1:3], args.fov)
    if len(cam_to_world) != len(video):
        raise ValueError(f"{args.poses} has {len(cam_to_world)} poses but {args.video} has {len(video)} frames")
    result = camera_control_errors(video, cam_to_world, intrinsics, matcher=args.matcher)
    result.update(benchmark="camera", video=str(args.video), poses=str(args.poses), command=_command_line())
    out = Path(args.out)
    write_json(out / "results.json", result)
    plot_curves(
        out / "rotation_error_per_frame.png",
        {"rotation error": result["rotation_error_per_frame"]},
        "Rotation error per frame",
        "frame",
        "degrees",
    )
    plot_curves(
        out / "translation_error_per_frame.png",
        {"translation error": result["translation_error_per_frame"]},
        "Translation error per frame",
        "frame",
        "fraction of path extent",
    )
    text = "\n".join(
        [
            "# Camera-control accuracy",
            "",
            "```bash",
            result["command"],
            "```",
            "",
            markdown_table(
                ["rotation error (deg)", "translation error (normalised)", "pose success (pairs)"],
                [[result["rotation_error_deg"], result["translation_error"], result["pose_success_rate"]]],
            ),
            "",
            "![rotation](rotation_error_per_frame.png) ![translation](translation_error_per_frame.png)",
            "",
        ]
    )
    write_text(out / "report.md", text)
    translation = result["translation_error"]  # None when the requested camera centre does not move (a pan)
    translation = "n/a (no requested translation)" if translation is None else f"{translation:.4f}"
    print(f"RotErr {result['rotation_error_deg']:.3f} deg, TransErr {translation} -> {out}")
    return 0


# ------------------------------------------------------------------------------------------------------------- physics
# --condition-detail-transfer -> the transfer settings scored (None: the pipeline's saved default)
DETAIL_TRANSFER_VARIANTS = {"config": [None], "on": [True], "off": [False], "both": [False, True]}
DETAIL_TRANSFER_CHOICES = tuple(DETAIL_TRANSFER_VARIANTS)


def parse_call_kwargs(items) -> dict:
    """["use_medusa=true", "decoder_num_inference_steps=15"] -> {"use_medusa": True, ...} (values read as JSON,
    otherwise kept as strings)."""
    kwargs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"pipeline keyword arguments must look like NAME=VALUE, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def build_predictors(names, pipeline=None, device="cpu", num_inference_steps=None, guidance_scale=None, seed=0,
                     tokenizer_bound=None, condition_detail_transfer="config", call_kwargs=None,
                     condition_detail_gate=None):
    from .predictors import BASELINES, DiffusersPipelinePredictor, TokenizerRoundTripPredictor

    predictors = {}
    for name in names:
        if name not in BASELINES:
            raise ValueError(f"unknown predictor {name!r}; choose from {', '.join(BASELINES)} (and --pipeline FOLDER)")
        predictors[name] = BASELINES[name]()
    if condition_detail_transfer not in DETAIL_TRANSFER_CHOICES:
        raise ValueError(f"condition_detail_transfer must be one of {DETAIL_TRANSFER_CHOICES}, "
                         f"got {condition_detail_transfer!r}")
    if pipeline:
        for transfer in DETAIL_TRANSFER_VARIANTS[condition_detail_transfer]:
            kwargs = dict(call_kwargs or {})
            if condition_detail_gate is not None:
                kwargs["condition_detail_gate"] = condition_detail_gate
            if transfer is not None:
                kwargs["condition_detail_transfer"] = transfer
            predictor = DiffusersPipelinePredictor(
                pipeline, device=device, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                seed=seed, call_kwargs=kwargs,
            )
            if transfer is not None:
                predictor.name += " + detail transfer" if transfer else " (latent only)"
            predictors[predictor.name] = predictor
    if tokenizer_bound:
        for transfer in DETAIL_TRANSFER_VARIANTS[condition_detail_transfer]:  # a bare tokenizer has no saved default
            gate = condition_detail_gate if transfer and condition_detail_gate != 0 else None  # 0: no gate
            predictor = TokenizerRoundTripPredictor(tokenizer_bound, device=device,
                                                    condition_detail_transfer=bool(transfer), condition_detail_gate=gate)
            predictors[predictor.name] = predictor
    return predictors


def run_physics(args) -> int:
    from .physics import run_physics_benchmark
    from .report import write_physics_report

    try:
        from cosmos_hf.sim import NUM_VIEWS, SCENES
    except ImportError as err:
        raise ValueError(f"the physics benchmark needs cosmos_hf.sim (the built-in world): {err}") from None
    # The simulator refuses view NUM_VIEWS only when it is reached, after the earlier views were scored: check first.
    if args.views > NUM_VIEWS:
        raise ValueError(f"--views must be in 1..{NUM_VIEWS} (the simulator renders views 0..{NUM_VIEWS - 1}), "
                         f"got {args.views}")
    scenes = list(SCENES) if args.scenes == "all" else [s.strip() for s in args.scenes.split(",") if s.strip()]
    unknown = [s for s in scenes if s not in SCENES]
    if unknown:
        raise ValueError(f"unknown scenes {unknown}; valid: {', '.join(SCENES)}")
    names = [n.strip() for n in args.predictors.split(",") if n.strip()] if args.predictors else []
    predictors = build_predictors(
        names, args.pipeline, args.device, args.num_inference_steps, args.guidance_scale, args.seed,
        args.tokenizer_bound, args.condition_detail_transfer, parse_call_kwargs(args.pipeline_kwargs),
        args.condition_detail_gate,
    )
    results = run_physics_benchmark(
        predictors,
        scenes,
        range(args.seed_offset, args.seed_offset + args.seeds),
        range(args.views),
        args.cond_frames,
        args.num_frames,
        args.height,
        args.width,
        args.fps,
        args.max_colour_distance,
        progress=not args.no_progress,
    )
    results["config"]["command"] = _command_line()
    written = write_physics_report(results, args.out, command=results["config"]["command"])
    for cond_key, by_predictor in results["results"].items():
        for name, entry in by_predictor.items():
            o = entry["overall"]
            print(
                f"{cond_key} {name:>20}: PSNR {o['psnr']:.2f}  SSIM {o['ssim']:.3f}  "
                f"fgIoU {o['fg_iou']:.3f}  objIoU {o['object_iou']:.3f}"
            )
    print(f"wrote {written['json']}, {written['markdown']} and {len(written['plots'])} plots")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate tokenizers, 3D consistency, camera control, physics alignment"
    )
    group = parser.add_subparsers(dest="eval_command", metavar="BENCHMARK")

    def common(p):
        p.add_argument("--out", required=True, help="output folder for results.json, report.md and PNG plots")
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        p.add_argument("--device", default="cpu", help="torch device for networks (I3D, pipelines)")

    tok = group.add_parser("tokenizer", help="PSNR / SSIM / rFVD of reconstructions (TokenBench protocol)")
    tok.add_argument(
        "--reference", required=True, help="folder (or file) of reference videos (.mp4 ... or uint8 .npy)"
    )
    tok.add_argument("--reconstructed", help="folder of reconstructions with the same file names")
    tok.add_argument("--tokenizer", help="saved autoencoder folder to reconstruct the references with")
    tok.add_argument("--pipeline", help="saved pipeline folder whose `vae` reconstructs the references")
    tok.add_argument(
        "--i3d",
        help="local path of the I3D network for rFVD: the StyleGAN-V/TokenBench i3d_torchscript.pt "
        "(TorchScript is the "
        "official format of that file, loaded with torch.jit.load) or an InceptionI3d state dict (.safetensors / "
        "weights-only .pt). Never downloaded; rFVD is skipped without it.",
    )
    tok.add_argument("--lpips-vgg", help="local torchvision VGG16 state dict (e.g. vgg16-397923af.pth) for LPIPS")
    tok.add_argument(
        "--lpips-lin", help="local LPIPS v0.1 lin-layer weights (the lpips package's weights/v0.1/vgg.pth)"
    )
    tok.add_argument(
        "--max-frames", type=positive_int, default=None, help="compare at most this many frames per video"
    )
    common(tok)
    tok.set_defaults(func=run_tokenizer)

    geo = group.add_parser("geometry", help="3D consistency: SIFT matches, Sampson error (px), pose-recovery success")
    geo.add_argument("--video", nargs="+", required=True, help="video files or folders")
    geo.add_argument("--intrinsics", help="fx,fy,cx,cy in pixels (default: 60 degree horizontal FOV, centred)")
    geo.add_argument("--poses", help=".npz/.json with 'intrinsics' (3x3) to use for every video")
    geo.add_argument("--fov", type=float, default=60.0, help="horizontal FOV in degrees when intrinsics are unknown")
    geo.add_argument("--stride", type=positive_int, default=None,
                     help="pair every frame i with frame i+stride (default: pair frames by parallax)")
    geo.add_argument("--min-parallax-px", type=float, default=None,
                     help="parallax pairing: a frame pairs with the next one whose matches moved at least this median "
                          "distance (default: 8%% of the frame width)")
    geo.add_argument("--max-frames", type=positive_int, default=None, help="use only the first N frames per video")
    common(geo)
    geo.set_defaults(func=run_geometry)

    cam = group.add_parser("camera", help="rotation (deg) / translation (normalised) error of a generated camera path")
    cam.add_argument("--video", required=True, help="generated video")
    cam.add_argument(
        "--poses",
        required=True,
        help=".npz/.json with the requested 'cam_to_world' (T,4,4, OpenCV axes) and 'intrinsics' (3x3)",
    )
    cam.add_argument("--intrinsics", help="fx,fy,cx,cy overriding the file's intrinsics")
    cam.add_argument("--fov", type=float, default=60.0, help="horizontal FOV when no intrinsics are given")
    cam.add_argument("--matcher", choices=("sift", "klt"), default="sift",
                     help="frame-pair correspondences: SIFT (default) or KLT corner tracking, which still recovers "
                          "poses from small (64x64), textureless frames where SIFT finds too few matches")
    common(cam)
    cam.set_defaults(func=run_camera)

    phy = group.add_parser(
        "physics", help="physics alignment on the built-in 8 scenes (PSNR, SSIM, object IoU) vs baselines"
    )
    phy.add_argument(
        "--predictors",
        default="copy-last,constant-velocity,ground-truth",
        help="comma list of baselines: copy-last, constant-velocity, ground-truth ('' for none)",
    )
    phy.add_argument(
        "--pipeline", help="saved pipeline folder to evaluate (DiffusionPipeline.from_pretrained, trust_remote_code)"
    )
    phy.add_argument(
        "--tokenizer-bound",
        metavar="FOLDER",
        help="also score the ground truth encoded and decoded by this tokenizer (or a pipeline folder's vae): "
        "the best any model in that latent space can do",
    )
    phy.add_argument("--scenes", default="all", help="'all' or a comma list of scene names")
    phy.add_argument("--seeds", type=positive_int, default=2, help="seeds 0..N-1 per scene and view")
    phy.add_argument(
        "--seed-offset",
        type=non_negative_int,
        default=0,
        help="first simulator seed: seeds OFFSET..OFFSET+N-1 (default 0, the benchmark's); choose call options on "
        "seeds outside both the benchmark's and the training clips' (e.g. 100: the nano training archives start at "
        "1000)",
    )
    phy.add_argument("--views", type=positive_int, default=4, help="camera views 0..N-1 (the paper uses 4)")
    phy.add_argument(
        "--cond-frames", type=positive_int, nargs="+", default=[1, 9], help="conditioning lengths (paper: 1 9)"
    )
    phy.add_argument(
        "--num-frames", type=positive_int, default=33, help="clip length including conditioning (paper: 33)"
    )
    phy.add_argument("--height", type=positive_int, default=64)
    phy.add_argument("--width", type=positive_int, default=64)
    phy.add_argument(
        "--fps",
        type=float,
        default=24.0,
        help="clip frame rate (the simulator's default; Cosmos models generate 24 fps)",
    )
    phy.add_argument(
        "--max-colour-distance", type=float, default=48.0, help="RGB distance (0-255) for colour-matched masks"
    )
    phy.add_argument("--num-inference-steps", type=positive_int, default=None, help="passed to the pipeline")
    phy.add_argument("--guidance-scale", type=float, default=None, help="passed to the pipeline")
    phy.add_argument(
        "--condition-detail-transfer",
        choices=DETAIL_TRANSFER_CHOICES,
        default="config",
        help="Video2World pipelines: the saved default (config), on, off, or both (score the model each way)",
    )
    phy.add_argument(
        "--condition-detail-gate",
        type=float,
        default=None,
        help="Video2World and AR pipelines: condition_detail_gate (an RGB distance in (0, 1]; default the saved value; "
        "0 turns a saved gate off), also applied to --tokenizer-bound where it is scored with detail transfer "
        "(--condition-detail-transfer on/both)",
    )
    phy.add_argument(
        "--pipeline-kwargs",
        nargs="+",
        metavar="NAME=VALUE",
        default=[],
        help="extra keyword arguments of every pipeline call, values as JSON (e.g. use_medusa=true "
        "use_diffusion_decoder=false)",
    )
    phy.add_argument("--seed", type=int, default=0, help="base sampling seed of the pipeline (plus the scene seed)")
    common(phy)
    phy.set_defaults(func=run_physics)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
