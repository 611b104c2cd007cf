"""Customer analytics (summary, retention, cohorts) and persona conversion velocity, read from the store."""
