"""`python -m hookstream_dev.fetch`: resolve every development server's artifacts from Maven
Central into ~/.cache/hookstream, so that tests and `make run-shared` start without a download.

Each runner module named in RUNNERS has a `fetch() -> str` that fetches what it needs (once)
and says what it has.
"""

from __future__ import annotations

import importlib
import sys

from hookstream.errors import HookstreamError

RUNNERS = ("kafka", "s3proxy", "registry", "redis", "opensearch", "nginx")


def main() -> None:
    for name in RUNNERS:
        try:
            print(importlib.import_module(f"hookstream_dev.{name}").fetch())
        except HookstreamError as exc:
            print(f"hookstream_dev.fetch: {name}: {exc}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
