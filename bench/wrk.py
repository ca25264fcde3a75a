"""bench_verify's warm load from wrk (Debian package `wrk`), when it is on PATH: far cheaper per
request than any Python client, so more of the two cores are left to the server."""

from __future__ import annotations

import json
import re
import resource
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.cpu import Measure
from bench.interactions import Request
from bench.load import REQUEST_TIMEOUT_S, Job, LoadOutcome
from bench.processes import HOST, Children

# Pre-signed requests in turn, every answer checked; one JSON line of totals at the end.
WRK_SCRIPT = """\
-- Written by bench/wrk.py: pre-signed requests in turn, answers checked.
local pool = {
%(pool)s
}
local expect = %(expect)s
local prepared = {}
local turn = 0
local threads = {}
bad = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  turn = tonumber(args[1]) or 0
  for i, item in ipairs(pool) do
    prepared[i] = wrk.format("POST", "/", {
      ["Content-Type"] = "application/json",
      ["X-Signature-Ed25519"] = item[2],
      ["X-Signature-Timestamp"] = item[3],
    }, item[1])
  end
end

function request()
  turn = turn %% #prepared + 1
  return prepared[turn]
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local wrong = 0
  for _, thread in ipairs(threads) do
    wrong = wrong + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"socket\\":%%d,\\"status\\":%%d," ..
    "\\"wrong\\":%%d,\\"p50_us\\":%%.1f,\\"p99_us\\":%%.1f}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    wrong, latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(data: bytes) -> str:
    escaped = []
    for byte in data:
        char = chr(byte)
        if char in '\\"':
            escaped.append("\\" + char)
        elif 32 <= byte < 127:
            escaped.append(char)
        else:
            escaped.append(f"\\{byte:03d}")
    return '"' + "".join(escaped) + '"'


class WrkLoad:
    name = "wrk"

    def __init__(self, binary: str, threads: int, work_dir: Path) -> None:
        self.binary = binary
        self.threads = threads
        self.work_dir = work_dir

    def describe(self, connections: int) -> str:
        return f"wrk ({self.binary}) with {self.threads} threads and a Lua script"

    def _script(self, pool: Sequence[Request], expect: int) -> Path:
        rows = []
        for r in pool:
            signature = lua_string(r.headers["X-Signature-Ed25519"].encode())
            timestamp = lua_string(r.headers["X-Signature-Timestamp"].encode())
            rows.append(f"  {{{lua_string(r.body)}, {signature}, {timestamp}}},")
        path = self.work_dir / f"wrk-{expect}.lua"
        expected = lua_string(f'"type":{expect}'.encode())
        text = WRK_SCRIPT % {"pool": "\n".join(rows), "expect": expected}
        path.write_text(text)
        return path

    def _wrk(self, job: Job, script: Path, seconds: float) -> str:
        command_line = [
            self.binary,
            f"--threads={min(self.threads, job.connections)}",
            f"--connections={job.connections}",
            f"--duration={max(1, round(seconds))}s",
            f"--timeout={REQUEST_TIMEOUT_S:.0f}s",
            f"--script={script}",
            f"http://{HOST}:{job.port}/",
        ]
        done = subprocess.run(
            command_line,
            capture_output=True,
            text=True,
            timeout=seconds + REQUEST_TIMEOUT_S + 10,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def run(self, children: Children, job: Job, measure: Measure) -> LoadOutcome:
        script = self._script(job.pool, job.expect)
        if job.warmup > 0:
            self._wrk(job, script, job.warmup)
        # wrk is reaped inside the window, so RUSAGE_CHILDREN grows by exactly its CPU.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        measure.start([])
        output = self._wrk(job, script, job.duration)
        measure.stop([])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        match = re.search(r"^BENCH_JSON (.*)$", output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk printed no summary:\n{output}")
        summary = json.loads(match.group(1))
        # "wrong" counts every non-200 or unexpected answer, so wrk's own status count would
        # count some twice; socket errors never produced an answer at all.
        wrong = int(summary["wrong"])
        return LoadOutcome(
            int(summary["requests"]) - wrong,
            summary["duration_us"] / 1e6,
            int(summary["socket"]) + wrong,
            summary["p50_us"] / 1000,
            summary["p99_us"] / 1000,
            (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        )
