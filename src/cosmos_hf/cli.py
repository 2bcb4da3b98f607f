"""The `cosmos-hf` command.

Each subcommand group lives next to the code it drives and exposes `register(subparsers)`;
this file only wires them together, so `cosmos-hf <group> --help` is the map of the platform.

A group's module is imported only when that group is used: most of them need torch, transformers or pybullet,
which take seconds to import, and `cosmos-hf --help` (or a typo) should answer at once. The top-level help lists
every group by name with the one-line summary below.
"""

import argparse
import importlib
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
}


def requested_group(argv) -> str | None:
    """The group named on the command line (the first argument, since the top level takes no options but -h)."""
    return argv[0] if argv and argv[0] in COMMAND_GROUPS else None


def build_parser(group: str | None = None, all_groups: bool = False) -> argparse.ArgumentParser:
    """The `cosmos-hf` parser with `group`'s full subcommands (every group's with `all_groups=True`); the other
    groups are listed by name and summary only, without importing their modules."""
    parser = argparse.ArgumentParser(
        prog="cosmos-hf",
        description="Cosmos World Foundation Models on Hugging Face: convert, simulate, tokenize, evaluate, curate.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, summary) in COMMAND_GROUPS.items():
        if not (all_groups or name == group):
            subparsers.add_parser(name, help=summary)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # A group whose module is not written yet is simply absent; a missing *dependency* is a real error.
            if err.name == module_name:
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(requested_group(argv))
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
