"""The HTML of live drops: the overlay (a streaming software's browser source), the hosted order page of the
manual provider, and the error pages of the short link. Plain HTML, escaped; script and style ship with
offerloop (``static/``), nothing from a CDN."""

from __future__ import annotations

from html import escape
from importlib import resources
from typing import Final

from offerloop.checkout.schemas import OrderRead
from offerloop.live.schemas import DropStatus

# The overlay runs its own script and opens its stream: allowed from this origin only.
OVERLAY_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)
ASSETS: Final = {"overlay.js": "text/javascript; charset=utf-8", "overlay.css": "text/css; charset=utf-8"}


def asset(name: str) -> bytes | None:
    """A file of ``static/`` by name (only the ones listed in ASSETS)."""
    if name not in ASSETS:
        return None
    return resources.files("offerloop.live").joinpath("static", name).read_bytes()


def _page(title: str, body: str, *, head: str = "") -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>{head}</head><body>{body}</body></html>"
    )


def overlay(workspace_id: str, status: DropStatus, viewer: str | None, currency: str | None) -> str:
    """The overlay: the drop's public facts rendered now, then kept live by ``overlay.js`` over its stream."""
    attrs = f'data-workspace="{escape(workspace_id)}" data-drop="{escape(status.key)}"'
    if viewer:
        attrs += f' data-viewer="{escape(viewer)}"'
    if currency:
        attrs += f' data-currency="{escape(currency)}"'
    body = (
        f'<main class="ol-overlay" {attrs} data-state="{escape(status.state)}" '
        f'data-closes-at="{escape(status.closes_at.isoformat())}">'
        f'<h1 class="ol-title">{escape(status.title)}</h1>'
        '<p class="ol-copy"></p>'
        '<p class="ol-price"></p>'
        f'<p class="ol-state">{escape(status.state.replace("_", " "))}</p>'
        '<p class="ol-countdown" aria-live="polite"></p>'
        f'<p class="ol-units"><span class="ol-left">{status.units_left}</span> of {status.inventory} left</p>'
        '<a class="ol-buy" href="#" hidden>Buy now</a>'
        "</main>"
    )
    head = (
        '<link rel="stylesheet" href="/live/_assets/overlay.css">'
        '<script src="/live/_assets/overlay.js" defer></script>'
    )
    return _page(status.title, body, head=head)


def order(order_read: OrderRead, title: str) -> str:
    """The hosted page of a manual-provider order: what was ordered, what it costs, what happens next."""
    line = order_read.lines[0] if order_read.lines else None
    what = escape(line.title if line else title)
    status = "paid — thank you!" if order_read.status == "paid" else order_read.status.replace("_", " ")
    body = (
        '<main class="ol-order">'
        f"<h1>{what}</h1>"
        f"<p>Order <code>{escape(order_read.id)}</code>: <strong>{escape(order_read.formatted_total)}</strong>, "
        f"{escape(status)}.</p>"
        "<p>Your unit is held for you while the creator sends payment instructions.</p>"
        "</main>"
    )
    return _page(f"Your order: {line.title if line else title}", body)


def problem(status: int, message: str) -> str:
    """An error page for a viewer who followed a link (the short link is opened by people, not clients)."""
    heading = {404: "Not found", 409: "Not available right now", 422: "This link is not valid"}.get(
        status, "Error"
    )
    return _page(
        heading, f'<main class="ol-problem"><h1>{escape(heading)}</h1><p>{escape(message)}</p></main>'
    )
