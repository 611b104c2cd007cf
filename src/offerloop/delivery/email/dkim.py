"""Optional DKIM signing (RFC 6376; Ed25519 per RFC 8463) of the exact bytes a transport hands on."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from offerloop.delivery.email.exceptions import EmailConfigError

# The headers that matter to a receiver (RFC 8058 asks for both List-Unsubscribe fields). Each is signed
# once more than it occurs ("over-signing"), so a hop cannot add a second From or a List-Unsubscribe.
SIGNED_HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Unsubscribe", "List-Unsubscribe-Post",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
)  # fmt: skip

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]


@dataclass(frozen=True)
class DkimSigner:
    """A DKIM key for one ``selector._domainkey.domain``; ``sign`` returns the message with its
    ``DKIM-Signature`` header first."""

    selector: str
    domain: str
    algorithm: Algorithm
    # RSA: PKCS#1 PEM; Ed25519: the base64 32-byte seed (the forms dkimpy takes).
    _key: bytes = field(repr=False)
    _public: bytes = field(repr=False)

    @classmethod
    def from_pem(cls, pem: bytes, *, selector: str, domain: str) -> DkimSigner:
        """An RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8) private key in PEM, unencrypted."""
        _check_label("selector", selector)
        _check_label("domain", domain)
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise EmailConfigError(f"the DKIM private key is not an unencrypted PEM key: {exc}") from exc
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 1024:
                raise EmailConfigError("a DKIM RSA key must be at least 1024 bits (2048 recommended)")
            private = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            public = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return cls(selector, domain, "rsa-sha256", private, public)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            seed = key.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return cls(selector, domain, "ed25519-sha256", base64.b64encode(seed), public)
        raise EmailConfigError("a DKIM key must be RSA or Ed25519")

    @classmethod
    def from_file(cls, path: str | Path, *, selector: str, domain: str) -> DkimSigner:
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise EmailConfigError(f"cannot read the DKIM private key file {str(path)!r}: {exc}") from exc
        return cls.from_pem(pem, selector=selector, domain=domain)

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_record(self) -> str:
        """The TXT record to publish at ``dns_name``."""
        kind = "rsa" if self.algorithm == "rsa-sha256" else "ed25519"
        return f"v=DKIM1; k={kind}; p={base64.b64encode(self._public).decode('ascii')}"

    def sign(self, raw: bytes) -> bytes:
        """``raw`` (CRLF line ends) with a ``DKIM-Signature`` over its body and ``SIGNED_HEADERS``."""
        present = _header_names(raw)
        names: list[bytes] = []
        for name in SIGNED_HEADERS:
            count = present.get(name.lower(), 0)
            names.extend([name.encode("ascii")] * (count + 1))
        signature: bytes = dkim.sign(
            raw,
            self.selector.encode("ascii"),
            self.domain.encode("ascii"),
            self._key,
            signature_algorithm=self.algorithm.encode("ascii"),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=names,
        )
        return signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + raw


def _header_names(raw: bytes) -> dict[str, int]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    counts: dict[str, int] = {}
    for line in head.split(b"\r\n"):
        if line and line[:1] not in (b" ", b"\t") and b":" in line:
            name = line.split(b":", 1)[0].decode("ascii", "replace").strip().lower()
            counts[name] = counts.get(name, 0) + 1
    return counts


def _check_label(what: str, value: str) -> None:
    labels = value.split(".")
    if not value.isascii() or not all(
        label and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label) for label in labels
    ):
        raise EmailConfigError(f"the DKIM {what} {value!r} is not a DNS name")
