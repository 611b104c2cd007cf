"""Buyers, the identity graph, consent, GDPR export and erasure."""
