"""Database plumbing: declarative base, portable types, engines, the unit of work."""
