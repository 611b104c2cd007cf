"""The loopback Stripe stand-in's fixtures, shared by every checkout test module."""

from tests.checkout.test_stripe_provider import fake_stripe, fake_stripe_server

__all__ = ["fake_stripe", "fake_stripe_server"]
