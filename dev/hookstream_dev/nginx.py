"""Debian's nginx in front of local producers, with the shipped `deploy/nginx/hookstream.conf`.

The deploy file is used as it is, but for two lines a host differs in: the upstream servers and
the listen port. Everything else (limits, timeouts, retries, rate limit) is what production runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from hookstream_dev.errors import DevServerError, MissingToolError
from hookstream_dev.process import Daemon, port_open, wait_until

DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "hookstream.conf"
START_TIMEOUT_S = 15.0

_MAIN_CONF = """\
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {home}/logs/access.log;
    client_body_temp_path {home}/tmp/body;
    proxy_temp_path {home}/tmp/proxy;
    fastcgi_temp_path {home}/tmp/fastcgi;
    uwsgi_temp_path {home}/tmp/uwsgi;
    scgi_temp_path {home}/tmp/scgi;
    include {home}/hookstream.conf;
}}
"""


def nginx_binary() -> str:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        raise MissingToolError("nginx not found: install it (Debian: apt-get install nginx)")
    return nginx


def fetch() -> str:
    """Nothing to download: nginx comes from Debian; say whether it is there."""
    version = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False).stderr
    return version.strip()


def gateway_conf(upstreams: Sequence[str], port: int, source: Path = DEPLOY_CONF) -> str:
    """The deploy file with this host's producers and listen port."""
    text = source.read_text()
    servers = "".join(f"    server {address} max_fails=1 fail_timeout=5s;\n" for address in upstreams)
    text, replaced = re.subn(r"^ *server \S+:\d+ [^\n]*\n", servers, text, count=1, flags=re.M)
    text, listened = re.subn(r"^( *)listen \d+;", rf"\g<1>listen 127.0.0.1:{port};", text, flags=re.M)
    if not (replaced and listened):
        raise DevServerError(f"{source} no longer has the upstream server and listen lines this runner sets")
    return text


class Gateway:
    """One nginx master (and its worker) serving `hookstream.conf` from `home`."""

    def __init__(self, home: Path, port: int, upstreams: Sequence[str]) -> None:
        self.home = home
        self.port = port
        self.upstreams = list(upstreams)
        self.daemon = Daemon("nginx", home / "daemon.pid", marker=str(home / "nginx.conf"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        nginx = nginx_binary()
        for folder in ("logs", "tmp"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        (self.home / "hookstream.conf").write_text(gateway_conf(self.upstreams, self.port))
        (self.home / "nginx.conf").write_text(_MAIN_CONF.format(home=self.home))
        cmd = [nginx, "-p", str(self.home), "-c", str(self.home / "nginx.conf"), "-g", "daemon off;"]
        checked = subprocess.run([*cmd, "-t"], capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            raise DevServerError(f"nginx refused the configuration: {checked.stderr.strip()}")
        self.daemon.start(cmd, self.home / "logs" / "stdout.log")
        wait_until(lambda: port_open(self.port), START_TIMEOUT_S, "nginx", self.daemon.running)

    def stop(self) -> None:
        self.daemon.stop(timeout_s=10.0)
