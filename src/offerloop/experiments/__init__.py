"""A/B/n experiments on offers, variants, journeys and decision policies: sticky assignment by buyer,
exposures, and results (frequentist with CUPED, Bayesian, sample-ratio mismatch, guardrails, personas)."""
