"""Scale benchmark: the real Lambda handler against emulated PCE, PAN-OS and DynamoDB.

`python -m bench` (or `make bench`) runs every case and writes bench/results.md. Each measured
run is a fresh child process (one cold Lambda invocation), so its peak RSS is its own; the
emulators and the DynamoDB server live in a separate "world" process that keeps their state
between cases and meters what each case asked of them.
"""
