"""The demo's measurement part, read through the public API like any client would: which channels and which posts
(``utm_content``) the demo audience's orders are credited to, purchase cohorts, each persona's expected value
(BG/NBD + Gamma-Gamma fitted on the orders) and how fast each persona's buyers go on to buy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table


def collect(http: httpx.Client) -> dict[str, Any]:
    """The figures the demo prints, each from its endpoint."""
    out: dict[str, Any] = {}
    today = datetime.now(UTC).date()
    # the audience's orders span months: the last year, not the default 30 days
    period = {"start": (today - timedelta(days=364)).isoformat(), "end": today.isoformat()}
    for by in ("channel", "content"):
        for model in ("last", "markov"):
            r = http.get("/v1/attribution", params={"model": model, "by": by, "lookback_days": 90, **period})
            r.raise_for_status()
            out[f"{by}:{model}"] = r.json()
    ltv = http.get(
        "/v1/analytics/ltv", params={"calibration_end": today.isoformat(), "time_unit": "week", "horizon": 52}
    )
    out["ltv"] = ltv.json() if ltv.status_code == 200 else {"refused": ltv.json()["error"]["message"]}
    reads: tuple[tuple[str, str, dict[str, str | int]], ...] = (
        ("cohorts", "/v1/analytics/cohorts", {"by": "persona", "periods": 2}),
        ("velocity", "/v1/analytics/velocity", {}),
    )
    for name, path, params in reads:
        r = http.get(path, params=params)
        r.raise_for_status()
        out[name] = r.json()
    return out


def _money(minor: float, currency: str | None) -> str:
    return f"{minor / 100:,.2f} {currency or ''}".strip()


def print_report(console: Console, data: dict[str, Any], *, top: int = 6) -> None:
    console.print("\n[bold]Attribution[/] (each order credited to the touches of the 90 days before it)")
    for by, title in (("channel", "channel"), ("content", "post or video (utm_content)")):
        last, markov = data[f"{by}:last"], data[f"{by}:markov"]
        rows = {c["channel"]: c for c in markov["channels"]}
        firsts = {c["channel"]: c for c in last["channels"]}
        table = Table(title=f"by {title}", title_justify="left")
        for column in (title, "last touch: orders", "Markov: orders", "Markov: revenue", "removal effect"):
            table.add_column(column, justify="left" if column == title else "right")
        ranked = sorted(rows.values(), key=lambda c: -c["value"])[:top]
        for c in ranked:
            seen = firsts.get(c["channel"], {}).get("conversions", 0.0)
            effect = c.get("removal_effect")
            table.add_row(c["channel"], f"{seen:,.1f}", f"{c['conversions']:,.1f}",
                          _money(c["value"], markov.get("currency")),
                          f"{effect:.1%}" if effect is not None else "—")  # fmt: skip
        console.print(table)
        shown = len(ranked)
        if len(rows) > shown:
            console.print(f"  … and {len(rows) - shown:,} more")
    print_cohorts(console, data["cohorts"])
    print_ltv(console, data["ltv"])
    print_velocity(console, data["velocity"])


def print_ltv(console: Console, ltv: dict[str, Any]) -> None:
    if "refused" in ltv:
        console.print(f"\n[bold]Lifetime value[/]: not fitted ({ltv['refused']})")
        return
    fit, spend = ltv["bgnbd"], ltv["gamma_gamma"]
    console.print(
        f"\n[bold]Lifetime value[/] (BG/NBD r={fit['r']:.3f} alpha={fit['alpha']:.3f} a={fit['a']:.3f} b={fit['b']:.3f}; "
        f"Gamma-Gamma p={spend['p']:.2f} q={spend['q']:.2f} v={spend['v']:.2f}; {ltv['buyers']:,} buyers, "
        f"{ltv['repeat_buyers']:,} repeat) — the next {ltv['horizon']} weeks, by persona"
    )
    table = Table()
    for column in ("persona", "buyers", "P(alive)", "expected orders", "expected value"):
        table.add_column(column, justify="left" if column == "persona" else "right")
    for row in sorted(ltv["by_persona"], key=lambda r: -(r["expected_value_minor"] or 0)):
        table.add_row(row["key"], f"{row['buyers']:,}",
                      f"{row['p_alive']:.2f}" if row["p_alive"] is not None else "—",
                      f"{row['expected_purchases']:.2f}" if row["expected_purchases"] is not None else "—",
                      _money(row["expected_value_minor"], ltv["currency"]) if row["expected_value_minor"] is not None
                      else "—")  # fmt: skip
    console.print(table)
    for warning in ltv.get("warnings", []):
        console.print(f"  note: {warning}", markup=False)


def _share(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "—"


def print_cohorts(console: Console, cohorts: dict[str, Any]) -> None:
    console.print(
        "\n[bold]Purchase cohorts[/] (by first-purchase month and persona: the share buying again 1 and 2 months later)"
    )
    table = Table()
    for column in ("cohort", "persona", "buyers", "month 1", "month 2", "revenue"):
        table.add_column(column, justify="left" if column in ("cohort", "persona") else "right")
    for c in sorted(cohorts["cohorts"], key=lambda c: (c["cohort"], -c["size"])):
        active = (c["active"] + [None, None])[:2]
        revenue = ", ".join(_money(v, k) for k, v in sorted(c["revenue_minor"].items())) or "—"
        table.add_row(
            c["cohort"], c["segment"] or "—", f"{c['size']:,}", _share(active[0]), _share(active[1]), revenue
        )
    console.print(table)


def print_velocity(console: Console, velocity: dict[str, Any]) -> None:
    console.print(
        "\n[bold]Persona conversion velocity[/] (days from a buyer's first assignment to their first purchase)"
    )
    table = Table()
    for column in (
        "persona",
        "assigned",
        "purchased",
        "median days",
        "p75 days",
        "revenue per assigned buyer",
    ):
        table.add_column(column, justify="left" if column == "persona" else "right")
    for p in sorted(velocity["personas"], key=lambda p: -p["buyers"]):
        days = (p["median_days"], p["p75_days"])
        ltv = ", ".join(_money(v, k) for k, v in sorted(p["ltv_minor"].items())) or "—"
        table.add_row(p["persona"], f"{p['buyers']:,}", f"{p['purchased']:,}",
                      *(str(d) if d is not None else "not yet" for d in days), ltv)  # fmt: skip
    console.print(table)
    lift = velocity["offer_lift"]
    if lift["lift"] is not None:
        interval = f" (95% interval {lift['ci95'][0]:+.1%} to {lift['ci95'][1]:+.1%})" if lift["ci95"] else ""
        console.print(
            f"  Persona-specific offers converted {lift['persona_specific_rate']:.1%} of "
            f"{lift['persona_specific_shown']:,} decisions, generic ones {lift['generic_rate']:.1%} of "
            f"{lift['generic_shown']:,}: {lift['lift']:+.1%}{interval}."
        )
