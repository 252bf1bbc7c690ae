"""Which worker setting won a trial, with the figures that decided it.

The baseline and the WSGI ceiling are each tried at open throttle under every gunicorn
setting in `BENCH_WORKER_TRIALS`; the winner is the one that acknowledged the most requests
without errors, so each is compared at its best.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.results import AppRun, Trial

NOISE = 0.05  # run-to-run spread of an open-throttle trial on a shared 2-core box


def trial_of(run: AppRun) -> Trial:
    """What the report keeps of one trial: its open-throttle step, briefly."""
    step = run.steps[0]
    return Trial(
        app=run.app,
        setting=run.setting,
        acked_rps=round(step.acked_rps, 1),
        p99_ms=step.latency_ms.p99,
        errors=step.errors,
        cores_app=step.cores_app,
        cpu_ms_per_request=round(step.cpu_ms_per_request, 3) if step.cpu_ms_per_request else None,
    )


def failed(app: str, setting: str, why: str) -> Trial:
    return Trial(app, setting, None, None, None, None, None, failure=why)


def _rank(trial: Trial) -> tuple[bool, float]:
    return trial.errors == 0, trial.acked_rps or 0.0


def choose(trials: Sequence[Trial], app: str) -> tuple[str, str] | None:
    """The winning setting's label for `app` and the figures behind it; None when no trial ran."""
    measured = sorted(
        (t for t in trials if t.app == app and t.acked_rps is not None), key=_rank, reverse=True
    )
    if not measured:
        return None
    best, *others = measured
    why = f"{best.acked_rps:,.0f} req/s, {best.errors} errors, {best.cpu_ms_per_request} ms CPU/req"
    clean = [t for t in others if t.errors == 0]
    if clean:
        second = clean[0]
        lead = (best.acked_rps or 0.0) / (second.acked_rps or 1.0) - 1
        noise = " (within noise)" if lead < NOISE else ""
        why += f"; runner-up {second.setting} {second.acked_rps:,.0f} req/s, {lead:+.0%}{noise}"
    return best.setting, why
