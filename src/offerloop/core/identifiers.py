"""Identifier rules shared by every way a buyer gets in: ingestion, identity look-ups, imports, checkout.

One place decides which ids are placeholders and what an e-mail address is, so a value one path
accepts is never refused (or silently dropped) by another.
"""

from __future__ import annotations

import re
from typing import Final

MAX_ID_LENGTH: Final = 255
MAX_EMAIL_LENGTH: Final = 254  # RFC 5321: the longest path is 256 octets including the angle brackets

# Values that SDKs, forms and spreadsheets send when they have no real id; never treat them as an identity.
JUNK_VALUES: Final = frozenset(
    {
        "", "null", "none", "nil", "undefined", "nan", "anonymous", "anon", "unknown", "guest",
        "0", "-1", "false", "true", "[object object]", "n/a", "na", "test", "user", "id",
        "{}", "[]", "<nil>", "(null)",
    }
)  # fmt: skip
_ZERO_UUID_CHARS: Final = frozenset("0-{}")  # 0, 00000000-0000-..., {00000000-...}
_EMAIL_BAD_CHARS = re.compile(r"[\s,;:<>()\[\]\\\"]")


def is_junk(value: object) -> bool:
    """Absent, not a string or integer, or a placeholder such as ``null``, ``guest`` or the all-zero UUID."""
    if value is None:
        return True
    if not isinstance(value, str | int) or isinstance(value, bool):
        return True
    text = str(value).strip().lower()
    return text in JUNK_VALUES or set(text) <= _ZERO_UUID_CHARS


def clean_id(value: object) -> str | None:
    """A usable id as a string, or None for absent/junk/over-long values. Numbers are accepted as ids."""
    if is_junk(value):
        return None
    text = str(value).strip()
    return text if len(text) <= MAX_ID_LENGTH else None


def normalize_email(value: object) -> str | None:
    """The address trimmed and lower-cased, or None when it is not an e-mail address.

    One ``@``; a non-empty local part without leading, trailing or doubled dots; a domain of at least
    two non-empty labels, none starting or ending with a hyphen, the last at least two characters; no
    spaces, commas, semicolons, colons, brackets, quotes or backslashes; at most 254 characters.
    """
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or email.count("@") != 1 or _EMAIL_BAD_CHARS.search(email):
        return None
    local, domain = email.split("@")
    labels = domain.split(".")
    valid = (
        bool(local)
        and not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
        and len(labels) >= 2
        and all(labels)
        and all(not label.startswith("-") and not label.endswith("-") for label in labels)
        and len(labels[-1]) >= 2
    )
    return email if valid else None


def normalize_phone(value: object) -> str | None:
    """E.164-ish: keep a leading + and the digits; fewer than 7 digits is not a phone number."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
        text = "+" + digits
    if len(digits) < 7 or len(digits) > 15 or set(digits) == {"0"}:
        return None
    return ("+" if text.startswith("+") else "") + digits
