"""The command-line tools the deploy tests run: found, or a clear failure under CI."""

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

# Where `.ci/run` builds kustomize (Go module proxy) on a machine without kubectl.
VENV_BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"


def _missing(message: str) -> NoReturn:
    """Under CI=true a missing tool fails the test; elsewhere it skips with the install line."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def debian_tool(name: str) -> str:
    """The path of `name` (promtool, prometheus), from Debian's package prometheus."""
    found = shutil.which(name)
    if found is None:
        _missing(f"{name} not found: apt-get install prometheus (.ci/run does)")
    return found


def kustomize_command() -> list[str]:
    """The command that builds a kustomization folder given after it: `kubectl kustomize`, or
    kustomize itself (which `.ci/run` builds into the venv where kubectl is missing)."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize") or shutil.which("kustomize", path=str(VENV_BIN))
    if kustomize is None:
        _missing(
            "neither kubectl nor kustomize found: "
            "GOBIN=$PWD/.venv/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0 (.ci/run does)"
        )
    return [kustomize, "build"]
