"""Helpers shared by the test packages: a fake clock, emulator servers and clients, snapshot table probes."""
