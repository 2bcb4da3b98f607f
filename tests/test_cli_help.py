"""`cosmos-hf --help` answers without importing torch or transformers (it took 11-18 s when every group module was
imported up front), still lists every group, and a group's own parser is built when that group is named."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosmos_hf import cli

COSMOS_HF = Path(sys.executable).parent / "cosmos-hf"


def imported_modules(importtime_log: str) -> set[str]:
    """Module names from `python -X importtime` lines ("import time: self | cumulative | <indent>name")."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_log.splitlines() if line.startswith("import time:")}


@pytest.mark.skipif(not COSMOS_HF.is_file(), reason=f"the console script is not installed at {COSMOS_HF}")
def test_top_level_help_imports_neither_torch_nor_transformers():
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}  # -X importtime for a console script
    result = subprocess.run([str(COSMOS_HF), "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = imported_modules(result.stderr)
    assert "cosmos_hf.cli" in modules  # the log is really the import log of the command
    heavy = sorted(name for name in modules if name.split(".")[0] in ("torch", "transformers", "diffusers"))
    assert not heavy, f"`cosmos-hf --help` imported {heavy[:5]}"
    for group, (_, summary) in cli.COMMAND_GROUPS.items():
        assert group in result.stdout and summary.split()[0] in result.stdout


def test_every_group_registers_under_its_own_name():
    parser = cli.build_parser(all_groups=True)
    subparsers = next(action for action in parser._actions if action.dest == "command")
    assert list(subparsers.choices) == list(cli.COMMAND_GROUPS)
    # a named group gets its real subcommands; the others stay name-only stubs
    sim_only = cli.build_parser("sim")
    args = sim_only.parse_args(["sim", "contact-sheet", "--out", "x.png"])
    assert args.command == "sim" and callable(args.func)
    assert cli.requested_group(["sim", "generate"]) == "sim" and cli.requested_group(["--help"]) is None


def test_unknown_group_is_refused_with_the_valid_choices(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bogus"])
    err = capsys.readouterr().err
    assert "invalid choice: 'bogus'" in err and "'convert'" in err and "'guard'" in err
