"""DAG Sync: keeps PAN-OS Dynamic Address Groups in step with Illumio Core workload labels.

The package root holds only the tool's identity, which every layer may name: its version (sent
as the PCE client's user agent) and its service name (every logger's `service` key).
"""

__version__ = "0.1.0"
SERVICE = "dagsync"
