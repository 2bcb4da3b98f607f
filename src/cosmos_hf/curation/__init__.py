"""Video curation: shot splitting, transcoding, filtering, captioning, semantic dedup and sharding (issue 8).

Entry points: `run_curation(input_dir, output_dir, CurationConfig(...))` and `cosmos-hf curate`. Ray is optional:
without it the pipeline runs in-process (`LocalExecutor`).
"""

from .engine import LocalExecutor, RayDataExecutor, RayExecutor, make_executor, ray_available
from .pipeline import CurationConfig, discover_inputs, finalize, run_curation
from .shot_detection import (
           ContentDetector,
           Transition,
           TransNetV2,
           clip_spans,
           score_transitions,
)

__all__ = [
           "ContentDetector",
           "CurationConfig",
           "LocalExecutor",
           "RayDataExecutor",
           "RayExecutor",
           "TransNetV2",
           "Transition",
           "clip_spans",
           "discover_inputs",
           "finalize",
           "make_executor",
           "ray_available",
           "run_curation",
           "score_transitions",
]
