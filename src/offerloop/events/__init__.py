"""Ingestion (Segment spec), quarantine and replay, signal weights, touchpoints, imports."""
