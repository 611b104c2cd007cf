"""Outgoing webhooks: creator endpoints, signed deliveries (Stripe's scheme), retries for 3 days, a delivery log."""
