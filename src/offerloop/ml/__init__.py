"""Next-best-action learning policies: contextual bandits and baselines behind one ``Policy`` interface."""
