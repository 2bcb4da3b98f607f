"""`cosmos-hf sim ...`: generate world datasets, draw the physics contact sheet, render a single clip."""

from __future__ import annotations

import argparse
import json
import shlex
import sys


def _generate(args) -> int:
    from .dataset import generate_dataset, parse_size

    height, width = parse_size(args.size)
    scenes = [s.strip() for s in args.scenes.split(",")] if args.scenes else None
    command = "cosmos-hf " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["sim"] else None
    out = generate_dataset(args.task, args.num, args.out, num_frames=args.frames, height=height, width=width,
                           seed=args.seed, fps=args.fps, workers=args.workers, shard_size=args.shard_size,
                           scenes=scenes, policy=args.policy, trajectory=args.trajectory,
                           num_cameras=args.num_cameras, overwrite=args.overwrite, progress=not args.quiet,
                           command=command)
    print(f"wrote {args.num} {args.task} samples to {out}")
    return 0


def _contact_sheet(args) -> int:
    from .contact_sheet import save_contact_sheet
    from .dataset import parse_size

    height, width = parse_size(args.size)
    out = save_contact_sheet(args.out, num_columns=args.columns, num_frames=args.frames, height=height, width=width,
                             seed=args.seed, view=args.view)
    print(f"wrote {out}")
    return 0


def _render(args) -> int:
    from ..video_io import write_video
    from .dataset import parse_size, simulate_spec

    height, width = parse_size(args.size)
    spec = {"task": args.task, "seed": args.seed, "scene": args.scene, "view": args.view, "policy": args.policy,
            "trajectory": args.trajectory, "num_cameras": args.num_cameras}
    if args.task == "physics" and not args.scene:
        raise ValueError("--scene is required for --task physics")
    fps = args.fps or {"push": 8.0}.get(args.task, 24.0)
    record = simulate_spec(spec, args.frames, height, width, fps)
    video = record.video if record.video.ndim == 4 else record.video[0]
    write_video(args.out, video, fps=fps)
    print(json.dumps({"out": args.out, "caption": record.caption}))
    return 0


def _export_clips(args) -> int:
    from .clip_archive import simulate_clip_archive
    from .dataset import parse_size

    height, width = parse_size(args.size)
    scenes = [s.strip() for s in args.scenes.split(",")] if args.scenes else None
    out = simulate_clip_archive(args.out, args.num, num_frames=args.frames, height=height, width=width, fps=args.fps,
                                seed_offset=args.seed_offset, views=args.views, scenes=scenes,
                                progress=not args.quiet, overwrite=args.overwrite, workers=args.workers)
    print(f"wrote {args.num} physics clips to {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def register(subparsers) -> None:
    from .camera_task import TRAJECTORIES
    from .dataset import TASKS
    from .physics_scenes import SCENES
    from .push import POLICIES

    sim = subparsers.add_parser("sim", help="the built-in physics world (pybullet, CPU): datasets and previews",
                                description="The built-in physics world: 8 physics scenes, a push task with 7-D "
                                            "actions, camera trajectories and multi-camera rigs.")
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND")
    sim.set_defaults(func=lambda args: (sim.print_help(), 2)[1])

    gen = sim_sub.add_parser("generate", help="simulate N clips and write a dataset folder",
                             formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    gen.add_argument("--task", required=True, choices=TASKS)
    gen.add_argument("--num", type=int, required=True, help="number of clips")
    gen.add_argument("--frames", type=int, default=16, help="frames per clip")
    gen.add_argument("--size", default="64x64", help="HxW, multiples of 8 in [16, 1024]")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=True, help="output folder (must be empty or absent)")
    gen.add_argument("--fps", type=float, default=None, help="frame rate (default: 24, push: 8)")
    gen.add_argument("--workers", type=int, default=1, help="parallel processes (same files as serial)")
    gen.add_argument("--shard-size", type=int, default=100, help="samples per webdataset shard")
    gen.add_argument("--scenes", default=None, help=f"physics: comma-separated subset of {','.join(SCENES)}")
    gen.add_argument("--policy", default=None, choices=POLICIES, help="push: policy (default: cycle all)")
    gen.add_argument("--trajectory", default=None, choices=TRAJECTORIES, help="camera: path (default: random)")
    gen.add_argument("--num-cameras", type=int, default=6, help="multiview: cameras on the rig")
    gen.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_generate)

    sheet = sim_sub.add_parser("contact-sheet", help="PNG grid: the 8 physics scenes x a few frames",
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sheet.add_argument("--out", default="docs/images/physics_scenes.png")
    sheet.add_argument("--columns", type=int, default=6)
    sheet.add_argument("--frames", type=int, default=36)
    sheet.add_argument("--size", default="96x96")
    sheet.add_argument("--seed", type=int, default=0)
    sheet.add_argument("--view", type=int, default=0)
    sheet.set_defaults(func=_contact_sheet)

    export = sim_sub.add_parser("export-clips", help="simulate N physics clips into one compressed clip archive (.npz)",
                                description="Physics clips simulated once into one .npz (uint8 video, captions, scene, "
                                            "view, seed): the training scripts read it with data.source/type: clips "
                                            "on machines without pybullet (cosmos_hf.data.clip_archive).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    export.add_argument("--num", type=int, required=True, help="number of clips")
    export.add_argument("--out", required=True, help="output .npz file")
    export.add_argument("--frames", type=int, default=17, help="frames per clip")
    export.add_argument("--size", default="64x64", help="HxW, multiples of 8 in [16, 1024]")
    export.add_argument("--fps", type=float, default=12.0)
    export.add_argument("--seed-offset", type=int, default=1000, help="clip i uses simulator seed seed_offset + i")
    export.add_argument("--views", type=int, nargs="+", default=[0, 1, 2, 3], help="camera views cycled over scenes")
    export.add_argument("--scenes", default=None, help=f"comma-separated subset of {','.join(SCENES)}")
    export.add_argument("--workers", type=int, default=1, help="parallel processes (the same archive as serial)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.set_defaults(func=_export_clips)

    render = sim_sub.add_parser("render", help="simulate one clip and write it as an mp4",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    render.add_argument("--task", default="physics", choices=TASKS)
    render.add_argument("--scene", default=None, choices=SCENES)
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--view", type=int, default=0)
    render.add_argument("--policy", default="scripted", choices=POLICIES)
    render.add_argument("--trajectory", default=None, choices=TRAJECTORIES)
    render.add_argument("--num-cameras", type=int, default=6)
    render.add_argument("--frames", type=int, default=48)
    render.add_argument("--size", default="128x128")
    render.add_argument("--fps", type=float, default=None)
    render.add_argument("--out", required=True)
    render.set_defaults(func=_render)
