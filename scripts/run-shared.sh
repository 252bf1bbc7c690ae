#!/usr/bin/env bash
# `make run-shared`: the production topology on this host (see dev/hookstream_dev/shared.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m hookstream_dev.shared "$@"
