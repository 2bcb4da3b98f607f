"""`cosmos-hf tokenize`: tokenize a video file with a tokenizer folder, write tokens/latent and the reconstruction."""

import json
from pathlib import Path

from ..utils import positive_int


def register(subparsers):
    parser = subparsers.add_parser("tokenize", help="tokenize + reconstruct a video with a tokenizer folder")
    parser.add_argument("--model", required=True, help="tokenizer folder (from `cosmos-hf convert tokenizer` or save_pretrained)")
    parser.add_argument("--video", required=True, help="input video file (mp4, ...)")
    parser.add_argument("--out", required=True, help="output folder: tokens.safetensors, reconstruction.mp4, metrics.json")
    parser.add_argument("--max-frames", type=positive_int, default=None, help="read at most this many frames")
    parser.add_argument("--chunk-latent-frames", type=positive_int, default=None, help="stream in chunks of this many latent frames")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.set_defaults(func=run)


def run(args) -> int:
    import torch
    from safetensors.torch import save_file

    from ..data import frames_to_tensor, read_video, tensor_to_frames, write_video
    from ..utils import atomic_path
    from .convert import load_tokenizer
    from .validation import pad_video_frames

    model = load_tokenizer(args.model, torch_dtype=getattr(torch, args.dtype)).eval()
    frames, fps = read_video(args.video, max_frames=args.max_frames)
    video = frames_to_tensor(frames)
    tc = getattr(model.config, "temporal_compression", None) or model.config.temporal_compression_ratio
    video, num_frames = pad_video_frames(video, tc)
    if args.chunk_latent_frames:
        model.enable_streaming(args.chunk_latent_frames)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if hasattr(model, "tokenize"):
            tokens = model.tokenize(video)
            reconstruction = model.detokenize(tokens)
            tensors = {"indices": tokens.contiguous()}
        else:
            latent = model.encode(video).latent_dist.mode()
            reconstruction = model.decode(latent).sample
            tensors = {"latent": latent.float().contiguous()}
    reconstruction = tensor_to_frames(reconstruction.float()[:, :, :num_frames])
    with atomic_path(out / "tokens.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_video(out / "reconstruction.mp4", reconstruction, fps=fps)
    metrics = {"frames": num_frames, "psnr_db": video_psnr(frames[:num_frames], reconstruction),
               **{k: list(v.shape) for k, v in tensors.items()}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics))
    return 0


def video_psnr(frames, reconstruction) -> float:
    """PSNR in dB of two uint8 videos, one MSE over the whole video (TokenBench's definition, as
    `cosmos_hf.evaluation.video_metrics.psnr`; the tokenizers do not import the evaluation package, which builds on
    them). +inf when identical."""
    import numpy as np

    mse = float(np.mean((np.asarray(frames, np.float64) - np.asarray(reconstruction, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(20.0 * np.log10(255.0 / np.sqrt(mse)))
