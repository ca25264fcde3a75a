"""Discord's request signature: Ed25519 over timestamp + raw body, plus a freshness window."""

from __future__ import annotations

import re
import time

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from facteur.errors import SignatureError

_SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{128}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


class Verifier:
    """Checks Discord's signature headers against the application's public key."""

    def __init__(self, public_key_hex: str, tolerance_seconds: int = 300) -> None:
        self._key = VerifyKey(bytes.fromhex(public_key_hex))
        self._tolerance = tolerance_seconds

    def verify(
        self,
        signature: str | None,
        timestamp: str | None,
        body: bytes,
        now: float | None = None,
    ) -> None:
        if not signature or not timestamp:
            raise SignatureError("missing signature headers")
        if not _SIGNATURE_RE.fullmatch(signature):
            raise SignatureError("signature is not 64 bytes of hex")
        if not _TIMESTAMP_RE.fullmatch(timestamp):
            raise SignatureError("timestamp is not a Unix time in seconds")
        current = time.time() if now is None else now
        if abs(current - int(timestamp)) > self._tolerance:
            raise SignatureError("timestamp is outside the freshness window")
        if not ed25519_valid(self._key, timestamp.encode("ascii") + body, bytes.fromhex(signature)):
            raise SignatureError("signature does not match")


def ed25519_valid(key: VerifyKey, message: bytes, signature: bytes) -> bool:
    """Plain Ed25519 verification (checked against Wycheproof's vectors)."""
    try:
        key.verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True
