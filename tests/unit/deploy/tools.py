"""Debian's Prometheus binaries for the deploy tests: found, or a clear failure under CI."""

import os
import shutil

import pytest


def debian_tool(name: str) -> str:
    """The path of `name` (promtool, prometheus); under CI=true a missing one fails the test,
    elsewhere it skips with the install line (`.ci/run` installs the package)."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} not found: apt-get install prometheus (.ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found
