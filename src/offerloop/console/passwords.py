"""Password hashes: argon2id through argon2-cffi (the maintained binding of the reference implementation)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's second recommendation (t=3, m=64 MiB, p=4).
_HASHER = PasswordHasher()
MIN_LENGTH = 12
MAX_LENGTH = 1024
# A hash of a password nobody has: verified when no account matches, so an unknown e-mail costs as long to
# refuse as a wrong password (the answer's timing does not tell which e-mails have accounts).
_DUMMY = _HASHER.hash("offerloop-no-such-account-placeholder")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash, spends the same time and answers False."""
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)
