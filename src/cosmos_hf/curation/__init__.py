"""Video curation: shot splitting, transcoding, filtering, captioning, semantic dedup and sharding (issue 8).

Entry points: `run_curation(input_dir, output_dir, CurationConfig(...))` and `cosmos-hf curate`. Ray is optional:
without it the pipeline runs in-process (`LocalExecutor`).
"""

from ..utils import lazy_exports

_LAZY = {
    "LocalExecutor": "engine",
    "RayDataExecutor": "engine",
    "RayExecutor": "engine",
    "make_executor": "engine",
    "ray_available": "engine",
    "CurationConfig": "pipeline",
    "discover_inputs": "pipeline",
    "finalize": "pipeline",
    "run_curation": "pipeline",
    "ContentDetector": "shot_detection",
    "Transition": "shot_detection",
    "TransNetV2": "shot_detection",
    "clip_spans": "shot_detection",
    "score_transitions": "shot_detection",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
