"""Benchmarks of facteur on loopback; run each entry script from the repository root as
`python -m bench.<script>`.

Entry scripts: bench_verify (verify beside an empty function), bench_chain (sequential chain
latency), load_chain (a burst of commands), fault_chain (the chain under faults).

Shared modules: processes (children started and stopped, signals), fakes (Argo, Discord and
K_SINK stand-ins), broker (the Knative Broker stand-in), chain (the three functions chained),
interactions (signed requests), load and wrk (load generators), cpu (/proc accounting),
cold_start and warm (bench_verify's two measurements), report (machine facts, percentiles,
bench/results/).
"""
