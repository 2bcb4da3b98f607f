"""Object masks in generated frames by colour matching, for the physics-alignment benchmark.

A generated video carries no segmentation, but every object of the built-in world has a known colour. We label
each generated pixel by its nearest *colour prototype*:

- object prototypes: the colours an object actually shows when rendered, i.e. up to `num_object_colours` (3)
  k-means centres of its pixels in the conditioning frames, where simulator masks are exact (lit and shaded faces
  of one box differ by far more than the threshold below, so one mean colour is not enough). An object not visible
  in the conditioning frames falls back to its metadata colour when known (else it cannot be found, which lowers
  its IoU);
- background prototypes: `num_background_colours` (4) k-means centres of the conditioning frames' background
  pixels, so that a floor or slope that resembles an object is not mistaken for it.

A pixel gets an object's label when its nearest prototype is one of that object's and the Euclidean RGB distance
to it is at most `max_colour_distance` (default 48 on the 0-255 scale, ~11% of the RGB cube's diagonal); every
other pixel is background (`BACKGROUND_LABEL` = -1, so object ids may include 0).

Colour cannot tell apart objects that share a colour (the dominoes alternate two colours), so objects are scored
per *colour class*: objects whose metadata colours are equal (or, without metadata, whose rendered prototypes lie
within half the threshold) form one class, labelled by their smallest id. The ground-truth predictor's IoU
(simulator frames segmented this way against simulator masks) measures how much the method itself loses.
"""

import numpy as np

DEFAULT_MAX_COLOUR_DISTANCE = 48.0
DEFAULT_NUM_BACKGROUND_COLOURS = 4
DEFAULT_NUM_OBJECT_COLOURS = 3
BACKGROUND_LABEL = -1


def _kmeans_centres(pixels, num_centres: int) -> np.ndarray:
    """Deterministic k-means centres (float64 (k, 3)) of RGB pixels; fewer centres when there are fewer colours."""
    import cv2

    pixels = np.asarray(pixels, dtype=np.float32).reshape(-1, 3)
    if len(pixels) == 0 or num_centres <= 0:
        return np.zeros((0, 3))
    pixels = pixels[:: max(1, len(pixels) // 20000)]  # a fixed stride keeps large inputs fast and deterministic
    num_centres = min(num_centres, len(np.unique(pixels, axis=0)))
    if num_centres == 1:
        return pixels.mean(axis=0, keepdims=True).astype(np.float64)
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(pixels, num_centres, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    return centres.astype(np.float64)


def rendered_object_colours(
    frames, masks, object_ids, fallback_colours=None, num_colours: int = DEFAULT_NUM_OBJECT_COLOURS
) -> dict:
    """id -> (k, 3) float RGB prototypes of each object's pixels in `frames`; invisible objects use the fallback."""
    frames = np.asarray(frames)
    masks = np.asarray(masks)
    if frames.shape[:3] != masks.shape:
        raise ValueError(f"frames {frames.shape} and masks {masks.shape} must share (T, H, W)")
    colours = {}
    for object_id in object_ids:
        selected = masks == object_id
        if selected.any():
            colours[int(object_id)] = _kmeans_centres(frames[selected], num_colours)
        elif fallback_colours and object_id in fallback_colours:
            colours[int(object_id)] = np.asarray(fallback_colours[object_id], dtype=np.float64).reshape(1, 3)
    return colours


def background_colours(frames, masks, object_ids, num_colours: int = DEFAULT_NUM_BACKGROUND_COLOURS) -> np.ndarray:
    """k-means centres (float RGB, shape (k, 3)) of the pixels that belong to none of `object_ids`."""
    background = ~np.isin(np.asarray(masks), list(object_ids))
    return _kmeans_centres(np.asarray(frames)[background], num_colours)


def colour_classes(
    object_ids, metadata_colours=None, prototypes=None, max_colour_distance=DEFAULT_MAX_COLOUR_DISTANCE
) -> dict:
    """id -> class label (the smallest id of the objects sharing its colour); see the module docstring."""
    object_ids = sorted(int(i) for i in object_ids)
    labels = {}
    for object_id in object_ids:
        labels[object_id] = object_id
        for other in object_ids:
            if other >= object_id:
                break
            if metadata_colours and object_id in metadata_colours and other in metadata_colours:
                same = np.allclose(metadata_colours[object_id], metadata_colours[other], atol=1.0)
            elif prototypes and object_id in prototypes and other in prototypes:
                a, b = np.asarray(prototypes[object_id]).mean(0), np.asarray(prototypes[other]).mean(0)
                same = np.linalg.norm(a - b) <= max_colour_distance / 2
            else:
                same = False
            if same:
                labels[object_id] = labels[other]
                break
    return labels


def segment_by_colour(
    frames,
    object_colours: dict,
    background: np.ndarray | None = None,
    max_colour_distance: float = DEFAULT_MAX_COLOUR_DISTANCE,
) -> np.ndarray:
    """Label map (T, H, W) int64: the id owning each pixel's nearest prototype within the distance, else -1.

    `object_colours`: id -> one RGB colour (3,) or several prototypes (k, 3), 0-255 scale.
    """
    if max_colour_distance <= 0:
        raise ValueError(f"max_colour_distance must be > 0 (RGB units, 0-255 scale), got {max_colour_distance}")
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    labels = np.full(frames.shape[:3], BACKGROUND_LABEL, dtype=np.int64)
    if not object_colours:
        return labels
    if BACKGROUND_LABEL in object_colours:
        raise ValueError(f"object id {BACKGROUND_LABEL} is reserved for background in colour-matched masks")
    owners, prototypes = [], []
    for object_id, colours in object_colours.items():
        colours = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
        owners += [int(object_id)] * len(colours)
        prototypes += list(colours)
    num_object_prototypes = len(prototypes)
    if background is not None and len(background):
        prototypes += list(np.asarray(background, dtype=np.float64).reshape(-1, 3))
    prototypes = np.stack(prototypes).astype(np.float32)  # (P, 3)
    pixels = frames.reshape(-1, 3).astype(np.float32)
    # Squared distances via |p|^2 - 2 p.c + |c|^2 keep memory at (pixels x prototypes).
    dist2 = (pixels**2).sum(1, keepdims=True) - 2.0 * pixels @ prototypes.T + (prototypes**2).sum(1)[None]
    nearest = dist2.argmin(axis=1)
    within = dist2[np.arange(len(nearest)), nearest] <= max_colour_distance**2
    is_object = (nearest < num_object_prototypes) & within
    flat = np.full(len(pixels), BACKGROUND_LABEL, dtype=np.int64)
    flat[is_object] = np.asarray(owners, dtype=np.int64)[nearest[is_object]]
    return flat.reshape(labels.shape)
