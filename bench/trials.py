"""Which worker setting won a trial, and why, in words the report can print.

Each app is tried at open throttle under each setting it can run with: the gunicorn apps
(the baseline and both ceilings) under each worker class and size, Hookstream (whose class
is fixed) under each worker count. The winner is the setting that acknowledged the most
requests without errors; the reason quotes the numbers that decided it, including the cores
the app kept busy and its CPU per request, which usually say why (a sync worker idles through
every flush; one event loop cannot use a second core).
"""

from __future__ import annotations

from typing import Any

NOISE = 0.05  # run-to-run spread of an open-throttle trial on a shared 2-core box


def trial_record(app: str, label: str, step: dict[str, Any]) -> dict[str, Any]:
    """What the report keeps of one trial: its open-throttle step, briefly."""
    return {
        "app": app,
        "setting": label,
        "acked_rps": step["acked_rps"],
        "p99_ms": step["latency_ms"]["p99"],
        "errors": step["errors"],
        "cores_app": step.get("cores_busy", {}).get("app"),
        "cpu_ms_per_request": step.get("cpu_ms_per_acked_request", {}).get("app"),
    }


def _rank(trial: dict[str, Any]) -> tuple[bool, float]:
    return trial["errors"] == 0, trial["acked_rps"]


def _cost(trial: dict[str, Any]) -> str:
    if trial.get("cores_app") is None:
        return ""
    cost = f", {trial['cpu_ms_per_request']} ms CPU per request" if trial.get("cpu_ms_per_request") else ""
    return f"{trial['cores_app']} cores busy{cost}"


def choose(trials: list[dict[str, Any]], app: str) -> tuple[str, str] | None:
    """The winning setting's label for `app` and why it won; None when no trial of it ran."""
    measured = sorted((t for t in trials if t["app"] == app and "acked_rps" in t), key=_rank, reverse=True)
    if not measured:
        return None
    best, *others = measured
    why = f"{best['acked_rps']:,.0f} acked req/s with {best['errors']} errors ({_cost(best)})"
    if not others:
        return best["setting"], why + "; the only setting that ran"
    faster = [t for t in others if t["acked_rps"] > best["acked_rps"]]  # only ever ones with errors
    if faster:
        why += "; faster settings had errors: " + ", ".join(
            f"{t['setting']} {t['acked_rps']:,.0f}/s with {t['errors']} errors" for t in faster
        )
    second = max(others, key=lambda t: t["acked_rps"] if t not in faster else -1.0)
    if second not in faster:
        why += f"; runner-up {second['setting']} {second['acked_rps']:,.0f}/s ({_cost(second)})"
        lead = best["acked_rps"] / second["acked_rps"] - 1 if second["acked_rps"] else 1.0
        if lead < NOISE:
            why += f", within the {NOISE:.0%} run-to-run noise, so either would do"
        else:
            why += f", the winner {lead:.0%} ahead"
    worst = min(others, key=lambda t: t["acked_rps"])
    if worst is not second and worst not in faster:
        why += f"; slowest {worst['setting']} {worst['acked_rps']:,.0f}/s ({_cost(worst)})"
    return best["setting"], why
