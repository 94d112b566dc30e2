"""The fault battery (docs/reliability.md): one module per row of the table, faults on loopback only.

A small scale by default, so it fits the normal test run; `NOTIFYGW_FAULTS_FULL=1` (make test-faults)
runs the issue's counts.
"""
