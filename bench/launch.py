"""How each app under test is started: the command line, its worker setting, its settings.

The producer (and its variants) runs as it ships, through `hookstream producer` under the
worker setting of `producer.gunicorn_conf` (or the one `--producer-setting` gives, to compare
classes); the Flask ceiling under that same setting, so their CPU per request compare; the
baseline and the WSGI ceiling under the setting their own trials chose; the peer as its
articles run it, under uvicorn with 2 workers.
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
USES_KAFKA = ("hookstream", "baseline", "peer", "hookstream_redis", "hookstream_registry")


def is_producer(app: str) -> bool:
    return app == "hookstream" or app.startswith("hookstream_")


def _gunicorn_flags(setting: WorkerSetting) -> list[str]:
    flags = ["--workers", str(setting.workers), "--worker-class", setting.worker_class]
    if setting.worker_class == "gthread":
        flags += ["--threads", str(setting.threads)]
    return flags


def command(app: str, port: int, setting: WorkerSetting) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if is_producer(app):  # the rest of its settings from gunicorn_conf
        flags = _gunicorn_flags(setting) if setting.is_gunicorn_class else ["--workers", str(setting.workers)]
        return [str(BIN / "hookstream"), "producer", "--bind", bind, *flags]
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
