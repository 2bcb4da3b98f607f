"""Face detection and pixelation (post-guard).

The default detector runs offline with no downloads: OpenCV's Haar cascades, which ship inside
opencv-python (`cv2.data.haarcascades`): the frontal-face cascade plus the profile cascade on the frame and
on its mirror image (the profile cascade only knows one side). RetinaFace (ResNet-50, the reference's
detector) is used when its weights are given (`RetinaFaceDetector`, retinaface.py).

Faces at least `min_face_size` pixels on both sides (20x20, as the reference) are pixelated: the box,
enlarged by a margin, is averaged down to a coarse grid and scaled back with nearest-neighbour, so the
identity is gone but the scene stays readable. Boxes found in a frame are also applied to its neighbours
(`temporal_window`), so one missed detection does not leave a face visible for a frame.
"""

import numpy as np

from .video_classifier import validate_frames

DEFAULT_HAAR_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml")


class HaarCascadeFaceDetector:
    """Frontal and profile faces with OpenCV's bundled Haar cascades. Boxes are (x1, y1, x2, y2) ints.

    Args:
        cascades: cascade file names inside `cv2.data.haarcascades` (or absolute paths).
        scale_factor, min_neighbors: OpenCV's multi-scale search settings (lower min_neighbors = more recall).
        min_face_size: smallest face side searched for, in pixels.
    """

    def __init__(
        self,
        cascades=DEFAULT_HAAR_CASCADES,
        scale_factor: float = 1.1,
        min_neighbors: int = 4,
        min_face_size: int = 20,
    ):
        import cv2

        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        if min_neighbors < 0 or min_face_size < 1:
            raise ValueError(f"need min_neighbors >= 0 and min_face_size >= 1, got {min_neighbors}, {min_face_size}")
        self.classifiers = []
        for name in cascades:
            path = name if "/" in str(name) else cv2.data.haarcascades + name
            classifier = cv2.CascadeClassifier(str(path))
            if classifier.empty():
                raise FileNotFoundError(f"cannot load Haar cascade {path}")
            self.classifiers.append((str(name), classifier))
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_size = min_face_size

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY))
        width = gray.shape[1]
        boxes = []
        for name, classifier in self.classifiers:
            views = [(gray, False)]
            if "profile" in name:  # the profile cascade detects one facing direction; mirror for the other
                views.append((np.ascontiguousarray(gray[:, ::-1]), True))
            for image, mirrored in views:
                found = classifier.detectMultiScale(
                    image,
                    scaleFactor=self.scale_factor,
                    minNeighbors=self.min_neighbors,
                    minSize=(self.min_face_size, self.min_face_size),
                )
                for x, y, w, h in np.reshape(found, (-1, 4)):
                    x1 = width - (x + w) if mirrored else x
                    boxes.append((int(x1), int(y), int(x1 + w), int(y + h)))
        return np.array(boxes, dtype=np.int64).reshape(-1, 4)


def pixelate_region(region: np.ndarray, blocks: int = 6) -> np.ndarray:
    """Average `region` down to about `blocks` cells on its shorter side and scale back (nearest)."""
    import cv2

    h, w = region.shape[:2]
    if h == 0 or w == 0:
        return region
    cell = max(1, min(h, w) // blocks)
    small = cv2.resize(region, (max(1, w // cell), max(1, h // cell)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


class FacePixelator:
    """Pixelates every detected face of at least `min_face_size` x `min_face_size` pixels in a video.

    Args:
        detector: callable frame (uint8 [H, W, 3] RGB) -> boxes [K, 4] (x1, y1, x2, y2); default Haar cascades.
        min_face_size: faces smaller than this on either side are left alone (reference: 20).
        blocks: pixelation cells across the face's shorter side.
        box_margin: fraction by which each box grows on every side (covers hairline, chin, ears).
        temporal_window: also apply a frame's boxes to this many frames before and after it.
    """

    def __init__(self, detector=None, min_face_size: int = 20, blocks: int = 6, box_margin: float = 0.15,
                 temporal_window: int = 1):
        if min_face_size < 1 or blocks < 1 or box_margin < 0 or temporal_window < 0:
            raise ValueError(
                "need min_face_size >= 1, blocks >= 1, box_margin >= 0, temporal_window >= 0; got "
                f"{min_face_size}, {blocks}, {box_margin}, {temporal_window}"
            )
        self.detector = detector if detector is not None else HaarCascadeFaceDetector(min_face_size=min_face_size)
        self.min_face_size = min_face_size
        self.blocks = blocks
        self.box_margin = box_margin
        self.temporal_window = temporal_window

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """Boxes of faces big enough to pixelate, per frame."""
        detections = []
        for frame in frames:
            boxes = np.asarray(self.detector(frame), dtype=np.float64).reshape(-1, 4)
            if not np.isfinite(boxes).all():  # a NaN box cast to int64 is an empty one, dropped as too small
                raise ValueError("the face detector returned NaN or inf box coordinates")
            boxes = boxes.astype(np.int64)
            widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            keep = (widths >= self.min_face_size) & (heights >= self.min_face_size)
            detections.append(boxes[keep])
        return detections

    def __call__(self, frames) -> tuple[np.ndarray, list[np.ndarray]]:
        """(frames with faces pixelated (a copy), detected boxes per frame)."""
        frames = validate_frames(frames)
        detections = self.detect(frames)
        out = frames.copy()
        num_frames, height, width = frames.shape[:3]
        for t in range(num_frames):
            lo, hi = max(0, t - self.temporal_window), min(num_frames, t + self.temporal_window + 1)
            for boxes in detections[lo:hi]:
                for x1, y1, x2, y2 in boxes:
                    mx, my = int(round((x2 - x1) * self.box_margin)), int(round((y2 - y1) * self.box_margin))
                    x1, y1 = max(0, x1 - mx), max(0, y1 - my)
                    x2, y2 = min(width, x2 + mx), min(height, y2 + my)
                    # pixelate from the original pixels so overlapping boxes do not pixelate twice
                    out[t, y1:y2, x1:x2] = pixelate_region(frames[t, y1:y2, x1:x2], self.blocks)
        return out, detections
