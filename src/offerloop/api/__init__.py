"""The HTTP application factory."""

from offerloop.api.app import create_app

__all__ = ["create_app"]
