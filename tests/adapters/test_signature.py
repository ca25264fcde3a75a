from __future__ import annotations

import json
import time

import pytest
from nacl.signing import SigningKey, VerifyKey

from facteur.adapters.signature import Verifier, ed25519_valid
from facteur.errors import SignatureError
from tests.helpers.contracts import specs_path
from tests.helpers.support import PUBLIC_KEY_HEX, SIGNING, sign


def _wycheproof_cases() -> list[tuple[str, str, str, str, str]]:
    try:
        path = specs_path("wycheproof", "ed25519_test.json")
    except pytest.skip.Exception as skip:
        return [pytest.param(None, None, None, None, None, marks=pytest.mark.skip(str(skip)))]
    data = json.loads(path.read_text())
    assert data["algorithm"] == "EDDSA"
    cases = []
    for group in data["testGroups"]:
        for test in group["tests"]:
            cases.append(
                pytest.param(
                    group["publicKey"]["pk"],
                    test["msg"],
                    test["sig"],
                    test["result"],
                    test["comment"],
                    id=f"tc{test['tcId']}",
                )
            )
    assert len(cases) == data["numberOfTests"]
    return cases


@pytest.mark.parametrize(("pk", "msg", "sig", "result", "comment"), _wycheproof_cases())
def test_wycheproof_vectors(pk: str, msg: str, sig: str, result: str, comment: str) -> None:
    valid = ed25519_valid(VerifyKey(bytes.fromhex(pk)), bytes.fromhex(msg), bytes.fromhex(sig))
    assert valid is (result == "valid"), comment


NOW = 1_800_000_000
BODY = b'{"type":1}'


def _headers(**overrides: str) -> tuple[str, str]:
    headers = sign(BODY, NOW)
    sig = overrides.get("sig", headers["X-Signature-Ed25519"])
    ts = overrides.get("ts", headers["X-Signature-Timestamp"])
    return sig, ts


def test_valid_signature_passes() -> None:
    sig, ts = _headers()
    Verifier(PUBLIC_KEY_HEX).verify(sig, ts, BODY, now=NOW)
    # Upper-case hex is still hex.
    Verifier(PUBLIC_KEY_HEX).verify(sig.upper(), ts, BODY, now=NOW)


@pytest.mark.parametrize(
    ("sig", "ts", "body", "now", "reason"),
    [
        (None, "1800000000", BODY, NOW, "missing"),
        ("", "1800000000", BODY, NOW, "missing"),
        ("valid", None, BODY, NOW, "missing"),
        ("zz" * 64, "1800000000", BODY, NOW, "hex"),
        ("ab" * 63, "1800000000", BODY, NOW, "hex"),
        ("ab" * 65, "1800000000", BODY, NOW, "hex"),
        ("valid", "-1", BODY, NOW, "timestamp"),
        ("valid", "1.8e9", BODY, NOW, "timestamp"),
        ("valid", "1800000000 ", BODY, NOW, "timestamp"),
        ("valid", "1" * 13, BODY, NOW, "timestamp"),
        ("valid", "1800000000", BODY, NOW + 301, "freshness"),
        ("valid", "1800000000", BODY, NOW - 301, "freshness"),
        ("valid", "1800000000", BODY + b" ", NOW, "does not match"),
        ("flipped", "1800000000", BODY, NOW, "does not match"),
        ("valid", "1800000001", BODY, NOW, "does not match"),
    ],
)
def test_bad_signatures(sig, ts, body, now, reason) -> None:
    good_sig, _ = _headers()
    if sig == "valid":
        sig = good_sig
    elif sig == "flipped":
        sig = good_sig[:-2] + ("00" if good_sig[-2:] != "00" else "01")
    with pytest.raises(SignatureError, match=reason):
        Verifier(PUBLIC_KEY_HEX).verify(sig, ts, body, now=now)


def test_freshness_window_edges() -> None:
    sig, ts = _headers()
    verifier = Verifier(PUBLIC_KEY_HEX, tolerance_seconds=300)
    verifier.verify(sig, ts, BODY, now=NOW + 300)
    verifier.verify(sig, ts, BODY, now=NOW - 300)


def test_foreign_key_is_rejected() -> None:
    foreign = SigningKey.generate()
    headers = sign(BODY, NOW, key=foreign)
    with pytest.raises(SignatureError, match="does not match"):
        Verifier(PUBLIC_KEY_HEX).verify(
            headers["X-Signature-Ed25519"], headers["X-Signature-Timestamp"], BODY, now=NOW
        )


def test_uses_wall_clock_by_default() -> None:
    headers = sign(BODY)
    Verifier(SIGNING.verify_key.encode().hex()).verify(
        headers["X-Signature-Ed25519"], headers["X-Signature-Timestamp"], BODY
    )
    stale = sign(BODY, int(time.time()) - 3600)
    with pytest.raises(SignatureError, match="freshness"):
        Verifier(PUBLIC_KEY_HEX).verify(
            stale["X-Signature-Ed25519"], stale["X-Signature-Timestamp"], BODY
        )
