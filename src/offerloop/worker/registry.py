"""The modules whose import registers job kinds and event consumers; entrypoints load them before running."""

from __future__ import annotations

import importlib

MODULES: tuple[str, ...] = ("offerloop.checkout.tasks",)


def load() -> None:
    for name in MODULES:
        importlib.import_module(name)
