"""One lazy-import mechanism for the package (`cosmos_hf.utils.lazy_exports`, and `cli.add_lazy_subcommands` for the
command line): `cosmos-hf convert --help` / `cosmos-hf tokenize --help` answer without importing torch (they took
17-21 s when the converter modules and the eager `cosmos_hf.tokenizers` package were imported up front), every lazily
exported name resolves, and a submodule is reachable as an attribute of its package."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosmos_hf import cli, commands_convert

COSMOS_HF = Path(sys.executable).parent / "cosmos-hf"

PACKAGES = ["cosmos_hf", "cosmos_hf.autoregressive", "cosmos_hf.curation", "cosmos_hf.data", "cosmos_hf.diffusion",
            "cosmos_hf.evaluation", "cosmos_hf.guardrails", "cosmos_hf.pipelines", "cosmos_hf.sim",
            "cosmos_hf.tokenizers"]


def imported_modules(importtime_log: str) -> set[str]:
    """Module names from `python -X importtime` lines ("import time: self | cumulative | <indent>name")."""
    return {line.rsplit("|", 1)[1].strip() for line in importtime_log.splitlines() if line.startswith("import time:")}


@pytest.mark.skipif(not COSMOS_HF.is_file(), reason=f"the console script is not installed at {COSMOS_HF}")
@pytest.mark.parametrize("command", [["convert", "--help"], ["tokenize", "--help"]])
def test_group_help_does_not_import_torch(command):
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}  # -X importtime for a console script
    result = subprocess.run([str(COSMOS_HF), *command], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = imported_modules(result.stderr)
    assert "cosmos_hf.cli" in modules  # the log is really the import log of the command
    heavy = sorted(name for name in modules if name.split(".")[0] in ("torch", "transformers", "diffusers"))
    assert not heavy, f"`cosmos-hf {' '.join(command)}` imported {heavy[:5]}"
    assert "usage: cosmos-hf " + command[0] in result.stdout
    if command[0] == "convert":  # the converters are listed by name and summary
        for name, (_, summary) in commands_convert.CONVERTERS.items():
            assert name in result.stdout and summary.split()[0] in result.stdout


def test_converter_summaries_match_their_modules():
    """The summaries `convert --help` shows without importing a converter are its module docstring's first line."""
    for name, (module_name, summary) in commands_convert.CONVERTERS.items():
        module = importlib.import_module(module_name)
        assert module.__doc__.strip().splitlines()[0] == summary, name


def test_named_converter_gets_its_options_and_the_others_stay_stubs():
    parser = cli.build_parser("convert", argv=["convert", "ar", "--help"])
    convert = next(a for a in parser._actions if a.dest == "command").choices["convert"]
    kinds = next(a for a in convert._actions if a.dest == "kind").choices
    assert list(kinds) == list(commands_convert.CONVERTERS)
    assert any(a.dest == "checkpoint" for a in kinds["ar"]._actions)
    assert not any(a.dest == "checkpoint" for a in kinds["tokenizer"]._actions)  # a stub: help line only
    args = cli.build_parser(all_groups=True).parse_args(
        ["convert", "tokenizer", "--checkpoint", "a.jit", "--variant", "DV4x8x8", "--out", "x"])
    assert args.kind == "tokenizer" and callable(args.func)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_uses_the_one_lazy_mechanism_and_every_name_resolves(package):
    module = importlib.import_module(package)
    getter = module.__dict__.get("__getattr__")
    assert getter is not None and getter.__qualname__.startswith("lazy_exports."), \
        f"{package} resolves names with its own __getattr__; use cosmos_hf.utils.lazy_exports"
    for name in getattr(module, "__all__", None) or []:
        assert getattr(module, name) is not None, f"{package}.{name}"
    assert set(module.__all__ if hasattr(module, "__all__") else []) <= set(dir(module))


def test_submodule_is_an_attribute_and_unknown_names_are_refused():
    code = ("import cosmos_hf.sim as sim, sys\n"
            "assert 'cosmos_hf.sim.physics_scenes' not in sys.modules\n"
            "assert sim.physics_scenes.SCENES == sim.SCENES\n"
            "try:\n    sim.no_such_name\nexcept AttributeError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "module 'cosmos_hf.sim' has no attribute 'no_such_name'" in result.stdout
