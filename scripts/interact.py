"""Send a signed interaction to a local interaction_verify, as Discord would.

    python scripts/interact.py ping
    python scripts/interact.py plan objective="write the release notes" [--role ID] [--url URL]

Signs with the published development key that config/local.yaml trusts. Never configure that
public key anywhere real.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
import uuid

from nacl.signing import SigningKey

DEV_SEED = b"facteur-local-development-key!!!"
GUILD, MEMBER_ROLE, USER, CHANNEL, APP = (
    "100000000000000001",
    "100000000000000010",
    "100000000000000100",
    "100000000000000200",
    "100000000000000300",
)


def interaction(command: str, options: list[str], role: str) -> dict:
    if command == "ping":
        return {"type": 1}
    parsed = [dict(zip(("name", "value"), item.split("=", 1), strict=True)) for item in options]
    return {
        "type": 2,
        "id": str(uuid.uuid4().int % 10**18 + 10**18),
        "application_id": APP,
        "token": "local-interaction-token",
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "member": {"user": {"id": USER, "username": "local"}, "roles": [role]},
        "data": {
            "id": "100000000000000400",
            "name": command,
            "type": 1,
            "options": [{"name": o["name"], "type": 3, "value": o["value"]} for o in parsed],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", help="ping, or a command name such as plan")
    parser.add_argument("options", nargs="*", help="name=value")
    parser.add_argument("--role", default=MEMBER_ROLE, help="the caller's role ID")
    parser.add_argument("--url", default="http://127.0.0.1:8080/")
    args = parser.parse_args()
    body = json.dumps(interaction(args.command, args.options, args.role)).encode()
    stamp = str(int(time.time()))
    signature = SigningKey(DEV_SEED).sign(stamp.encode() + body).signature.hex()
    headers = {
        "Content-Type": "application/json",
        "X-Signature-Ed25519": signature,
        "X-Signature-Timestamp": stamp,
    }
    request = urllib.request.Request(  # noqa: S310 - a local URL given by the user
        args.url, data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local URL
            print(response.status, response.read().decode())
    except urllib.error.HTTPError as err:
        print(err.code, err.read().decode())


if __name__ == "__main__":
    main()
