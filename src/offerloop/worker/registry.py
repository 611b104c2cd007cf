"""The modules whose import registers job kinds and event consumers; entrypoints load them before running."""

from __future__ import annotations

import importlib

MODULES: tuple[str, ...] = (
    "offerloop.identity.consumers",
    "offerloop.features.consumers",
    "offerloop.decisions.consumers",
    "offerloop.assembly.consumers",
    "offerloop.assembly.tasks",
    "offerloop.checkout.tasks",
    "offerloop.subscriptions.tasks",
    "offerloop.decisions.tasks",
    "offerloop.delivery.consumers",
    "offerloop.delivery.tasks",
    "offerloop.delivery.schedule_tasks",
    "offerloop.delivery.webhooks.tasks",
    "offerloop.invoices.consumers",
    "offerloop.invoices.tasks",
    "offerloop.analytics.consumers",
    "offerloop.reports.tasks",
)


def load() -> None:
    for name in MODULES:
        importlib.import_module(name)
