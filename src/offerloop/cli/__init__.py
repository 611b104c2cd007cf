"""The `offerloop` command line."""
