"""The next-best-action engine: catalog, eligibility rules, learning policy, decision log, rewards, evaluation."""
