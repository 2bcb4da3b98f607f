"""The built-in physics world: pybullet (DIRECT, TinyRenderer on the CPU) scenes as exact-ground-truth datasets.

- `simulate(scene, seed=..., ...)`: the paper's 8 physics scenes (`SCENES`), 4 fixed views each.
- `simulate_push(...)`: a gripper pushing objects, 7-D Bridge-format actions, random/scripted/goal policies.
- `simulate_camera(...)`: static scenes filmed along orbit / dolly / pan paths with exact poses.
- `simulate_multiview(...)`: a rig of N synchronised cameras (default 6) among moving objects.
- `generate_dataset(...)` / `cosmos-hf sim generate`: write any task as a dataset folder.

Every function returns a `WorldRecord`; cameras follow OpenCV (x right, y down, z forward), see `world.py`.
"""

from .camera_task import TRAJECTORIES, simulate_camera
from .contact_sheet import physics_contact_sheet, save_contact_sheet
from .dataset import TASKS, generate_dataset, physics_scene_and_view
from .multiview import simulate_multiview
from .physics_scenes import NUM_VIEWS, SCENES, simulate
from .push import POLICIES, actions_from_states, apply_action, simulate_push
from .record import WorldRecord

__all__ = [
    "SCENES",
    "NUM_VIEWS",
    "TASKS",
    "POLICIES",
    "TRAJECTORIES",
    "WorldRecord",
    "simulate",
    "simulate_push",
    "simulate_camera",
    "simulate_multiview",
    "apply_action",
    "actions_from_states",
    "generate_dataset",
    "physics_scene_and_view",
    "physics_contact_sheet",
    "save_contact_sheet",
]
