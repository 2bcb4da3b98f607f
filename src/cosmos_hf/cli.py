"""The `cosmos-hf` command.

Each subcommand group lives next to the code it drives and exposes `register(subparsers)`;
this file only wires them together, so `cosmos-hf <group> --help` is the map of the platform.

A group's module is imported only when that group is used: most of them need torch, transformers or pybullet,
which take seconds to import, and `cosmos-hf --help` (or a typo) should answer at once. The top-level help lists
every group by name with the one-line summary below. The same rule (`add_lazy_subcommands`) serves a group with
subcommands of its own: `cosmos-hf convert --help` lists the converters without importing them (a group's
`register(subparsers, argv=...)` receives the arguments after its name).
"""

import argparse
import importlib
import inspect
import sys

# group name -> (module with `register(subparsers)`, one-line help); each registered parser sets `func=...`.
COMMAND_GROUPS = {
    "convert": ("cosmos_hf.commands_convert", "convert official checkpoints to cosmos-hf folders"),
    "tokenize": ("cosmos_hf.tokenizers.commands", "tokenize + reconstruct a video with a tokenizer folder"),
    "sim": ("cosmos_hf.sim.commands", "the built-in physics world (pybullet, CPU): datasets and previews"),
    "eval": ("cosmos_hf.evaluation.commands",
             "evaluate tokenizers, 3D consistency, camera control, physics alignment"),
    "curate": ("cosmos_hf.curation.commands",
               "curate raw videos into training clips (split, transcode, filter, caption, dedup, shard)"),
    "guard": ("cosmos_hf.guardrails.commands",
              "guardrails: check prompts and videos, pixelate faces, upsample prompts"),
    "plan": ("cosmos_hf.planning.commands_plan",
             "plan pushes with the world model (CEM MPC) vs random actions vs the simulator"),
    "evaluate-policies": ("cosmos_hf.planning.commands_evaluate_policies",
                          "rank push policies by imagined (world model) vs real (simulator) success"),
}


def requested_group(argv) -> str | None:
    """The group named on the command line (the first argument, since the top level takes no options but -h)."""
    return argv[0] if argv and argv[0] in COMMAND_GROUPS else None


def add_lazy_subcommands(subparsers, table: dict, argv, register):
    """The CLI's one lazy-import rule, for the top-level groups and for nested ones (`convert KIND`).

    `table` maps a subcommand name to (module name, one-line help). Only the subcommand named by `argv[0]` has its
    module imported and is registered in full by `register(subparsers, name, module, argv[1:])`; every other one is
    a stub parser with its help line, so `--help` lists it without importing it. `argv=None` registers every one.
    A module that does not exist (not written yet) leaves its subcommand out; a missing dependency is an error.
    """
    requested = argv[0] if argv else None
    for name, (module_name, summary) in table.items():
        if argv is not None and name != requested:
            subparsers.add_parser(name, help=summary)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue
            raise
        register(subparsers, name, module, None if argv is None else list(argv[1:]))


def _register_group(subparsers, name, module, rest):
    """A group module's `register(subparsers)`; a group with lazy subcommands of its own (`convert`) also takes the
    arguments after its name."""
    if "argv" in inspect.signature(module.register).parameters:
        module.register(subparsers, argv=rest)
    else:
        module.register(subparsers)


def build_parser(group: str | None = None, all_groups: bool = False, argv=None) -> argparse.ArgumentParser:
    """The `cosmos-hf` parser with `group`'s full subcommands (every group's with `all_groups=True`); the other
    groups are listed by name and summary only, without importing their modules. `argv` (the command line) lets a
    group import only the subcommand it names."""
    parser = argparse.ArgumentParser(
        prog="cosmos-hf",
        description="Cosmos World Foundation Models on Hugging Face: convert, simulate, tokenize, evaluate, curate.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    if all_groups:
        command_line = None
    elif argv and argv[0] == group:
        command_line = list(argv)
    else:
        command_line = [group] if group else []
    add_lazy_subcommands(subparsers, COMMAND_GROUPS, command_line, _register_group)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(requested_group(argv), argv=argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import cosmos_hf

    cosmos_hf.register_auto_classes()  # deferred by `import cosmos_hf` in this command (see cosmos_hf/__init__.py)
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"cosmos-hf {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
