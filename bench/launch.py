"""How each app under test is started: the command line, its worker setting, its settings.

The gunicorn apps (the baseline and both ceilings) run under the worker setting their trial
chose; Hookstream under gunicorn with its own uvicorn worker class (only the worker count is
chosen); the peer as its articles run it, under uvicorn with 2 workers.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from bench.config import WorkerSetting
from bench.servers import Server

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PEER = WorkerSetting.uvicorn(2)

GUNICORN_MODULES = {
    "baseline": "bench.apps.baseline:app",
    "flask_ceiling": "bench.apps.flask_ceiling:app",
    "wsgi_ceiling": "bench.apps.wsgi_ceiling:app",
}
USES_KAFKA = ("hookstream", "baseline", "peer")


def _gunicorn_flags(setting: WorkerSetting) -> list[str]:
    flags = ["--workers", str(setting.workers), "--worker-class", setting.worker_class]
    if setting.worker_class == "gthread":
        flags += ["--threads", str(setting.threads)]
    return flags


def command(app: str, port: int, setting: WorkerSetting) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if app == "hookstream":
        # Its worker class is fixed (uvicorn on uvloop + httptools): only the count applies.
        return [str(BIN / "hookstream"), "producer", "--bind", bind, "--workers", str(setting.workers)]
    if app == "peer":
        return [
            sys.executable, "-m", "uvicorn", "bench.apps.peer:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(PEER.workers), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "gunicorn", "--bind", bind, *_gunicorn_flags(setting),
        "--keep-alive", "75", "--backlog", "2048", "--log-level", "warning", GUNICORN_MODULES[app],
    ]  # fmt: skip


def server(
    app: str, port: int, setting: WorkerSetting, env: Mapping[str, str], log_dir: Path, label: str = ""
) -> Server:
    return Server(
        name=f"{app}{label}",
        argv=command(app, port, setting),
        env=env,
        port=port,
        log_path=log_dir / f"{app}{label}.log",
        cwd=REPO,
    )
