"""Benchmarks of facteur on loopback; run each entry script from the repository root as
`python -m bench.<script>`.

Entry scripts: bench_verify (verify beside an empty function), bench_peers (verify beside the
empty function and two other interactions endpoints, against the performance targets),
slow_clients (slow clients and a slow K_SINK), bench_chain (sequential chain latency),
load_chain (a burst of commands), fault_chain (the chain under faults).

Shared modules: processes (the servers under test and how facteur is served, children started
and stopped, signals), peer_servers (bench_peers' peers, installed into bench/.peers/ on first
use), fakes (Argo, Discord and K_SINK stand-ins), broker (the Knative Broker stand-in), chain
(the three functions chained), interactions (signed requests), load and wrk (load generators),
cpu (/proc accounting), cold_start and warm (the two measurements of bench_verify and
bench_peers), report (machine facts, percentiles, bench/results/).
"""
