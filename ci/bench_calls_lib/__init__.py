"""Helpers of ``ci/bench_calls.py`` (the bench section "calls"), split out of
it. A package rather than ``ci/bench_*.py`` files, because ``ci/bench`` runs
every ``ci/bench_*.py`` as a section of its own.

- ``procs``: the section's paths and constants, the child processes and
  their CPU accounting, the servers and clients of each kind, and
  ``Pairing`` (one client kind against one server kind, with its runs);
- ``cells``: per-round ratios between two pairings and the formatting of
  table cells;
- ``report``: the markdown tables and targets (``render``), and the JSON
  that ``ci/bench_chart.py`` reads (``to_json``).

``ci/bench_calls.py`` imports these names back, so ``bench_calls.X`` (as
``ci/bench_proxy.py`` uses it) is what it was.
"""
