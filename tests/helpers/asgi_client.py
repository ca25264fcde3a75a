"""A test client for the functions served with `--asgi`, with the small part of Flask's test
client API the tests use, so one test can drive either kind of function."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Mapping
from typing import Any

from starlette.testclient import TestClient


class Answer:
    """A response, read the way the tests read Flask's."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self.status_code: int = response.status_code
        self.headers = response.headers
        self.data: bytes = response.content

    def get_data(self, as_text: bool = False) -> bytes | str:
        return self._response.text if as_text else self.data

    def get_json(self) -> Any:
        return jsonlib.loads(self.data)


class AsgiClient:
    def __init__(self, app: Any) -> None:
        # A server error must come back as the response a caller would see, not be re-raised.
        self._client = TestClient(app, raise_server_exceptions=False)

    def open(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        data: bytes | str | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        # Raw bytes: callers send what an attacker would, surrogates and Latin-1 included.
        sent = {
            name: value.encode("utf-8", "surrogateescape")
            for name, value in (headers or {}).items()
        }
        content = data.encode() if isinstance(data, str) else data
        if json is not None:
            content = jsonlib.dumps(json).encode()
            sent.setdefault("Content-Type", b"application/json")
        return Answer(self._client.request(method, path, content=content, headers=sent))

    def get(self, path: str = "/", **options: Any) -> Answer:
        return self.open(path, method="GET", **options)

    def post(self, path: str = "/", **options: Any) -> Answer:
        return self.open(path, method="POST", **options)

    def put(self, path: str = "/", **options: Any) -> Answer:
        return self.open(path, method="PUT", **options)

    def delete(self, path: str = "/", **options: Any) -> Answer:
        return self.open(path, method="DELETE", **options)

    def patch(self, path: str = "/", **options: Any) -> Answer:
        return self.open(path, method="PATCH", **options)


def client_for(name: str) -> Any:
    """functions/<name>/main.py loaded as functions-framework serves it, with a test client."""
    import functions_framework

    from facteur.bootstrap import FUNCTIONS
    from tests.helpers.support import ROOT

    source = str(ROOT / "functions" / name / "main.py")
    if FUNCTIONS[name].asgi:
        from functions_framework.aio import create_asgi_app

        return AsgiClient(create_asgi_app(name, source))
    return functions_framework.create_app(name, source).test_client()
