"""Per-buyer features, updated incrementally as events are committed."""
