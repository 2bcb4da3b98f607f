"""The pipeline a `train_diffusion.py --condition camera|action|multiview` run trains and saves.

A Video2World pipeline folder with its DiT turned into the conditioned one (`cosmos_hf.diffusion.post_training`:
`conditioned_transformer`, `pipeline_from_video2world`). It lives in `cosmos_hf.pipelines` because it names the
pipeline classes; `cosmos_hf.diffusion.post_training` still resolves both names for older callers.
"""

from __future__ import annotations

from ..diffusion.post_training import (
    POST_TRAINING_CONDITIONS,
    check_objective_matches_pipeline,
    conditioned_transformer,
    pipeline_from_video2world,
)
from .hub_layout import is_own_folder
from .pipeline_cosmos_action_conditioned import CosmosActionConditionedPipeline
from .pipeline_cosmos_camera_control import CosmosCameraControlPipeline
from .pipeline_cosmos_multiview import CosmosMultiViewPipeline
from .pipeline_cosmos_video2world import CosmosVideo2WorldPipeline

POST_TRAINING_PIPELINES = {
    "camera": CosmosCameraControlPipeline,
    "action": CosmosActionConditionedPipeline,
    "multiview": CosmosMultiViewPipeline,
}


def post_training_pipeline_class(condition: str):
    """The pipeline class a `--condition` post-training run saves."""
    if condition not in POST_TRAINING_PIPELINES:
        raise ValueError(f"condition must be one of {list(POST_TRAINING_CONDITIONS)}, got {condition!r}")
    return POST_TRAINING_PIPELINES[condition]


def build_post_training_pipeline(config: dict):
    """The pipeline of a `--condition` run: a Video2World pipeline folder (`model.pretrained_pipeline`) with its DiT
    turned into the conditioned one; a folder saved by a previous run of the same condition loads as it is."""
    model, data = config["model"], config["data"]
    condition = model["condition"]
    cls = post_training_pipeline_class(condition)
    source = model.get("pretrained_pipeline")
    if not source:
        raise ValueError(f"--condition {condition} post-trains a Video2World pipeline: set --pretrained_pipeline "
                         f"(model.pretrained_pipeline), e.g. pipelines/cosmos-nano-video2world")
    if is_own_folder(source, cls):
        pipe = cls.from_pretrained(source)
    else:
        base = CosmosVideo2WorldPipeline.from_pretrained(source)
        transformer = conditioned_transformer(condition, base.transformer, model, data)
        # call defaults: the size, length and frame rate of the post-training data (e.g. the push task's 8 fps)
        pipe = pipeline_from_video2world(cls, base, transformer, default_height=int(data["height"]),
                                         default_width=int(data["width"]), default_num_frames=int(data["num_frames"]),
                                         default_fps=int(data["fps"]))
    check_objective_matches_pipeline(config.get("objective") or {}, pipe)
    return pipe


__all__ = ["POST_TRAINING_PIPELINES", "build_post_training_pipeline", "post_training_pipeline_class"]
