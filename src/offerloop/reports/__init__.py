"""Snapshots of the heavy reports: computed on view while they are cheap, else shown from the last snapshot
while a background job refreshes it (the console's attribution, cohorts, LTV fit, velocity, evaluation)."""
