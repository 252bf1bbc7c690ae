"""What every development server runner shares: ports, Java, Maven artifacts, and a daemon
tracked by its pid file.

Each runner (`kafka`, `redis`, `opensearch`, `s3proxy`, `registry`, `nginx`) starts a real
server on loopback, waits until it answers, and stops it by pid, never by name. A pid file
alone is not trusted: the process must still carry the runner's marker on its command line,
so a reused pid is never signalled.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hookstream_dev.errors import DevServerError, MissingToolError

CACHE = Path.home() / ".cache" / "hookstream"
# Most machines of this kind carry a newer JDK beside the default Java 17; the variable lets a
# test (or a person) say where to look instead.
_JVM_DIRS_VARIABLE = "HOOKSTREAM_DEV_JVM_DIRS"
_JVM_DIRS_DEFAULT = "/usr/lib/jvm:/opt/java"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port_block(size: int) -> int:
    """A base port such that base .. base+size-1 are all free right now.

    Drawn below the kernel's ephemeral range: a port the kernel hands out to outgoing
    connections (ours included) could be taken again before the server binds it.
    """
    low, _ = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(100):
        base = random.randrange(15000, low - size)
        try:
            for port in range(base, base + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise DevServerError(f"no block of {size} free ports found")


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major  # "1.8.0" style


def find_java(min_major: int) -> str | None:
    """A `java` of at least `min_major`: JAVA_HOME, PATH, then the JDKs installed side by side."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path))
    for name in os.environ.get(_JVM_DIRS_VARIABLE, _JVM_DIRS_DEFAULT).split(":"):
        root = Path(name)
        if name and root.is_dir():
            candidates.extend(sorted(root.glob("*/bin/java"), reverse=True))
    for java in candidates:
        if java.exists() and _java_major(str(java)) >= min_major:
            return str(java)
    return None


def java_binary(min_major: int = 17, needed_by: str = "the local servers") -> str:
    """A `java` of at least `min_major`, or a `MissingToolError` that says how to get one."""
    java = find_java(min_major)
    if java is None:
        raise MissingToolError(
            f"no Java {min_major}+ found for {needed_by}: "
            "install one (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return java


def java_home(java: str) -> str:
    """The JAVA_HOME of a `java` binary (servers' own scripts want the folder)."""
    return str(Path(os.path.realpath(java)).parent.parent)


def maven_artifact(coordinates: str, cache: Path) -> Path:
    """One artifact (`group:artifact:version[:type[:classifier]]`) copied from Maven Central into
    `cache`, fetched once. Returns the file."""
    cache.mkdir(parents=True, exist_ok=True)
    done = cache / (coordinates.replace(":", "_") + ".path")
    if done.exists():
        path = Path(done.read_text().strip())
        if path.exists():
            return path
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingToolError(f"mvn not found: install Maven to fetch {coordinates} (apt-get install maven)")
    staging = cache / "partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={coordinates}", f"-DoutputDirectory={staging}"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cache)
    files = list(staging.iterdir()) if staging.exists() else []
    if result.returncode != 0 or len(files) != 1:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise DevServerError(f"Maven could not fetch {coordinates}: " + " | ".join(tail))
    target = cache / files[0].name
    files[0].replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    done.write_text(f"{target}\n")
    return target


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, alive: Callable[[], bool]) -> None:
    """Poll `check` until it holds; fail early when the process died, or at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if not alive():
            raise DevServerError(f"{what} exited during start-up")
        if time.monotonic() > deadline:
            raise DevServerError(f"{what} did not answer within {timeout_s:.0f}s")
        time.sleep(0.2)


class Daemon:
    """One server process, started in its own session and tracked by `pid_file`.

    `marker` is a string its command line must contain for a pid to count as ours.
    """

    def __init__(self, name: str, pid_file: Path, marker: str) -> None:
        self.name = name
        self.pid_file = pid_file
        self.marker = marker
        self._child: subprocess.Popen[bytes] | None = None

    def pid(self) -> int | None:
        child = self._child
        if child is not None:
            # Our own child: ask the kernel (a re-exec can blank its cmdline for a moment).
            if child.poll() is None:
                return child.pid
            self._child = None
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if self.marker.encode() in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(
        self,
        cmd: Sequence[str],
        log_file: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> int:
        """Launch `cmd` (as `user`, when given, through `runuser`); return its pid."""
        if self.running():
            raise DevServerError(f"{self.name} already runs (pid {self.pid()})")
        if user is not None and os.geteuid() == 0:
            cmd = ["runuser", "-u", user, "--", *cmd]
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as out:
            # Its own session: Ctrl-C in the terminal that started it does not reach it.
            self._child = subprocess.Popen(
                list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(f"{self._child.pid}\n")
        return self._child.pid

    def stop(self, timeout_s: float = 30.0, sig: int = signal.SIGTERM) -> None:
        """Signal the process (and its session), then SIGKILL it if it outlives the timeout."""
        for current in (sig, signal.SIGKILL):
            pid = self.pid()
            if pid is None:
                break
            try:
                os.killpg(pid, current)
            except ProcessLookupError:
                break
            except PermissionError:
                os.kill(pid, current)
            deadline = time.monotonic() + timeout_s
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.stop(timeout_s=10.0, sig=signal.SIGKILL)


def system_user(name: str, home: Path) -> str:
    """An unprivileged system user owning `home` (servers such as OpenSearch refuse root).
    Made once with `useradd`; without root, the current user is used as it is."""
    if os.geteuid() != 0:
        return os.environ.get("USER", "")
    if subprocess.run(["id", "-u", name], capture_output=True, check=False).returncode != 0:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if made.returncode != 0 and "already exists" not in made.stderr:
            raise DevServerError(f"could not create the system user {name}: {made.stderr.strip()}")
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chown", "-R", f"{name}:", str(home)], check=True)
    return name
