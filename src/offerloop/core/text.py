"""Small facts about text that several layers check the same way."""

from __future__ import annotations


def utf8_encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (false for a surrogate outside a pair, as JSON's ``\\ud83d``
    alone decodes to): what no database column and no orjson output can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
