"""Deterministic, seeded synthetic creator audiences emitting Segment-spec events for demos and benchmarks."""
