"""DAG Sync: keeps PAN-OS Dynamic Address Groups in step with Illumio Core workload labels."""

__version__ = "0.1.0"
