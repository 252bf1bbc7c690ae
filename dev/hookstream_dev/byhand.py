"""The by-hand face of every runner: `python -m hookstream_dev.<server> start|stop|status|fetch`.

Each runner says how to build its server from the parsed arguments and what to print once it
runs (the settings that point Hookstream at it); this module does the rest, the same for all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from hookstream.errors import HookstreamError


class LocalServer(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def running(self) -> bool: ...


def run(
    name: str,
    description: str,
    argv: Sequence[str] | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    build: Callable[[argparse.Namespace], LocalServer],
    started: Callable[[LocalServer, argparse.Namespace], list[str]],
    fetch: Callable[[], str],
) -> None:
    """Parse `argv`, do the action, print one line per fact; any refusal is one line, exit 1."""
    parser = argparse.ArgumentParser(prog=f"python -m hookstream_dev.{name}", description=description)
    parser.add_argument("action", choices=("start", "stop", "status", "fetch"))
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        if args.action == "fetch":
            print(fetch())
            return
        server = build(args)
        if args.action == "start":
            server.start()
            print("\n".join(started(server, args)))
        elif args.action == "stop":
            server.stop()
            print(f"{name}: stopped")
        else:
            print(f"{name}: {'running' if server.running() else 'stopped'}")
    except HookstreamError as exc:
        print(f"hookstream_dev.{name}: {exc}", file=sys.stderr)
        sys.exit(1)
