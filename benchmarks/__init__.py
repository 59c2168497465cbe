"""Strom's throughput benchmarks: the peers' workloads W1-W3 on Strom vs a bare Python loop.

Run ``python -m benchmarks`` from the repository root (``--help`` for options). Each
measurement runs in a fresh subprocess (:mod:`benchmarks._child`), so peak RSS is per
measurement; the input list is built before the timer starts, as the peer scripts in
``../shared/bench/peers`` do, and every Strom sink digest is checked against the bare
loop's. Results go to ``benchmarks/results/latest.json``; see ``BENCHMARKS.md``.
"""
