import json
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))

REPO_ROOT = Path(__file__).resolve().parents[1]


def _find_fixtures():
    # The reference fixtures live in ../shared/fixtures/reference next to the checkout (CI lays shared/ beside the clone).
    for base in (REPO_ROOT.parent / "shared", REPO_ROOT / "shared", Path("/work/shared")):
        candidate = base / "fixtures" / "reference"
        if candidate.is_dir():
            return candidate
    return None


FIXTURES = _find_fixtures()


@pytest.fixture(scope="session")
def reference_fixtures():
    if FIXTURES is None:
        pytest.fail("reference fixtures not found: expected ../shared/fixtures/reference beside the repository")
    return FIXTURES


def load_reference_case(case: str):
    """(constructor_kwargs, io tensors, folder) of one fixture case."""
    from safetensors.torch import load_file

    if FIXTURES is None:
        pytest.fail("reference fixtures not found: expected ../shared/fixtures/reference beside the repository")
    folder = FIXTURES / case
    config = json.loads((folder / "config.json").read_text())
    return config["constructor_kwargs"], load_file(str(folder / "io.safetensors")), folder
