"""`hookstream producer` (serve webhooks under gunicorn) and `hookstream send` (try one).

Neither imports the app here: the gunicorn master must not load prometheus_client before
`producer.gunicorn_conf` has set up the shared metrics directory.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import IO, Any

import click

from hookstream.errors import ConfigError, HookstreamError
from hookstream.settings import Settings
from producer.providers import PROVIDERS, build_providers, sign
from producer.providers.fastio import FORMATS
from producer.samples import sample_event


@click.command()
@click.option("--bind", default="0.0.0.0:8000", show_default=True, help="HOST:PORT to listen on.")
@click.option("--workers", type=click.IntRange(1), default=None, help="Worker processes [default: CPUs].")
@click.option(
    "--worker-class",
    type=click.Choice(["gthread", "gevent", "sync"]),
    default=None,
    help="gunicorn worker class [default: producer.gunicorn_conf's, chosen by measurement].",
)
@click.option("--threads", type=click.IntRange(1), default=None, help="Threads per gthread worker.")
def producer(bind: str, workers: int | None, worker_class: str | None, threads: int | None) -> None:
    """Receive signed webhooks and answer 200 only once Kafka holds them."""
    from gunicorn.app.base import BaseApplication

    from producer import gunicorn_conf

    build_providers(Settings.from_env())  # fail closed here, in one line, not in every worker
    if worker_class == "gevent":  # the producer's own subclass of it
        worker_class = gunicorn_conf.GEVENT_WORKER
    given = {"bind": [bind], "workers": workers, "worker_class": worker_class, "threads": threads}
    overrides = {key: value for key, value in given.items() if value is not None}

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {**vars(gunicorn_conf), **overrides}.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            from producer.app import app_from_env

            return app_from_env()

    Server().run()


@click.command()
@click.argument("file", type=click.File("rb"), required=False)
@click.option("--provider", type=click.Choice(list(PROVIDERS)), default="fastio", show_default=True)
@click.option(
    "--format",
    "form",
    type=click.Choice(FORMATS),
    default=None,
    help="Fast.io signature form [default: HOOKSTREAM_FASTIO_SIGNATURE_FORMAT, or sha256 when auto].",
)
@click.option("--url", default=None, help="Where to POST [default: http://127.0.0.1:8000/webhooks/PROVIDER].")
@click.option("--count", type=click.IntRange(1), default=1, show_default=True, help="Requests to send.")
def send(file: IO[bytes] | None, provider: str, form: str | None, url: str | None, count: int) -> None:
    """Sign FILE (or a generated event) with the configured secret, POST it, print the answer."""
    settings = Settings.from_env()
    secrets = getattr(settings.secrets, provider) or _development_secret(settings, provider)
    if not secrets:
        variable = f"{provider.upper()}_WEBHOOK_SECRET"
        raise ConfigError(f"{variable} is not set; send signs with the same secret the producer checks")
    options: dict[str, Any] = {}
    if provider == "fastio":
        configured = settings.fastio_signature_format
        options["form"] = form or (configured if configured != "auto" else "sha256")
    url = url or f"http://127.0.0.1:8000/webhooks/{provider}"
    given = file.read() if file is not None else None
    failures = 0
    for _ in range(count):
        body = given if given is not None else sample_event(provider)
        status, answer = _post(url, body, sign(provider, body, secrets[0], **options))
        click.echo(f"{status} {answer}")
        failures += not 200 <= status < 300
    if count > 1:
        click.echo(f"{count} sent, {count - failures} accepted, {failures} refused", err=True)
    if failures:
        raise SystemExit(1)


def _development_secret(settings: Settings, provider: str) -> tuple[str, ...]:
    """The Fast.io secret `make run` made when none was configured (scripts/run-dev.sh), so
    `hookstream send` beside it needs no variable; () when there is none."""
    path = settings.data_dir / "dev-fastio-secret"
    if provider != "fastio" or not path.is_file():
        return ()
    click.echo(f"FASTIO_WEBHOOK_SECRET is not set: signing with the development secret in {path}", err=True)
    return (path.read_text(encoding="utf-8").strip(),)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HookstreamError(f"cannot reach {url}: {reason}; is `hookstream producer` running?") from exc
