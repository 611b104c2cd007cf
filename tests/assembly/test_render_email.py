"""The workbook e-mail (issue 9, item 8): the real demo workbook's e-mail stays under Gmail's clipping
size (~102 KB) by sending a summary with a link to the full version when the full HTML would not fit."""

from __future__ import annotations

from html import unescape
from pathlib import Path

import pytest
from tests.conftest import msg

from offerloop.assembly import service as assembly_service
from offerloop.assembly.document import Block, Document, Section
from offerloop.assembly.render.html import render_email
from offerloop.cli.demo import DEMO_ANSWERS

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
GMAIL_SAFE_BYTES = 100_000


def load_demo(client, secret_headers) -> None:
    """The demo creator's corpus, intake quiz and launch workbook policy, through the API."""
    atoms = [
        {"text": p.read_text(), "path": str(p.relative_to(DEMO))}
        for p in sorted(DEMO.glob("content/**/*.md"))
    ]
    atoms = [a for a in atoms if not a["path"].endswith("README.md")]
    r = client.post("/v1/content/sync", headers=secret_headers, json={"atoms": atoms})
    assert r.status_code == 200, r.text
    quiz = (DEMO / "quizzes" / "intake.yaml").read_text()
    assert client.put("/v1/quizzes", headers=secret_headers, json={"text": quiz}).status_code == 200
    for name in ("launch-workbook", "pricing-audit"):
        policy = (DEMO / "policies" / f"{name}.yaml").read_text()
        r = client.put("/v1/policies", headers=secret_headers, json={"text": policy})
        assert r.status_code == 200, r.text


def demo_buyer(client, write_headers, user_id: str, name: str, answers: dict) -> None:
    r = client.post("/v1/identify", headers=write_headers, json=msg(userId=user_id, traits={"name": name}))
    assert r.status_code == 200, r.text
    r = client.post(
        "/v1/quizzes/intake/answers", headers=write_headers, json={"user_id": user_id, "answers": answers}
    )
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text


def make_artifact(client, db, secret_headers, user_id: str, policy: str) -> str:
    r = client.post("/v1/artifacts", headers=secret_headers, json={"user_id": user_id, "policy": policy})
    assert r.status_code == 202, r.text
    assert [s for _, _, s in assembly_service.run_pending(db=db)] == ["ready"]
    return r.json()["id"]


def download(client, secret_headers, artifact_id: str, fmt: str):
    link = client.get(f"/v1/artifacts/{artifact_id}/download", headers=secret_headers, params={"format": fmt})
    assert link.status_code == 200, link.text
    got = client.get(link.json()["url"])
    assert got.status_code == 200
    return got


@pytest.mark.parametrize("persona", sorted(DEMO_ANSWERS))
def test_the_demo_workbook_email_is_a_summary_under_gmails_clip_with_a_working_link(
    client, db, write_headers, secret_headers, settings, persona
) -> None:
    load_demo(client, secret_headers)
    demo_buyer(client, write_headers, "maya", "Maya Chen", DEMO_ANSWERS[persona])
    artifact_id = make_artifact(client, db, secret_headers, "maya", "launch-workbook")
    files = {
        f["format"]: f["size"]
        for f in client.get(f"/v1/artifacts/{artifact_id}", headers=secret_headers).json()["files"]
    }
    email = download(client, secret_headers, artifact_id, "email")
    body = email.content
    assert len(body) <= GMAIL_SAFE_BYTES, len(body)
    assert files["html"] > files["email"]
    text = email.text
    assert "Maya Chen" in text and "Open the full workbook" in text
    # every section is named in the summary
    document = client.get(f"/v1/artifacts/{artifact_id}", headers=secret_headers).json()["outline"]
    for section in document:
        assert unescape(text).count(section["title"]) >= 1
    # the link is absolute, signed, and opens the full web version of this very version
    start = text.index('href="', text.index("Open the full workbook") - 400) + len('href="')
    href = unescape(text[start : text.index('"', start)])
    assert href.startswith(settings.public_url + "/v1/files/" + artifact_id + "/1/html?expires=")
    full = client.get(href.removeprefix(settings.public_url))
    assert full.status_code == 200 and full.headers["content-type"].startswith("text/html")
    assert len(full.content) == files["html"]


def test_a_short_document_is_mailed_whole() -> None:
    doc = Document(
        title="Short",
        created_on="2026-12-05",
        sections=(Section("s", "Only", (Block(markdown="All of it *here*.", title="One"),)),),
    )
    email = render_email(doc)
    assert "All of it <em" in email and "Open the full" not in email


def test_a_huge_document_gets_less_detail_but_always_fits_and_stays_inert() -> None:
    para = "Write the offer in one sentence, then test it on three buyers before you build anything. " * 8
    blocks = tuple(
        Block(
            markdown=f"{para}\n\n| Q | A |\n|---|---|\n| x | |",
            title=f"Block {i} <script>alert(1)</script>",
            minutes=5,
        )
        for i in range(120)
    )
    sections = tuple(
        Section(f"s{n}", f"Part {n}", blocks[n * 12 : (n + 1) * 12], intro=para) for n in range(10)
    )
    doc = Document(title="Huge", created_on="2026-12-05", sections=sections, deliverable="audit_report")
    full = render_email(doc, max_bytes=10**9)
    assert len(full.encode()) > GMAIL_SAFE_BYTES
    summary = render_email(doc, full_url="https://offers.example.com/full?a=1&b=2")
    assert len(summary.encode()) <= GMAIL_SAFE_BYTES
    assert 'href="https://offers.example.com/full?a=1&amp;b=2"' in summary
    assert "Open the full audit report" in summary and "about 600 minutes" in summary
    assert "<script>" not in summary and all(f"Part {n}" in summary for n in range(10))
    tiny = render_email(doc, max_bytes=12_000)  # too small even for titles: section names only
    assert "Block 0" not in tiny and "Part 9" in tiny and "Open the full audit report" in tiny
