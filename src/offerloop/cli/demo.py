"""`offerloop demo`: a synthetic creator audience sent through the real HTTP API, then the first look."""

from __future__ import annotations

import base64
import http.client
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from offerloop.cli import demo_delivery, demo_measure
from offerloop.cli.common import database, lift_lines
from offerloop.cli.persona_truth import persona_confusion
from offerloop.cli.process import ServerProcess
from offerloop.config import Settings
from offerloop.core.clock import utcnow
from offerloop.core.money import Money
from offerloop.decisions import service as decisions_service
from offerloop.delivery.email.transport import maildir_path_for
from offerloop.personas.confusion import PersonaConfusion
from offerloop.sim.audience import Audience, stamp_sent
from offerloop.sim.outcomes import respond
from offerloop.workspaces import service as workspace_service

console = Console()
DEMO_DIR = Path(__file__).resolve().parents[3] / "examples" / "demo"
DEMO_SIGNALS = DEMO_DIR / "signals.yaml"
DEMO_PERSONAS = DEMO_DIR / "personas.yaml"
DEMO_ACTIONS = DEMO_DIR / "actions.yaml"
DEMO_CONTENT = DEMO_DIR / "content"
DEMO_QUIZ = DEMO_DIR / "quizzes" / "intake.yaml"
DEMO_POLICY = DEMO_DIR / "policies" / "launch-workbook.yaml"
DEMO_AUDIT_POLICY = DEMO_DIR / "policies" / "pricing-audit.yaml"
DEMO_OFFERS = DEMO_DIR / "offers.yaml"
# Two simulated buyers who answer the intake quiz differently (their true personas differ too).
DEMO_ANSWERS = {
    "lurker_researcher": {
        "stage": "idea",
        "pricing_confidence": 1,
        "goal": "find out whether anyone would pay for my idea",
    },
    "early_adopter_superfan": {
        "stage": "launching",
        "pricing_confidence": 4,
        "goal": "launch my course to my email list",
    },
}


ORDER_EVENTS = frozenset({"Order Completed", "Order Refunded"})


def _by_sender(
    chunk: list[tuple[dict[str, Any], int]],
) -> list[tuple[bool, list[tuple[dict[str, Any], int]]]]:
    """A batch as its senders send it: the site's and app's events with the write key, then the shop's orders
    from the creator's server with the secret key (a write-key client's ``Order Completed`` is no purchase)."""
    orders = [m for m in chunk if m[0].get("type") == "track" and m[0].get("event") in ORDER_EVENTS]
    rest = [m for m in chunk if not (m[0].get("type") == "track" and m[0].get("event") in ORDER_EVENTS)]
    return [(secret, part) for secret, part in ((False, rest), (True, orders)) if part]


def _send(
    url: str, write_key: str, batches: list[list[tuple[dict[str, Any], int]]], total: int,
    secret_key: str | None = None,
) -> Counter[str]:  # fmt: skip
    """Two keep-alive client connections, as a site and an app would, each posting batches of 100; with a
    ``secret_key``, the orders of each batch go as the creator's server sends them (``_by_sender``).

    The stream is rendered before the clock starts; each batch only gets its ``sentAt`` (the real send
    time on each device's clock) and is encoded as it goes out.
    """
    totals: Counter[str] = Counter()
    lock = threading.Lock()
    cursor = iter(batches)
    parts = urlsplit(url)
    senders = {
        secret: {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
                 "Content-Type": "application/json"}
        for secret, key in ((False, write_key), (True, secret_key or write_key))
    }  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    failures: list[str] = []
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("sending events", total=total)

        def worker() -> None:
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
            try:
                while not failures:
                    with lock:
                        chunk = next(cursor, None)
                    if chunk is None:
                        return
                    for secret, part in _by_sender(chunk) if secret_key else [(False, chunk)]:
                        body = orjson.dumps({"batch": stamp_sent(part, utcnow())})
                        conn.request("POST", "/v1/batch", body=body, headers=senders[secret])
                        resp = conn.getresponse()
                        answer = resp.read()
                        if resp.status != 200:
                            failures.append(f"{resp.status}: {answer[:300]!r}")
                            return
                        result = orjson.loads(answer)
                        with lock:
                            totals.update(
                                accepted=result["accepted"],
                                duplicates=result["duplicates"],
                                quarantined=result["quarantined"],
                            )
                            for err in result["errors"]:
                                totals["reason:" + err["code"]] += 1
                            progress.advance(task, len(part))
            finally:
                conn.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if failures:
        raise RuntimeError(f"the server refused a batch: {failures[0]}")
    return totals


LAG_METRIC = "offerloop_consumer_lag_events"


def _wait_processed(url: str, timeout_s: float = 600) -> float | None:
    """Seconds until every consumer has caught up (lag 0 in /metrics); None when the server has no
    consumers (it processed each batch before acknowledging it)."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=30) as http_client:
        while True:
            lag = [
                float(line.rpartition(" ")[2])
                for line in http_client.get("/metrics").text.splitlines()
                if line.startswith(LAG_METRIC + "{")
            ]
            if not lag:
                return None
            if all(v == 0 for v in lag):
                return time.perf_counter() - started
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the pipeline had not caught up after {timeout_s:.0f} s (lag {sum(lag):,.0f})"
                )
            time.sleep(0.05)  # the demo waits for the server's consumers, as an operator would


def _sample_decisions(http: httpx.Client, audience: Audience) -> list[tuple[str, str, dict[str, Any]]]:
    """Ask for next best actions for one identified buyer of each of three simulated personas."""
    picked: dict[str, str] = {}
    for buyer in audience.buyers:
        if buyer.user_id and buyer.persona not in picked:
            picked[buyer.persona] = buyer.user_id
        if len(picked) == 3:
            break
    out = []
    for truth, user_id in picked.items():
        r = http.post("/v1/decide", json={"user_id": user_id, "placement": "home", "k": 3})
        if r.status_code == 200:
            out.append((truth, user_id, r.json()))
    return out


def _serve_round(
    url: str, ws: Any, actions: dict[str, dict[str, Any]], buyers: list[tuple[str, str]], tag: str, seed: int
) -> int:
    """Decide for each buyer through the API; buyers act on the first item as their true persona would,
    and what they did goes back in as tracked events. Returns how many acted."""
    secret = {"Authorization": f"Bearer {ws.secret_key}"}

    def decide(chunk: list[tuple[str, str]]) -> list[tuple[str, str, dict[str, Any]]]:
        with httpx.Client(base_url=url, headers=secret, timeout=60) as http:
            out = []
            for user_id, persona in chunk:
                r = http.post("/v1/decide", json={"user_id": user_id, "placement": "home", "k": 3})
                r.raise_for_status()
                out.append((user_id, persona, r.json()))
            return out

    with ThreadPoolExecutor(2) as pool:
        shown = [d for part in pool.map(decide, [buyers[0::2], buyers[1::2]]) for d in part]
    rng = random.Random(seed)
    acted = []
    for i, (user_id, persona, body) in enumerate(shown):
        if body["items"]:
            message = respond(persona, actions[body["items"][0]["id"]], user_id=user_id, rng=rng,
                              message_id=f"demo-{tag}-{i}")  # fmt: skip
            if message is not None:
                acted.append(message)
    with httpx.Client(base_url=url, auth=(ws.write_key, ""), timeout=60) as http:
        for start in range(0, len(acted), 100):
            http.post("/v1/batch", json={"batch": acted[start : start + 100]}).raise_for_status()
    return len(acted)


def _close_the_loop(
    url: str, ws: Any, db_url: str, audience: Audience, seed: int, per_round: int
) -> dict[str, Any]:
    """Two simulated weeks: decisions → outcomes → learning → decisions from the learned model → lift."""
    actions = {a["key"]: a for a in yaml.safe_load(DEMO_ACTIONS.read_text())}
    known = [(b.user_id, b.persona) for b in audience.buyers if b.user_id]
    random.Random(seed).shuffle(known)
    per_round = min(per_round, len(known) // 2)
    first, second = known[:per_round], known[per_round : 2 * per_round]

    def fast_forward() -> tuple[int, dict[str, int]]:
        # Windows are days long; the demo jumps 30 days ahead so unanswered decisions get their default reward.
        with database(Settings(database_url=db_url)) as db, db.write() as session:
            closed = decisions_service.close_windows(
                session=session, workspace_id=ws.id, now=utcnow() + timedelta(days=30)
            )
            learned = decisions_service.learn(session=session, workspace_id=ws.id, placement="home")
        return closed, learned

    acted_1 = _serve_round(url, ws, actions, first, "week1", seed)
    _, learned = fast_forward()
    started = utcnow()
    acted_2 = _serve_round(url, ws, actions, second, "week2", seed + 1)
    fast_forward()
    with database(Settings(database_url=db_url)) as db, db.read() as session:
        report = decisions_service.evaluate(
            session=session, workspace_id=ws.id, placement="home", since=started
        )
    return {"rounds": (len(first), acted_1, len(second), acted_2), "learned": learned, "report": report}


def _assemble(url: str, ws: Any, audience: Audience, out_dir: Path) -> list[dict[str, Any]]:
    """Corpus, quiz and policy through the API; two buyers of different personas answer the quiz; their
    workbooks are assembled (202 + preview), rendered by the server's worker, and downloaded."""
    secret = {"Authorization": f"Bearer {ws.secret_key}"}
    atoms = [{"text": f.read_text(), "path": f.relative_to(DEMO_CONTENT).as_posix()}
             for f in sorted(DEMO_CONTENT.rglob("*.md")) if f.name.lower() != "readme.md"]  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    with httpx.Client(base_url=url, headers=secret, timeout=60) as http:
        http.post("/v1/content/sync", json={"atoms": atoms, "prune": True}).raise_for_status()
        http.put("/v1/quizzes", json={"text": DEMO_QUIZ.read_text()}).raise_for_status()
        http.put("/v1/policies", json={"text": DEMO_POLICY.read_text()}).raise_for_status()
        for persona, answers in DEMO_ANSWERS.items():
            buyer = next(b for b in audience.buyers if b.user_id and b.persona == persona)
            r = httpx.post(f"{url}/v1/quizzes/intake/answers", auth=(ws.write_key, ""),
                           json={"user_id": buyer.user_id, "answers": answers})  # fmt: skip
            r.raise_for_status()
            t0 = time.perf_counter()
            queued = http.post("/v1/artifacts", json={"user_id": buyer.user_id, "policy": "launch-workbook"})
            queued.raise_for_status()
            preview_ms = (time.perf_counter() - t0) * 1000
            made.append({"persona": persona, "user_id": buyer.user_id, "answers": answers, "preview_ms": preview_ms,
                         **queued.json()})  # fmt: skip
        for item in made:
            status = item["status"]
            deadline = time.monotonic() + 120
            while status in ("queued", "rendering") and time.monotonic() < deadline:
                time.sleep(0.1)  # the demo waits for the server's render thread, as a client would
                status = http.get(f"/v1/artifacts/{item['id']}").json()["status"]
            detail = http.get(f"/v1/artifacts/{item['id']}").json()
            item["status"], item["files"] = status, detail["files"]
            if status == "ready":
                link = http.get(f"/v1/artifacts/{item['id']}/download", params={"format": "pdf"}).json()
                path = out_dir / f"{item['user_id']}-launch-workbook.pdf"
                path.write_bytes(http.get(link["url"]).content)
                item["path"] = path
    return made


def _sell(url: str, ws: Any, audience: Audience) -> dict[str, Any]:
    """The catalog through the API; three buyers are shown their offers and buy a drop, a micro-offer and a
    subscription (manual provider: paid by API); the server's fulfilment threads deliver each component."""
    secret = {"Authorization": f"Bearer {ws.secret_key}"}
    sales = [("drop-limited-print", "weekend_collector"), ("sales-page-teardown", "early_adopter_superfan"),
             ("membership-monthly", "subscription_loyalist")]  # fmt: skip
    out: dict[str, Any] = {"orders": []}
    with httpx.Client(base_url=url, headers=secret, timeout=60) as http:
        http.put("/v1/offers/catalog", json={"text": DEMO_OFFERS.read_text()}).raise_for_status()
        http.put("/v1/policies", json={"text": DEMO_AUDIT_POLICY.read_text()}).raise_for_status()
        http.post("/v1/offers/drop-limited-print/signoff").raise_for_status()
        demo_delivery.prepare(http, DEMO_DIR / "journeys")
        used: set[str] = set()
        for offer, persona in sales:
            buyer = next(
                b for b in audience.buyers if b.user_id and b.persona == persona and b.user_id not in used
            )
            used.add(str(buyer.user_id))
            demo_delivery.consent(url, ws.write_key, [str(buyer.user_id)])
            shown = http.get(
                "/v1/offers", params={"user_id": buyer.user_id, "placement": "offers", "k": 3}
            ).json()
            order = http.post(
                "/v1/checkout",
                json={"user_id": buyer.user_id, "offer": offer, "decision_id": shown["decision_id"]},
            )
            order.raise_for_status()
            paid = http.post(f"/v1/orders/{order.json()['id']}/paid", json={"reference": "demo-invoice"})
            paid.raise_for_status()
            out["orders"].append({"user_id": buyer.user_id, "persona": persona, "offer": offer,
                                  "shown": [o["key"] for o in shown["offers"]], **paid.json()})  # fmt: skip
        for order in out["orders"]:
            deadline = time.monotonic() + 60
            while True:  # the server's fulfilment threads deliver after the payment commits
                detail = http.get(f"/v1/orders/{order['id']}").json()
                if all(t["status"] != "pending" for t in detail["fulfilment"]) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            order["fulfilment"] = detail["fulfilment"]
            ledger = http.get(f"/v1/ledger/orders/{order['id']}")  # a trial books nothing: no entry yet
            order["ledger"] = ledger.json()["summary"] if ledger.status_code == 200 else None
        out["stock"] = next(
            o["stock"]
            for o in http.get("/v1/offers/catalog", params={"limit": 500}).json()["items"]
            if o["key"] == "drop-limited-print"
        )
        member = out["orders"][2]["user_id"]

        def access() -> dict[str, bool]:
            return {
                c: http.get("/v1/entitlements/check", params={"user_id": member, "component": c, "ref": r}).json()["allowed"]
                for c, r in (("community_space", "creator-circle"), ("coaching_quota", "coaching-1to1"), ("download", "launch-planner-hi-res"))
            }  # fmt: skip

        out["access"] = access()
        # The plan starts with a trial: nothing is charged until it ends. Its end comes now (the manual
        # provider renews by API), so the first period is charged, booked and its quota granted.
        grants = http.get(f"/v1/buyers/{out['orders'][2]['buyer_id']}/entitlements").json()["items"]
        sub_id = next(g["source"] for g in grants if g["source"].startswith("sub_"))
        sub = http.get(f"/v1/subscriptions/{sub_id}").json()
        out["trial_end"] = sub["state"]["current_period_end"]
        renewed = http.post(
            f"/v1/subscriptions/{sub_id}/actions", json={"action": "renew", "at": out["trial_end"]}
        )
        renewed.raise_for_status()
        out["after_trial"] = {"status": renewed.json()["status"], "access": access()}
        out["check"] = http.get("/v1/ledger/check").json()
        out["delivery"] = demo_delivery.run(http, out["orders"])
        out["revenue"] = http.get("/v1/revenue", params={"by": "offer", "currency": "USD"}).json()["items"]
    return out


def _persona_truth(db_url: str, workspace_id: str, audience: Audience) -> PersonaConfusion:
    """Live personas of the buyers the simulator identified, against the personas it gave them."""
    with database(Settings(database_url=db_url)) as db, db.read() as session:
        return persona_confusion(session=session, workspace_id=workspace_id, buyers=audience.buyers)


def _print_persona_truth(confusion: PersonaConfusion) -> None:
    console.print(
        "Against the simulator's true personas (rows; only the simulator knows them), identified buyers:"
    )
    rows = confusion.table(short_rows=True)
    rows[0][0], rows[0][-1] = "true", "prec."  # fits an 80-column terminal
    table = Table(box=None, padding=(0, 1), header_style="bold underline")
    for i, heading in enumerate(rows[0]):
        table.add_column(heading, justify="left" if i == 0 else "right")
    for row in rows[1:]:
        table.add_row(*row)
    console.print(table)
    console.print(f"  {confusion.legend()}\n  [bold]{confusion.summary()}[/]")


def run_demo(*, buyers: int, events: int, seed: int, db_path: Path) -> None:
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_url = f"sqlite:///{db_path.resolve()}"
    with database(Settings(database_url=db_url)) as db, db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="Demo Creator (synthetic)")
    console.print(f"[bold]offerloop demo[/] — workspace [cyan]{ws.id}[/] in {db_path}")

    rules = DEMO_SIGNALS.read_text() if DEMO_SIGNALS.exists() else None
    audience = Audience(buyers=buyers, events=events, seed=seed)
    # Two server processes: request parsing and validation run on both cores; SQLite writes take turns.
    # A 25% holdout (instead of the default 10%) so the lift measured on two simulated weeks is tighter.
    os.environ.setdefault("OFFERLOOP_HOLDOUT_SHARE", "0.25")
    holdout = float(os.environ["OFFERLOOP_HOLDOUT_SHARE"])
    server = ServerProcess(db_url, workers=2, log_path=db_path.with_suffix(".log"))
    server.spawn()
    # The stream is rendered while the server starts (another process): the send then only sends.
    batches = list(audience.unsent_batches(100))
    server.wait_ready(timeout_s=180)  # two workers importing beside the generator on a busy machine
    url = server.url
    try:
        admin = {"Authorization": f"Bearer {ws.secret_key}"}
        if rules is not None:
            httpx.put(f"{url}/v1/signals", json=rules, headers=admin).raise_for_status()
        if DEMO_PERSONAS.exists():
            httpx.put(
                f"{url}/v1/personas/templates", json=DEMO_PERSONAS.read_text(), headers=admin
            ).raise_for_status()
        if DEMO_ACTIONS.exists():
            actions = yaml.safe_load(DEMO_ACTIONS.read_text())
            httpx.put(f"{url}/v1/actions", json=actions, headers=admin).raise_for_status()
        t0 = time.perf_counter()
        totals = _send(url, ws.write_key, batches, events, secret_key=ws.secret_key)
        send_s = time.perf_counter() - t0
        del batches
        process_s = _wait_processed(url)
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {ws.secret_key}"}, timeout=60
        ) as http:
            overview = http.get("/v1/overview").json()
            merges = http.get("/v1/merges", params={"limit": 1}).json()["items"]
            sample = None
            if merges:
                sample = http.get(f"/v1/buyers/{merges[0]['winner_id']}").json()
            personas = http.get("/v1/personas", params={"limit": 500}).json()["items"]
            persona_truth = _persona_truth(db_url, ws.id, audience)
            decisions = _sample_decisions(http, audience)
        t0 = time.perf_counter()
        loop = _close_the_loop(url, ws, db_url, audience, seed, per_round=1000)
        loop_s = time.perf_counter() - t0
        deliverables = _assemble(url, ws, audience, db_path.resolve().parent / "offerloop-demo-artifacts")
        shop = _sell(url, ws, audience)
        with httpx.Client(base_url=url, headers=admin, timeout=120) as http:
            measured = demo_measure.collect(http)
    finally:
        server.stop()

    console.print(
        f"\nSent {events:,} events for {buyers:,} synthetic buyers in {send_s:.1f} s "
        f"([bold]{events / send_s:,.0f} events/s[/] acknowledged over HTTP, batches of 100, 2 connections)."
    )
    if process_s is None:
        console.print("Every batch was processed before it was acknowledged (no consumer lag to wait for).")
    else:
        console.print(
            f"The pipeline's consumers caught up {process_s:.1f} s after the last acknowledgement "
            f"(processed: [bold]{events / (send_s + process_s):,.0f} events/s[/] from the first send)."
        )
    console.print("\n[bold]Your audience[/]")
    table = Table(show_header=False)
    table.add_row("buyers", f"{overview['buyers']:,}")
    table.add_row("identified (known userId)", f"{overview['identified']:,}")
    table.add_row("anonymous histories merged", f"{overview['merges']:,}")
    table.add_row("refused merges (two known buyers)", f"{overview['conflicts']:,}")
    table.add_row("events stored", f"{overview['events']:,}")
    table.add_row("duplicates dropped", f"{totals['duplicates']:,}")
    table.add_row("high-signal events", f"{overview['high_signal']:,}")
    table.add_row("suppressed (low confidence)", f"{overview['suppressed']:,}")
    table.add_row("quarantined", f"{totals['quarantined']:,}")
    console.print(table)

    console.print("\n[bold]Why events were quarantined[/]")
    reasons = Table()
    reasons.add_column("reason")
    reasons.add_column("events", justify="right")
    for code, n in overview["quarantine_reasons"]:
        reasons.add_row(code, f"{n:,}")
    console.print(reasons)

    console.print("\n[bold]Buyers by first-touch channel[/]")
    channels = Table()
    channels.add_column("channel")
    channels.add_column("buyers", justify="right")
    for name, n in overview["first_touch_channels"]:
        channels.add_row(name, f"{n:,}")
    console.print(channels)
    console.print("Top sources: " + ", ".join(f"{s} ({n:,})" for s, n in overview["top_sources"]))

    if sample:
        kinds = ", ".join(f"{i['kind']}={i['value']}" for i in sample["identities"][:5])
        console.print(
            f"\nA merged buyer: [cyan]{sample['id']}[/] — {sample['event_count']} events, identities: {kinds}; "
            f"first touch {sample['first_touch']['channel'] if sample['first_touch'] else 'n/a'}."
        )
    if personas:
        console.print("\n[bold]Micro-personas, inferred live at ingest[/]")
        total = sum(p["buyers"] for p in personas) or 1
        table = Table(show_header=False)
        for p in personas:
            table.add_row(p["persona"], f"{p['buyers']:,}", f"{p['buyers'] / total:.1%}")
        console.print(table)
        _print_persona_truth(persona_truth)
    for truth, user_id, body in decisions:
        persona = body["persona"]["name"] if body["persona"] else "none yet"
        console.print(
            f"\n[bold]Next best actions[/] for {user_id} (simulated as {truth}; inferred [cyan]{persona}[/], "
            f"policy {body['policy']}, model v{body['model_version']}):"
        )
        for item in body["items"]:
            console.print(
                f"  {item['id']:26} score {item['score']:+.3f}  propensity {item['propensity']:.3f}  — {'; '.join(item['reasons'])}"
            )
    shown_1, acted_1, shown_2, acted_2 = loop["rounds"]
    console.print(
        f"\n[bold]Closing the loop[/] ({loop_s:.0f} s): week 1, {shown_1:,} buyers got a decision and {acted_1:,} acted "
        f"(each as their simulated persona would); the rewards trained model v{loop['learned']['version']} "
        f"({loop['learned']['learned']:,} rewards). Week 2, {shown_2:,} other buyers, {acted_2:,} acted."
    )
    report = loop["report"]
    if report.get("online"):
        console.print(
            f"[bold]Lift in week 2[/] (mean reward per decision, learned model vs the {holdout:.0%} rules-only holdout; "
            f"a lift is claimed only with ≥ {report['online']['min_group']} decisions per group and a 95% interval "
            "excluding 0, Bonferroni-corrected across personas):"
        )
        for line in lift_lines(report["online"]):
            console.print(line, markup=False)
        model = report["policies"].get("model")
        if model:
            ours, rules = model["snips"], report["policies"]["rules_only"]["snips"]
            snaps = ", ".join(f"{k} ({v})" for k, v in model["snapshots"].items())
            console.print(
                f"Offline, {report['method']} of week 2 (each decision scored by the snapshot learned before it: "
                f"{snaps}): SNIPS model {ours['value']:.3f} [{ours['ci_low']:.3f}, {ours['ci_high']:.3f}] on "
                f"{model['scored']:,} decisions ({model['matched']:,} matched) vs rules-only {rules['value']:.3f} "
                f"[{rules['ci_low']:.3f}, {rules['ci_high']:.3f}] on {report['policies']['rules_only']['scored']:,} "
                f"({report['policies']['rules_only']['matched']:,} matched). "
                "`offerloop evaluate` prints IPS/SNIPS/DR with intervals.",
                markup=False,
            )
    console.print("\n[bold]Personalized workbooks[/] (corpus → quiz answers → selection → Typst PDF)")
    for item in deliverables:
        pages = next((f["pages"] for f in item["files"] if f["format"] == "pdf"), None)
        console.print(
            f"  {item['user_id']} (simulated {item['persona']}; answered stage={item['answers']['stage']}, "
            f"pricing confidence {item['answers']['pricing_confidence']}): {item['status']}, {pages} pages, "
            f"preview in {item['preview_ms']:.0f} ms"
        )
        if item.get("path"):
            console.print(f"    {item['path']}")
        for section in item["outline"]:
            console.print(f"    · {section['title']}: {', '.join(section['blocks'][:4])}")
    if len(deliverables) == 2:
        a, b = ({x for s in d["outline"] for x in s["blocks"]} for d in deliverables)
        console.print(f"  The two share {len(a & b)} pieces; {len(a ^ b)} differ.")
    console.print("\n[bold]Sales[/] (offers ordered by the decision engine; manual provider, paid by API)")
    for o in shop["orders"]:
        parts = ", ".join(f"{t['component']} {t['status']}" for t in o["fulfilment"])
        lg = o["ledger"]
        booked = "ledger: nothing booked (a trial: charged at its end)"
        if lg is not None:
            fees = Money(o["currency"], lg["processor_fee"]["amount"] + lg["platform_fee"]["amount"]).format()
            booked = f"ledger gross {lg['gross']['formatted']}, fees {fees}, net {lg['net']['formatted']}"
        console.print(
            f"  {o['user_id']} ({o['persona']}) was shown {', '.join(o['shown'])}; bought [cyan]{o['offer']}[/] "
            f"{o['formatted_total']}: {o['status']}; delivered: {parts}; {booked}"
        )
    console.print(
        f"  Limited drop stock: {shop['stock']['sold']} sold, {shop['stock']['held']} held of {shop['stock']['total']}."
    )
    console.print(
        "  Member's access in the trial: "
        + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in shop["access"].items())
    )
    after = shop["after_trial"]
    console.print(
        f"  At the trial's end ({shop['trial_end'][:10]}) the first period is charged: {after['status']}; access "
        + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in after["access"].items())
    )
    console.print("  Revenue by offer: " + ", ".join(f"{r['key']} {r['formatted']}" for r in shop["revenue"]))
    console.print(f"  Ledger balanced: {shop['check']['balanced']} (every entry's debits equal its credits).")
    demo_delivery.print_report(console, shop["delivery"], maildir_path_for(Settings(database_url=db_url)))
    demo_measure.print_report(console, measured)
    console.print(
        "\n[bold]Where to look next[/]\n"
        f"  OFFERLOOP_DATABASE_URL={db_url} offerloop serve     then open http://127.0.0.1:8000/docs\n"
        f"  secret key: {ws.secret_key}\n"
        f"  the console: OFFERLOOP_DATABASE_URL={db_url} offerloop user create -w {ws.id} --email you@example.com "
        "--role owner\n"
        "               (asks for a password), then open http://127.0.0.1:8000/ and sign in\n"
        f"  a hosted offer page: http://127.0.0.1:8000/o/{ws.id}/launch-workbook   the buyer portal: "
        f"http://127.0.0.1:8000/p/{ws.id}\n"
        f"  offerloop quarantine list -w {ws.id}                (with the same OFFERLOOP_DATABASE_URL)\n"
        f"  offerloop merges list -w {ws.id}\n"
        f"  offerloop export -w {ws.id} -o audience.jsonl\n"
        f"Done in {time.perf_counter() - started:.0f} s."
    )
