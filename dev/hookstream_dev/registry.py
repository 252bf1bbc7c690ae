"""A real schema registry on this host: Apicurio Registry from Maven Central, without Docker.

Apicurio speaks Confluent's Schema Registry API under `/apis/ccompat/v7`, which is all
Hookstream uses. The newest release needs Java 21+; a machine with only Java 17 gets the
3.0 line, which speaks the same API. Storage is in memory: a restart forgets every schema,
which suits tests (`hookstream schemas register` puts them back for a person).

By hand: `python -m hookstream_dev.registry start [--port 8081]`, then `... status` / `... stop`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hookstream_dev import byhand
from hookstream_dev.errors import DevServerError, MissingToolError
from hookstream_dev.process import CACHE, Daemon, find_java, maven_artifact, port_open, wait_until


@dataclass(frozen=True)
class Release:
    version: str
    java_major: int
    jar: str  # relative to the unpacked folder


# Newest first: the first whose Java is installed is used.
RELEASES = (
    Release("3.3.3", 21, "quarkus-run.jar"),
    Release("3.0.9", 17, "apicurio-registry-app-3.0.9-runner.jar"),
)
CCOMPAT_PATH = "/apis/ccompat/v7"
DEFAULT_HOME = Path.home() / ".local" / "share" / "hookstream" / "registry"
DEFAULT_PORT = 8081  # Confluent's Schema Registry port, so client examples work unchanged
START_TIMEOUT_S = 240.0  # 4-10 s when quiet; minutes on a loaded 2-core CI box
_ARTIFACTS = CACHE / "apicurio"


def choose_release() -> tuple[Release, str]:
    """The newest release this machine has a Java for, and that `java`."""
    for release in RELEASES:
        java = find_java(release.java_major)
        if java is not None:
            return release, java
    raise MissingToolError(
        "no Java 17+ found for Apicurio Registry: install one "
        "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
    )


def unpacked(release: Release) -> Path:
    """The release's app folder, fetched and unpacked once. `tar`, not Maven's unpack, which cuts
    file names longer than 100 characters."""
    folder = _ARTIFACTS / f"apicurio-registry-{release.version}"
    if (folder / release.jar).exists():
        return folder
    archive = maven_artifact(f"io.apicurio:apicurio-registry-app:{release.version}:tar.gz:all", _ARTIFACTS)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    result = subprocess.run(["tar", "-xzf", str(archive), "-C", str(staging)], capture_output=True, text=True)
    if result.returncode != 0 or not (staging / release.jar).exists():
        why = result.stderr.strip() or f"{release.jar} missing"
        raise DevServerError(f"could not unpack {archive}: {why}")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


class LocalRegistry:
    """One Apicurio Registry under `home` (its pid file and log), answering on `port`."""

    def __init__(self, home: Path = DEFAULT_HOME, port: int = DEFAULT_PORT, heap_mb: int = 256) -> None:
        self.home = home
        self.port = port
        # 3.x opens a management port (9000 unless moved): the next port, so two never clash.
        self.management_port = port + 1
        self.heap_mb = heap_mb
        self.log_file = home / "registry.log"
        self.version: str | None = None  # the Apicurio release, once started
        self._daemon = Daemon("the schema registry", home / "registry.pid", f"-Dhookstream.registry={home}")

    @property
    def url(self) -> str:
        """What HOOKSTREAM_SCHEMA_REGISTRY_URL should be: the Confluent-compatible API."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    def pid(self) -> int | None:
        return self._daemon.pid()

    def running(self) -> bool:
        return self._daemon.running()

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        if self.running():
            return
        release, java = choose_release()
        folder = unpacked(release)
        self.version = release.version
        for port in (self.port, self.management_port):
            if port_open(port):
                raise DevServerError(f"port {port} is taken by another process; stop it or choose --port")
        cmd = [
            # C1 only: a development registry answers a few requests; this halves its start-up.
            java, f"-Xmx{self.heap_mb}m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Dhookstream.registry={self.home}",
            "-jar", str(folder / release.jar),
        ]  # fmt: skip
        env = {
            "QUARKUS_HTTP_HOST": "127.0.0.1",
            "QUARKUS_HTTP_PORT": str(self.port),
            "QUARKUS_MANAGEMENT_PORT": str(self.management_port),
            "QUARKUS_MANAGEMENT_HOST": "127.0.0.1",
        }
        self._daemon.start(cmd, self.log_file, env=env, cwd=folder)
        what = f"Apicurio Registry {release.version} (log: {self.log_file})"
        wait_until(self._answers, timeout_s, what, self.running)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/subjects", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        self._daemon.stop()

    def kill(self) -> None:
        """SIGKILL, as a crash would (and in memory, every schema is gone with it)."""
        self._daemon.kill()


def fetch() -> str:
    """The newest release this machine can run, fetched and unpacked."""
    release, java = choose_release()
    return f"Apicurio Registry {release.version} (Java: {java}) in {unpacked(release)}"


def main(argv: list[str] | None = None) -> None:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
        parser.add_argument("--port", type=int, default=DEFAULT_PORT)

    def started(registry: Any, args: argparse.Namespace) -> list[str]:
        return [
            f"Apicurio Registry {registry.version} (pid {registry.pid()})",
            f"export HOOKSTREAM_SCHEMA_REGISTRY_URL={registry.url}",
        ]

    byhand.run(
        "registry",
        __doc__ or "",
        argv,
        arguments,
        lambda args: LocalRegistry(args.home, args.port),
        started,
        fetch,
    )


if __name__ == "__main__":
    main()
