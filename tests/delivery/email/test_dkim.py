"""DKIM: sign with RSA and Ed25519, verify with dkimpy against the published record (no network)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from offerloop.delivery.email.compose import build_message
from offerloop.delivery.email.dkim import DkimSigner
from offerloop.delivery.email.exceptions import EmailConfigError


def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ed25519_pem() -> bytes:
    return pem(ed25519.Ed25519PrivateKey.generate())


def dns_for(signer: DkimSigner) -> Callable[..., bytes]:
    """dkimpy's DNS lookup, answered from the signer's record; any other name is unknown."""

    def lookup(name: bytes, timeout: float = 5) -> bytes:
        return signer.dns_record().encode() if name == f"{signer.dns_name}.".encode() else b""

    return lookup


def wire() -> bytes:
    return build_message(
        sender="Rowan Vale <hello@rowanvale.example>",
        to="ada@example.com",
        subject="Grüße, Ada",
        text="Hi Ada ✓\n",
        html="<p>Hi Ada ✓</p>",
        message_id="<k1@mail.rowanvale.example>",
        unsubscribe_url="https://offers.rowanvale.example/u/tok",
        unsubscribe_mailto="mailto:u@rowanvale.example",
        web_version_url=None,
    ).as_bytes()


def signature_tags(signed: bytes) -> dict[str, str]:
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    value = header.split("DKIM-Signature:", 1)[1].split("\r\n")
    text = value[0] + "".join(line for line in value[1:] if line.startswith((" ", "\t")))
    for line in value[1:]:
        if not line.startswith((" ", "\t")):
            break
    tags = {}
    for part in text.split(";"):
        if "=" in part:
            key, _, val = part.strip().partition("=")
            tags[key] = "".join(val.split())
    return tags


@pytest.mark.parametrize(
    ("key", "algorithm", "kind"), [("rsa", "rsa-sha256", "rsa"), ("ed", "ed25519-sha256", "ed25519")]
)
def test_sign_then_verify(key: str, algorithm: str, kind: str, rsa_pem: bytes, ed25519_pem: bytes) -> None:
    signer = DkimSigner.from_pem(
        rsa_pem if key == "rsa" else ed25519_pem, selector="s2026", domain="rowanvale.example"
    )
    assert signer.algorithm == algorithm
    assert signer.dns_name == "s2026._domainkey.rowanvale.example"
    assert signer.dns_record().startswith(f"v=DKIM1; k={kind}; p=")
    unsigned = wire()
    signed = signer.sign(unsigned)
    assert signed.startswith(b"DKIM-Signature: ")
    assert signed.endswith(b"\r\n" + unsigned)
    assert dkim.verify(signed, dnsfunc=dns_for(signer))

    tags = signature_tags(signed)
    assert (tags["a"], tags["d"], tags["s"], tags["c"]) == (
        algorithm,
        "rowanvale.example",
        "s2026",
        "relaxed/relaxed",
    )
    # Every header that matters, each once more than it occurs (over-signed).
    assert tags["h"].split(":") == [
        "from", "from", "to", "to", "subject", "subject", "date", "date", "message-id", "message-id",
        "reply-to", "list-unsubscribe", "list-unsubscribe", "list-unsubscribe-post", "list-unsubscribe-post",
        "mime-version", "mime-version", "content-type", "content-type", "content-transfer-encoding",
    ]  # fmt: skip


def test_tampering_breaks_the_signature(rsa_pem: bytes, ed25519_pem: bytes) -> None:
    for key in (rsa_pem, ed25519_pem):
        signer = DkimSigner.from_pem(key, selector="s1", domain="rowanvale.example")
        signed = signer.sign(wire())
        lookup = dns_for(signer)
        assert dkim.verify(signed, dnsfunc=lookup)
        assert not dkim.verify(signed.replace(b"Hi Ada =E2", b"Hi Bob =E2"), dnsfunc=lookup)
        assert not dkim.verify(signed.replace(b"/u/tok>", b"/u/evil>"), dnsfunc=lookup)
        # Over-signing: a hop cannot add a header the signature covers, even one that was absent.
        head, body = signed.split(b"\r\n\r\n", 1)
        assert not dkim.verify(head + b"\r\nReply-To: evil@example.com\r\n\r\n" + body, dnsfunc=lookup)
        assert not dkim.verify(head + b"\r\nFrom: evil@example.com\r\n\r\n" + body, dnsfunc=lookup)
        # A trace header added on the way is fine.
        assert dkim.verify(b"Received: from a by b\r\n" + signed, dnsfunc=lookup)
        # Another key of the same kind at the same name does not verify it.
        another = (
            rsa.generate_private_key(public_exponent=65537, key_size=1024)
            if signer.algorithm == "rsa-sha256"
            else ed25519.Ed25519PrivateKey.generate()
        )
        other = DkimSigner.from_pem(pem(another), selector="s1", domain="rowanvale.example")
        record = other.dns_record().encode()
        assert not dkim.verify(signed, dnsfunc=lambda name, timeout=5, record=record: record)


def test_keys_from_files_and_bad_keys(tmp_path: Path, rsa_pem: bytes) -> None:
    path = tmp_path / "dkim.pem"
    path.write_bytes(rsa_pem)
    assert DkimSigner.from_file(path, selector="s1", domain="rowanvale.example").algorithm == "rsa-sha256"
    assert "PRIVATE" not in repr(DkimSigner.from_file(path, selector="s1", domain="rowanvale.example"))
    bad = [
        (b"not a key", "s1", "rowanvale.example"),
        (pem(ec.generate_private_key(ec.SECP256R1())), "s1", "rowanvale.example"),
        (rsa_pem, "s1; x=y", "rowanvale.example"),
        (rsa_pem, "s1", "rowanvale..example"),
    ]
    for key, selector, domain in bad:
        with pytest.raises(EmailConfigError):
            DkimSigner.from_pem(key, selector=selector, domain=domain)
    with pytest.raises(EmailConfigError):
        DkimSigner.from_file(tmp_path / "missing.pem", selector="s1", domain="rowanvale.example")
