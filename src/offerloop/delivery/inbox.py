"""The buyer's in-app inbox: messages of the ``inapp`` channel, read over the API and streamed (SSE)."""

from __future__ import annotations

from offerloop.delivery import live


def topic(workspace_id: str, buyer_id: str) -> tuple[str, str, str]:
    return ("inbox", workspace_id, buyer_id)


def notify(workspace_id: str, buyer_id: str) -> None:
    live.notify(topic(workspace_id, buyer_id))
