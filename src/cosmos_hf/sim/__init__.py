"""The built-in physics world: pybullet (DIRECT, TinyRenderer on the CPU) scenes as exact-ground-truth datasets.

- `simulate(scene, seed=..., ...)`: the paper's 8 physics scenes (`SCENES`), 4 fixed views each.
- `simulate_push(...)`: a gripper pushing objects, 7-D Bridge-format actions, random/scripted/goal policies.
- `simulate_camera(...)`: static scenes filmed along orbit / dolly / pan paths with exact poses.
- `simulate_multiview(...)`: a rig of N synchronised cameras (default 6) among moving objects.
- `generate_dataset(...)` / `cosmos-hf sim generate`: write any task as a dataset folder.

Every function returns a `WorldRecord`; cameras follow OpenCV (x right, y down, z forward), see `world.py`.
"""

from ..utils import lazy_exports

_LAZY = {
    "SCENES": "physics_scenes",
    "NUM_VIEWS": "physics_scenes",
    "simulate": "physics_scenes",
    "TASKS": "dataset",
    "generate_dataset": "dataset",
    "physics_scene_and_view": "dataset",
    "HELD_OUT_SEEDS": "dataset",
    "check_held_out_clip_count": "dataset",
    "POLICIES": "push",
    "simulate_push": "push",
    "apply_action": "push",
    "actions_from_states": "push",
    "TRAJECTORIES": "camera_task",
    "simulate_camera": "camera_task",
    "simulate_multiview": "multiview",
    "WorldRecord": "record",
    "physics_contact_sheet": "contact_sheet",
    "save_contact_sheet": "contact_sheet",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
