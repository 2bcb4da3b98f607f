"""The `cosmos-hf` command.

Each subcommand group lives next to the code it drives and exposes `register(subparsers)`;
this file only wires them together, so `cosmos-hf <group> --help` is the map of the platform.
"""

import argparse
import importlib
import sys

# group name -> module with `register(subparsers)`; each registered parser sets `func=...`.
COMMAND_GROUPS = {
    "convert": "cosmos_hf.commands_convert",
    "tokenize": "cosmos_hf.tokenizers.commands",
    "sim": "cosmos_hf.sim.commands",
    "eval": "cosmos_hf.evaluation.commands",
    "curate": "cosmos_hf.curation.commands",
    "guard": "cosmos_hf.guardrails.commands",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cosmos-hf",
        description="Cosmos World Foundation Models on Hugging Face: convert, simulate, tokenize, evaluate, curate.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_GROUPS.values():
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"cosmos-hf {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
