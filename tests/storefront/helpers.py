"""Storefront test helpers: a workspace with content, a deliverable policy and a catalog, and reading the
hosted pages' forms as a browser would."""

from __future__ import annotations

import re
from typing import Any

from tests.assembly.test_artifacts_api import ATOMS, QUIZ
from tests.assembly.test_artifacts_api import POLICY as ARTIFACT_POLICY

POLICY = ARTIFACT_POLICY.replace("{REVIEW}", "never")
CATALOG = """
offers:
  - key: starter-kit
    kind: product
    title: "Starter kit"
    description: "A personalised workbook.\\n\\nMade for where you are now."
    prices: {USD: 1500, EUR: 1400}
    components:
      - {component: deliverable, ref: starter-workbook}
  - key: playbook
    kind: product
    title: "Pricing playbook"
    prices: {USD: 2900}
    variants:
      - {key: launch, title: "Playbook (launch price)", price: {USD: 1900}}
      - {key: deluxe, title: "Playbook deluxe", price: {USD: 4900}}
  - key: retired
    kind: product
    title: "Old thing"
    prices: {USD: 500}
    active: false
"""
_FIELD = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def setup(http: Any, headers: dict[str, str] | None = None) -> None:
    """Content, the intake quiz, the deliverable policy and the catalog, through the JSON API."""
    kw = {"headers": headers} if headers is not None else {}
    r = http.post(
        "/v1/content/sync", json={"atoms": [{"text": t, "path": f"{k}.md"} for k, t in ATOMS.items()]}, **kw
    )
    assert r.status_code == 200, r.text
    assert http.put("/v1/quizzes", json={"text": QUIZ}, **kw).status_code == 200
    assert http.put("/v1/policies", json={"text": POLICY}, **kw).status_code == 200
    r = http.put("/v1/offers/catalog", json={"text": CATALOG}, **kw)
    assert r.status_code == 200, r.text


def form_of(html: str) -> dict[str, str]:
    """The hidden fields of the page's buy form."""
    return dict(_FIELD.findall(html))
