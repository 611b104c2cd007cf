"""schemathesis over the whole API against a real `offerloop serve`: no request a client can build from
/openapi.json is answered with a server error, and the connection it came on still works after it.

Derandomized (the same cases on every run) and bounded: OFFERLOOP_SCHEMATHESIS_EXAMPLES cases per operation
(default 40), so it finishes in about a minute per database on a 2-core machine.
"""

from __future__ import annotations

import json
import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.schemas import APIOperation
from tests.conftest import LiveServer, basic, bearer

pytestmark = pytest.mark.server

EXAMPLES = int(os.environ.get("OFFERLOOP_SCHEMATHESIS_EXAMPLES", "40"))
# The Segment endpoints authenticate with the public write key; everything else with the secret key.
TRACKING = {f"/v1/{t}" for t in ("identify", "track", "page", "screen", "group", "alias", "batch")}


def _fuzz(
    operation: APIOperation, *, url: str, http: requests.Session, auth: dict[str, str]
) -> tuple[int, list[str]]:
    """Send EXAMPLES generated cases of one operation; (cases sent, the ones answered with a 5xx)."""
    failures: list[str] = []
    sent = 0
    # Valid requests and invalid ones (wrong types, missing fields, out-of-schema values) alike.
    cases = st.one_of(operation.as_strategy(generation_mode=mode) for mode in GenerationMode)

    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=cases)
    def call(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        response = case.call(base_url=url, session=http, headers=auth, timeout=30)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {case.as_curl_command()[:300]} :: {response.text[:200]}")

    call()
    return sent, failures


def test_no_operation_answers_a_server_error(live_server: LiveServer) -> None:
    ws = json.loads(live_server.cli("workspace", "create", "Fuzzed Creator", "--json").stdout)
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
    failures: list[str] = []
    sent = operations = 0
    with requests.Session() as http:  # one keep-alive connection, as an SDK would use
        for result in schema.get_all_operations():
            operation = result.ok()
            auth = basic(ws["write_key"]) if operation.path in TRACKING else bearer(ws["secret_key"])
            n, failed = _fuzz(operation, url=live_server.url, http=http, auth=auth)
            sent, operations = sent + n, operations + 1
            failures += failed
    assert operations >= 80
    assert sent >= operations * 10  # hypothesis stops early only on operations with few distinct inputs
    assert failures == [], f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures[:40])
