"""The demo's delivery part: the shipped journeys loaded, the sales' receipts and next-step e-mails captured
in the Maildir, the decision one of them carries, and a buyer who clicks through and buys what it suggested
(the order rewards the decision and its revenue is attributed to the e-mail)."""

from __future__ import annotations

import email
import time
from email import policy
from pathlib import Path
from typing import Any

import httpx

from offerloop.core.clock import utcnow

JOURNEYS = (
    "receipt",
    "next_step",
    "credit_note",
    "dunning",
    "canceled",
    "renewal_notice",
    "trial_ending",
    "entitlement_expiring",
    "weekly_digest",
    "promise_late",
)


def prepare(http: httpx.Client, journeys_dir: Path) -> None:
    """Load the journeys; send at any hour with no caps (a demo runs at any time); the buyers who will buy
    opt in to marketing e-mail (as a checkout's consent box would record)."""
    http.put("/v1/delivery/settings", json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {},
                                            "overall_cap": None}).raise_for_status()  # fmt: skip
    for name in JOURNEYS:
        text = (journeys_dir / f"{name}.yaml").read_text(encoding="utf-8")
        http.put(f"/v1/journeys/{name}", json={"yaml": text}).raise_for_status()


def consent(url: str, write_key: str, buyers: list[str]) -> None:
    batch = [{"type": "identify", "userId": b, "messageId": f"demo-consent-{b}", "timestamp": utcnow().isoformat(),
              "context": {"consent": {"categoryPreferences": {"marketing": True}}}} for b in buyers]  # fmt: skip
    httpx.post(f"{url}/v1/batch", json={"batch": batch}, auth=(write_key, ""), timeout=60).raise_for_status()


def _settled(http: httpx.Client, expected: int, timeout_s: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        items: list[dict[str, Any]] = list(http.get("/v1/messages", params={"limit": 200}).json()["items"])
        done = [m for m in items if m["status"] not in ("queued", "sending")]
        if (len(items) >= expected and len(done) == len(items)) or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def run(http: httpx.Client, orders: list[dict[str, Any]]) -> dict[str, Any]:
    """What the sales sent, the decision in one next-step e-mail, and its conversion."""
    messages = _settled(http, expected=2 * len(orders))
    shown: list[dict[str, Any]] = []
    for m in sorted(messages, key=lambda m: m["id"]):
        raw = http.get(f"/v1/messages/{m['id']}/email")
        parsed = (
            email.message_from_bytes(raw.content, policy=policy.default) if raw.status_code == 200 else None
        )
        part = parsed.get_body(("plain",)) if parsed is not None else None
        text = str(part.get_content()) if part is not None else ""
        shown.append(
            {
                **m,
                "from": parsed["From"] if parsed else None,
                "first_line": text.strip().splitlines()[0] if text.strip() else "",
            }
        )
    out: dict[str, Any] = {"messages": shown}
    user_of = {o["buyer_id"]: o["user_id"] for o in orders}
    for nudge in (m for m in shown if m["journey"] == "next_step" and m["status"] == "sent"):
        body = http.get(f"/v1/messages/{nudge['id']}").json()["body"]
        decision_id = body["decisions"].get("offer")
        decision = http.get(f"/v1/decisions/{decision_id}").json()
        out["decision"] = decision
        # The buyer clicks the suggestion (the redirect records the click, with the journey as its campaign)
        # and buys it, naming the decision that suggested it.
        link = next(line for line in body["text"].splitlines() if "/v1/m/click/" in line).strip()
        click = http.get(link, follow_redirects=False)
        out["click"] = {"status": click.status_code, "location": click.headers.get("location")}
        chosen = str(decision.get("chosen") or "")
        order = http.post("/v1/checkout", json={"user_id": user_of.get(nudge["buyer_id"]),
                                                "offer": chosen.removeprefix("offer:"), "decision_id": decision_id})  # fmt: skip
        if order.status_code != 201:
            continue  # not for sale to this buyer (a one-per-buyer drop they have): the next one
        http.post(f"/v1/orders/{order.json()['id']}/paid", json={"reference": "demo"}).raise_for_status()
        out["converted"] = chosen.removeprefix("offer:")
        deadline = time.monotonic() + 30
        while decision.get("reward") is None and time.monotonic() < deadline:
            time.sleep(0.2)
            decision = http.get(f"/v1/decisions/{decision_id}").json()
        out["decision"] = decision
        break
    out["revenue_by_last_touch"] = http.get(
        "/v1/revenue", params={"by": "last_touch", "currency": "USD"}
    ).json()["items"]
    return out


def print_report(console: Any, report: dict[str, Any], maildir: Path) -> None:
    console.print(f"\n[bold]Delivery[/] (journeys on the live record; e-mails captured in {maildir})")
    for m in report["messages"]:
        console.print(f"  {m['journey']:<10} → {m['recipient']}: [cyan]{m['subject']}[/] — {m['status']}"
                      + (f" ({m['detail']})" if m["status"] != "sent" and m.get("detail") else ""))  # fmt: skip
    decision = report.get("decision")
    if decision:
        console.print(
            f"  The next-step e-mail asked the decision engine at send time: [cyan]{decision.get('chosen')}[/] "
            f"(propensity {decision.get('propensity')}, policy {decision.get('policy')}, decision {decision['id']})."
        )
    click = report.get("click")
    if click:
        console.print(f"  A click on it redirects ({click['status']}) to {click['location']}")
    if report.get("converted"):
        console.print(
            f"  The buyer then bought it: the decision's reward is {decision.get('reward') if decision else None} "
            f"(from {decision.get('reward_source') if decision else None})."
        )
    rows = report.get("revenue_by_last_touch") or []
    if rows:
        console.print("  Revenue by last touch: " + ", ".join(f"{r['key']} {r['formatted']}" for r in rows))
