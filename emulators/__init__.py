"""Loopback HTTP emulators of the Illumio PCE and PAN-OS devices, shared by tests, demo and benchmarks."""
