"""schemathesis against the running producer: a real `hookstream producer` (gunicorn) on the
session broker is sent requests generated from its own /openapi.json, and every answer must be
one the document describes (status, content type, body schema, headers), never a 5xx.

Generated bodies carry no signature, so each webhook case is sent twice: as generated (the
refusals), and signed as Fast.io would sign those exact bytes (past the signature check, into
parsing). test_openapi.py keeps the two-way check that every route is documented and served.
"""

from __future__ import annotations

import json

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from producer.providers import sign
from tests.integration.producer.test_server import SECRET, Server, server

__all__ = ["server"]  # the fixture: a gunicorn producer with FASTIO_WEBHOOK_SECRET=SECRET


def _signed(case: Case) -> tuple[bytes, dict[str, str]] | None:
    """The case's body as bytes and Fast.io's headers for them; None when it is not a Fast.io webhook."""
    if case.method != "POST" or case.path_parameters.get("provider", "fastio") != "fastio":
        return None
    if not case.path.startswith("/webhook"):
        return None
    body = json.dumps(case.body).encode()
    return body, sign("fastio", body, SECRET)


def test_every_answer_to_generated_requests_is_documented(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results  # the document itself is valid
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert {op.label for op in operations} >= {"POST /webhooks/{provider}", "GET /readyz"}
    statuses: set[int] = set()

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: Case) -> None:
            statuses.add(case.call_and_validate().status_code)
            signed = _signed(case)
            if signed is not None:
                body, headers = signed
                # The document's request body is "a JSON object" for every provider, so schemathesis
                # would expect `{}` signed to be accepted; the producer answers it 422 missing_fields,
                # as documented. Every other check (status, content type, schema, headers) holds.
                answer = case.call_and_validate(
                    headers=headers, data=body, excluded_checks=[positive_data_acceptance]
                )
                statuses.add(answer.status_code)

        fuzz()

    # The generated requests reached past the signature check, not only its refusals.
    assert {200, 401, 404} <= statuses
    assert statuses & {400, 422}
