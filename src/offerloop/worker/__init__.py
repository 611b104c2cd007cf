"""Background work of the embedded server: the learner that closes outcome windows and trains policies."""
