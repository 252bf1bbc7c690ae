"""A real Redis on this host, from Debian's `redis-server` package, without Docker.

`LocalRedis` is what the test fixtures (and a person: `python -m hookstream_dev.redis start`)
drive: one server on loopback, its files in its own folder, tracked by a pid file and stopped
by pid. Tests run it without persistence; `--appendonly` turns AOF on as production would.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path
from typing import Any

import redis

from hookstream_dev import byhand
from hookstream_dev.errors import MissingToolError
from hookstream_dev.process import Daemon, wait_until

DEFAULT_HOME = Path.home() / ".local" / "share" / "hookstream" / "redis"
DEFAULT_PORT = 6379
START_TIMEOUT_S = 20.0


def redis_server() -> str:
    """The `redis-server` binary, or a `MissingToolError` naming the Debian package."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise MissingToolError("redis-server not found: install it (Debian: apt-get install redis-server)")
    return binary


class LocalRedis:
    """One redis-server listening on 127.0.0.1:`port`, with `home` as its working directory."""

    def __init__(
        self, home: Path, port: int = DEFAULT_PORT, password: str | None = None, appendonly: bool = False
    ) -> None:
        self.home = home
        self.port = port
        self.password = password
        self.appendonly = appendonly
        # redis-server rewrites its command line to "redis-server 127.0.0.1:<port>": that is the marker.
        self.daemon = Daemon("redis", home / "redis.pid", f"127.0.0.1:{port}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.home / "redis.log"

    def running(self) -> bool:
        return self.daemon.running()

    def _answers(self) -> bool:
        client = redis.Redis(
            port=self.port, password=self.password, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the server and return once it answers PING."""
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [
            redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.home),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--daemonize", "no",
            # DEBUG SLEEP from loopback only: tests stall the server to prove callers' deadlines.
            "--enable-debug-command", "local",
        ]  # fmt: skip
        if self.password:
            cmd += ["--requirepass", self.password]
        self.daemon.start(cmd, self.log_file)
        wait_until(self._answers, timeout_s, f"redis-server on port {self.port}", self.daemon.running)

    def stop(self) -> None:
        self.daemon.stop()

    def kill(self) -> None:
        self.daemon.kill()


def fetch() -> str:
    """Nothing to download: say which redis-server the runner will use."""
    binary = redis_server()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    return f"redis: {binary} ({version.strip()})"


def main(argv: list[str] | None = None) -> None:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=DEFAULT_PORT)
        parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="data, log and pid file")
        parser.add_argument("--appendonly", action="store_true", help="AOF on, as in production")

    def started(server: Any, args: argparse.Namespace) -> list[str]:
        return [f"redis: {server.url} (log {server.log_file})", f"export HOOKSTREAM_REDIS_URL={server.url}"]

    byhand.run(
        "redis", __doc__ or "", argv, arguments,
        lambda args: LocalRedis(args.home, args.port, appendonly=args.appendonly), started, fetch,
    )  # fmt: skip


if __name__ == "__main__":
    main()
