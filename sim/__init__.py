"""A deterministic simulation of DAG Sync over simulated weeks (docs/simulation.md).

The real handler runs every simulated minute against the PCE and PAN-OS emulators and moto, on
one simulated clock; a seeded world changes the estate and a seeded fault schedule breaks what
can break, and named invariants are checked after every run.
"""
