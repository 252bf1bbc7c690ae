"""The producer's commands fail closed, each with one line saying what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from hookstream_dev.process import free_port_block
from producer.providers.fastio import FastioProvider

HOOKSTREAM = str(Path(sys.executable).parent / "hookstream")
SECRET_PREFIXES = tuple(f"{name}_WEBHOOK_SECRET" for name in ("FASTIO", "GITHUB", "STRIPE", "STANDARD"))


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    secret_free = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_PREFIXES)}
    command = [HOOKSTREAM, *args]
    return subprocess.run(command, env={**secret_free, **env}, capture_output=True, text=True, timeout=60)


def test_the_producer_refuses_to_start_without_any_secret() -> None:
    result = run("producer", "--bind", f"127.0.0.1:{free_port_block(1)}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "FASTIO_WEBHOOK_SECRET" in result.stderr


def test_the_producer_refuses_a_malformed_standard_secret() -> None:
    result = run("producer", STANDARD_WEBHOOK_SECRET="whsec_???")
    assert result.returncode == 1
    assert "STANDARD_WEBHOOK_SECRET must be whsec_<base64>" in result.stderr


def test_send_needs_the_secret_of_its_provider() -> None:
    result = run("send", "--provider", "github", FASTIO_WEBHOOK_SECRET="x")
    assert result.returncode == 1
    assert "GITHUB_WEBHOOK_SECRET is not set" in result.stderr


def test_send_says_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port_block(1)}/webhooks/fastio"
    result = run("send", "--url", url, FASTIO_WEBHOOK_SECRET="x")
    assert result.returncode == 1
    assert result.stderr.startswith(f"hookstream: cannot reach {url}")
    assert "hookstream producer" in result.stderr


def test_send_beside_make_run_signs_with_its_development_secret(tmp_path: Path) -> None:
    (tmp_path / "dev-fastio-secret").write_text("dev-secret\n")
    received: list[tuple[bytes, dict[str, str]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, dict(self.headers.items())))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with HTTPServer(("127.0.0.1", 0), Receiver) as server:
        threading.Thread(target=server.handle_request, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/webhooks/fastio"
        result = run("send", "--url", url, HOOKSTREAM_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    secret_file = tmp_path / "dev-fastio-secret"
    assert (
        result.stderr
        == f"FASTIO_WEBHOOK_SECRET is not set: signing with the development secret in {secret_file}\n"
    )
    [(body, headers)] = received
    assert FastioProvider(("dev-secret",)).verify(body, headers, time.time())
