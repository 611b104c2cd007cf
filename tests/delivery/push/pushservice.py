"""A web push service on loopback, written here: it checks the VAPID header (RFC 8292: an ES256 JWT verified
with the key it names, its audience and expiry) and decrypts the aes128gcm body (RFC 8188/8291) with the
browser's private key and auth secret, by its own code on `cryptography`."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Browser:
    """A subscribing browser's keys (seeded): the P-256 pair and the 16-byte auth secret."""

    def __init__(self, seed: int) -> None:
        rnd = random.Random(seed)
        self.private = ec.derive_private_key(rnd.getrandbits(250) + 1, ec.SECP256R1())
        self.public = self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.auth = rnd.randbytes(16)

    def keys(self) -> dict[str, str]:
        return {"p256dh": b64(self.public), "auth": b64(self.auth)}

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 §3.4 + RFC 8188 §2: one record, keyed by ECDH with the sender's key in the header."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        sender = body[21 : 21 + idlen]
        ciphertext = body[21 + idlen :]
        assert idlen == 65 and rs >= len(ciphertext), (idlen, rs, len(ciphertext))
        shared = self.private.exchange(
            ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender)
        )
        ikm = HKDF(
            hashes.SHA256(), 32, salt=self.auth, info=b"WebPush: info\0" + self.public + sender
        ).derive(shared)
        cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\0").derive(ikm)
        nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\0").derive(ikm)
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        unpadded = padded.rstrip(b"\0")
        assert unpadded[-1:] == b"\x02", "the last record ends with the delimiter 0x02"
        return unpadded[:-1]


def verify_vapid(header: str, *, audience: str) -> tuple[dict[str, Any], str]:
    """(claims, k) of a valid ``vapid t=<jwt>, k=<key>`` header; AssertionError otherwise."""
    scheme, _, params = header.partition(" ")
    assert scheme.lower() == "vapid", header
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    token, key = parts["t"], parts["k"]
    head_b64, claims_b64, sig_b64 = token.split(".")
    assert json.loads(unb64(head_b64)) == {"typ": "JWT", "alg": "ES256"}
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(key))
    sig = unb64(sig_b64)
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AssertionError("the VAPID JWT's signature does not verify") from None
    claims = json.loads(unb64(claims_b64))
    assert claims["aud"] == audience, claims
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600, claims
    assert claims["sub"].startswith(("mailto:", "https://")), claims
    return claims, key


@dataclass
class Delivered:
    path: str
    headers: dict[str, str]
    claims: dict[str, Any]
    key: str
    plaintext: bytes


@dataclass
class PushService:
    browsers: dict[str, Browser] = field(default_factory=dict)  # path -> the browser subscribed there
    status: int = 201
    delivered: list[Delivered] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    audience: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        service = self.server.service
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status = service.status
        try:
            claims, key = verify_vapid(headers.get("authorization", ""), audience=service.audience)
            assert headers.get("content-encoding") == "aes128gcm", headers
            plaintext = service.browsers[self.path].decrypt(body)
            with service.lock:
                service.delivered.append(Delivered(self.path, headers, claims, key, plaintext))
        except (AssertionError, KeyError, ValueError) as exc:
            with service.lock:
                service.errors.append(f"{type(exc).__name__}: {exc}")
            status = 400
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, service: PushService) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.service = service


class Running:
    def __init__(self) -> None:
        self.service = PushService()
        self.server = _Server(self.service)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.service.audience = self.origin
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def subscription(self, name: str, seed: int) -> dict[str, Any]:
        """A new browser subscribed at ``/push/<name>``: what its PushSubscription.toJSON() would give."""
        browser = Browser(seed)
        self.service.browsers[f"/push/{name}"] = browser
        return {"endpoint": f"{self.origin}/push/{name}", "expirationTime": None, "keys": browser.keys()}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
