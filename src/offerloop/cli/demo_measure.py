"""The demo's measurement part: which channels and which posts (``utm_content``) the demo audience's orders are
credited to, read through the public API like any client would."""

from __future__ import annotations

from typing import Any

import httpx
from rich.console import Console
from rich.table import Table


def collect(http: httpx.Client) -> dict[str, Any]:
    """The figures the demo prints, each from its endpoint."""
    out: dict[str, Any] = {}
    for by in ("channel", "content"):
        for model in ("last", "markov"):
            r = http.get("/v1/attribution", params={"model": model, "by": by, "lookback_days": 90})
            r.raise_for_status()
            out[f"{by}:{model}"] = r.json()
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
