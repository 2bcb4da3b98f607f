"""The evaluation suite: tokenizer metrics, 3D consistency, camera-control accuracy and physics alignment.

Each file holds one concern; `commands.py` exposes them as `cosmos-hf eval tokenizer|geometry|camera|physics`.
Names are imported lazily so that `cosmos-hf --help` does not pay for torch, OpenCV or matplotlib.
"""

from ..utils import lazy_exports

_EXPORTS = {
    "video_metrics": ["psnr", "psnr_per_frame", "ssim", "ssim_per_frame", "mask_iou", "mask_iou_per_frame"],
    "object_masks": ["segment_by_colour", "rendered_object_colours", "background_colours"],
    "i3d": ["InceptionI3d", "frechet_distance", "frechet_distance_from_features", "load_i3d", "load_i3d_torchscript"],
    "geometry": ["sift_matches", "sampson_errors", "analyse_pair", "geometric_consistency", "PoseSuccessRule"],
    "camera": ["camera_control_errors", "trajectory_errors", "rotation_angle_degrees"],
    "physics": ["PhysicsSample", "run_physics_benchmark", "score_prediction", "load_sim_sample"],
    "predictors": [
        "CopyLastFramePredictor",
        "ConstantVelocityPredictor",
        "GroundTruthPredictor",
        "DiffusersPipelinePredictor",
    ],
    "tokenizer_metrics": ["evaluate_video_pairs", "reconstruct_with_autoencoder"],
    "lpips": ["LPIPS", "lpips_video"],
}
_NAME_TO_MODULE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_NAME_TO_MODULE)

__getattr__, __dir__ = lazy_exports(__name__, _NAME_TO_MODULE)
