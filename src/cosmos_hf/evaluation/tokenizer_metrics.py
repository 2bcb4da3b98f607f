"""Tokenizer evaluation (TokenBench protocol): PSNR, SSIM, rFVD (and LPIPS) between reference and reconstructed videos.

Either compare two folders of videos matched by file name (TokenBench's `--gtpath` / `--targetpath`), or let
`reconstruct_with_autoencoder` run the videos through a saved autoencoder (a tokenizer folder, or a pipeline
folder's `vae` component) first. PSNR/SSIM are per video (see `video_metrics`) then averaged over videos; rFVD
pools one I3D feature vector per video on each side (so it needs >= 2 videos).
"""

from pathlib import Path

import numpy as np

from .video_metrics import psnr, ssim

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".npy")


def list_videos(folder) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise FileNotFoundError(f"no such video file or folder: {folder}")
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise ValueError(f"{folder} holds no videos ({', '.join(VIDEO_SUFFIXES)})")
    return videos


def load_video(path) -> np.ndarray:
    """uint8 (T, H, W, 3) from a video file or a .npy array."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        video = np.load(path, allow_pickle=False)
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"{path}: .npy videos must be uint8 (T, H, W, 3), got {video.dtype} {video.shape}")
        return video
    from ..data import read_video

    return read_video(path)[0]


def pair_videos(reference_folder, reconstructed_folder) -> list[tuple[Path, Path]]:
    """Videos of the two folders matched by file stem; any unmatched name is an error (as in TokenBench)."""
    references = {p.stem: p for p in list_videos(reference_folder)}
    reconstructions = {p.stem: p for p in list_videos(reconstructed_folder)}
    if set(references) != set(reconstructions):
        only_ref = sorted(set(references) - set(reconstructions))[:5]
        only_rec = sorted(set(reconstructions) - set(references))[:5]
        raise ValueError(
            f"video names differ between folders: only in reference {only_ref}, only in reconstructed {only_rec}"
        )
    return [(references[k], reconstructions[k]) for k in sorted(references)]


def evaluate_video_pairs(
    pairs, i3d=None, max_frames: int | None = None, progress: bool = True, lpips_model=None
) -> dict:
    """Per-video PSNR/SSIM (and LPIPS when `lpips_model` is given) and, with an I3D extractor, rFVD over all videos.

    `pairs`: iterable of (name, reference uint8 video, reconstructed uint8 video). A reconstruction with fewer
    frames than its reference (causal tokenizers drop trailing frames that do not fill a latent step) is compared
    on the common prefix; the number of frames used is recorded.
    """
    from tqdm.auto import tqdm

    per_video, features_ref, features_rec = [], [], []
    for name, reference, reconstructed in tqdm(list(pairs), desc="videos", disable=not progress):
        frames = min(len(reference), len(reconstructed))
        if max_frames:
            frames = min(frames, max_frames)
        reference, reconstructed = reference[:frames], reconstructed[:frames]
        if reference.shape != reconstructed.shape:
            raise ValueError(
                f"{name}: reference {reference.shape} and reconstruction {reconstructed.shape} differ in size"
            )
        entry = {
            "name": name,
            "frames": frames,
            "psnr": psnr(reference, reconstructed),
            "ssim": ssim(reference, reconstructed),
        }
        if lpips_model is not None:
            from .lpips import lpips_video

            entry["lpips"] = lpips_video(lpips_model, reference, reconstructed)
        per_video.append(entry)
        if i3d is not None:
            features_ref.append(i3d(reference))
            features_rec.append(i3d(reconstructed))
    if not per_video:
        raise ValueError("no video pairs to evaluate")
    psnrs = np.array([v["psnr"] for v in per_video])
    result = {
        "num_videos": len(per_video),
        "psnr": float(psnrs.mean()),
        "ssim": float(np.mean([v["ssim"] for v in per_video])),
        "rfvd": None,
        "lpips": float(np.mean([v["lpips"] for v in per_video])) if lpips_model is not None else None,
        "per_video": per_video,
    }
    if i3d is not None:
        from .i3d import frechet_distance_from_features

        if len(per_video) < 2:
            raise ValueError("rFVD needs at least 2 videos (a covariance of one sample is undefined)")
        result["rfvd"] = frechet_distance_from_features(np.stack(features_ref), np.stack(features_rec))
    return result


def load_autoencoder(folder, device: str = "cpu"):
    """An autoencoder from a saved model folder, or the `vae` component of a saved pipeline folder."""
    import json

    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        from ..pipelines import load_pipeline

        pipeline = load_pipeline(folder, trust_remote_code=True)
        for attribute in ("vae", "tokenizer_model", "video_tokenizer"):
            model = getattr(pipeline, attribute, None)
            if model is not None and hasattr(model, "decode"):
                return model.to(device).eval()
        raise ValueError(f"pipeline {folder} has no autoencoder component (looked for vae / video_tokenizer)")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{folder} is neither a pipeline folder (model_index.json) nor a model folder (config.json)"
        )
    class_name = json.loads(config_path.read_text()).get("_class_name")
    import importlib

    for module_name in ("cosmos_hf.tokenizers", "diffusers"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        model_class = getattr(module, class_name or "", None)
        if model_class is not None:
            return model_class.from_pretrained(str(folder)).to(device).eval()
    raise ValueError(
        f"unknown autoencoder class {class_name!r} in {config_path} (not in cosmos_hf.tokenizers or diffusers)"
    )


def reconstruct_with_autoencoder(autoencoder, video) -> np.ndarray:
    """uint8 (T, H, W, 3) -> encode -> decode -> uint8, deterministic (the posterior mode for VAEs)."""
    import torch

    from ..data import frames_to_tensor, tensor_to_frames

    parameter = next(autoencoder.parameters(), None)
    device = parameter.device if parameter is not None else "cpu"
    dtype = parameter.dtype if parameter is not None else torch.float32
    with torch.no_grad():
        x = frames_to_tensor(video).to(device=device, dtype=dtype)
        encoded = autoencoder.encode(x)
        if hasattr(encoded, "latent_dist"):
            latents = encoded.latent_dist.mode()
        elif getattr(encoded, "codes", None) is not None:  # discrete tokenizers: decode the quantized codes
            latents = encoded.codes
        elif hasattr(encoded, "latents"):
            latents = encoded.latents
        elif isinstance(encoded, (tuple, list)):
            latents = encoded[0]
        else:
            latents = encoded
        decoded = autoencoder.decode(latents)
        decoded = (
            decoded.sample
            if hasattr(decoded, "sample")
            else (decoded[0] if isinstance(decoded, (tuple, list)) else decoded)
        )
    return tensor_to_frames(decoded.float())
