"""`make demo`: DAG Sync end to end against the bundled emulators and moto."""
