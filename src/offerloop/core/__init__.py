"""Pure helpers shared by every layer: ids, time, errors. Standard library and pydantic only."""
