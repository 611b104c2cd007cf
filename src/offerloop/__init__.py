"""offerloop: the creator's canonical buyer record, personas, decisions and offers."""

__version__ = "0.1.0"

__all__ = ["__version__"]
