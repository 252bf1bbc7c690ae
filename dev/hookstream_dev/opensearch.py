"""A real OpenSearch node on this host, from Maven Central's integ-test zip, without Docker.

`python -m hookstream_dev.opensearch start|stop|status [--home DIR] [--port P]` for a person;
`LocalOpenSearch` for the test fixtures and the benchmark.

3.x needs Java 21+; 2.19.x runs on Java 17 but its test zip has no analysis-common and no
painless (the index mapping needs neither). `choose()` takes 3.x when a Java 21+ is found
(JAVA_HOME, PATH, then HOOKSTREAM_DEV_JVM_DIRS) and falls back to 2.19.x on Java 17.

OpenSearch refuses to run as root: as root, the node runs as the system user `hookstream-os`
owning its home. Its home holds a hard-linked copy of the distribution (it writes its keystore
into config/), data/ and logs/, so the home must be somewhere that user can reach: not under
/root or pytest's private temporary folders.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hookstream_dev import byhand
from hookstream_dev.errors import DevServerError
from hookstream_dev.process import (
    CACHE,
    Daemon,
    find_java,
    java_binary,
    java_home,
    maven_artifact,
    port_open,
    system_user,
    wait_until,
)

CURRENT, FALLBACK = "3.6.0", "2.19.6"
USER = "hookstream-os"
START_TIMEOUT_S = 300.0  # 12-20 s on an idle 2-core box; minutes while a loaded box runs tests beside it
DEFAULT_HOME = (
    Path("/var/lib/hookstream/opensearch")  # root's own home is closed to the system user
    if os.geteuid() == 0
    else Path.home() / ".local" / "share" / "hookstream" / "opensearch"
)


@dataclass(frozen=True)
class Flavour:
    """Which OpenSearch runs, on which java."""

    version: str
    java: str


def choose() -> Flavour:
    java = find_java(21)
    if java is not None:
        return Flavour(CURRENT, java)
    return Flavour(FALLBACK, java_binary(17, f"OpenSearch {FALLBACK}"))


def distribution(version: str) -> Path:
    """The unpacked distribution of `version`, fetched and unpacked once into the cache."""
    cache = CACHE / f"opensearch-{version}"
    unpacked = cache / f"opensearch-{version}"
    if (unpacked / "bin" / "opensearch").exists():
        return unpacked
    archive = maven_artifact(f"org.opensearch.distribution.integ-test-zip:opensearch:{version}:zip", cache)
    staging = cache / "unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as zipped:
        for entry in zipped.infolist():
            target = Path(zipped.extract(entry, staging))
            mode = entry.external_attr >> 16  # zipfile drops the unix mode (bin/ must stay executable)
            if mode:
                target.chmod(mode & 0o777)
    (staging / f"opensearch-{version}").rename(unpacked)  # whole, so a half-unpacked copy never counts
    shutil.rmtree(staging, ignore_errors=True)
    return unpacked


def _link_tree(source: Path, target: Path) -> None:
    """A copy of `source` made of hard links (instant, no extra disk), plain copies across devices."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link, symlinks=True)


class LocalOpenSearch:
    """One single-node OpenSearch in `home`, on loopback, tracked by its pid file."""

    def __init__(
        self, home: Path, port: int = 9200, heap_mb: int = 512, flavour: Flavour | None = None
    ) -> None:
        self.home = home
        self.port = port
        self.heap_mb = heap_mb
        self.flavour = flavour or choose()
        self.daemon = Daemon(f"OpenSearch {self.flavour.version}", home / "opensearch.pid", marker=str(home))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "stdout.log"

    def running(self) -> bool:
        return self.daemon.running()

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the node unless it runs; return once the cluster is at least yellow."""
        if self.running():
            return
        for port in (self.port, self.port + 1):
            if port_open(port):
                raise DevServerError(f"port {port} is taken by another process; stop it or use --port")
        dist = self.home / "dist"
        if not (dist / "bin" / "opensearch").exists() or self._installed() != self.flavour.version:
            shutil.rmtree(dist, ignore_errors=True)
            _link_tree(distribution(self.flavour.version), dist)
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        user = system_user(USER, self.home)
        cmd = [
            str(dist / "bin" / "opensearch"),
            "-E", "discovery.type=single-node",
            "-E", "network.host=127.0.0.1",
            "-E", f"http.port={self.port}",
            "-E", f"transport.port={self.port + 1}",
            "-E", f"path.data={self.home / 'data'}",
            "-E", f"path.logs={self.home / 'logs'}",
            # A nearly full development disk must not turn the index read-only.
            "-E", "cluster.routing.allocation.disk.threshold_enabled=false",
        ]  # fmt: skip
        env = {
            "OPENSEARCH_JAVA_HOME": java_home(self.flavour.java),
            "OPENSEARCH_JAVA_OPTS": f"-Xms{self.heap_mb}m -Xmx{self.heap_mb}m",
        }
        self.daemon.start(cmd, self.log_file, env=env, cwd=self.home, user=user)
        what = f"OpenSearch {self.flavour.version} (see {self.log_file})"
        try:
            wait_until(self._healthy, timeout_s, what, self.running)
        except DevServerError:
            self.stop()  # a node that did not come up in time is not left behind
            raise

    def _installed(self) -> str | None:
        jars = list((self.home / "dist" / "lib").glob("opensearch-[0-9]*.jar"))
        return jars[0].stem.removeprefix("opensearch-") if jars else None

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=1s", timeout=3
            ) as r:
                return json.load(r).get("status") in ("yellow", "green")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        self.daemon.stop()

    def kill(self) -> None:
        """SIGKILL, as a crash (or a lost host) would; its data stays for `start`."""
        self.daemon.kill()


def fetch() -> str:
    """The distribution this machine would run (3.x with Java 21+, else 2.19.x), unpacked once."""
    flavour = choose()
    return f"OpenSearch {flavour.version} on {flavour.java}: {distribution(flavour.version)}"


def main(argv: list[str] | None = None) -> None:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
        parser.add_argument(
            "--port", type=int, default=9200, help="HTTP port; the transport port is the next one"
        )
        parser.add_argument("--heap-mb", type=int, default=512)

    def started(node: Any, args: argparse.Namespace) -> list[str]:
        return [
            f"OpenSearch {node.flavour.version} at {node.url} (home {node.home}, pid {node.daemon.pid()})",
            f"export HOOKSTREAM_OPENSEARCH_URL={node.url}",
        ]

    byhand.run(
        "opensearch", (__doc__ or "").split("\n")[0], argv, arguments,
        lambda args: LocalOpenSearch(args.home, args.port, args.heap_mb), started, fetch,
    )  # fmt: skip


if __name__ == "__main__":
    main()
