"""Entry point for `DiffusionPipeline.from_pretrained(<this folder>, trust_remote_code=True)`.

The pipeline class lives in the `cosmos_hf` package (pip install cosmos-hf); this file only re-exports it.
"""

from cosmos_hf.pipelines.pipeline_cosmos_ar_video2world import CosmosARVideo2WorldPipeline  # noqa: F401
