"""Web push: per-workspace VAPID keys (RFC 8292), buyers' browser subscriptions, encrypted sends (RFC 8291)."""
