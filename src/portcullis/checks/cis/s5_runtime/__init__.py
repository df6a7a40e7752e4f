"""CIS section 5: container runtime, one module per theme.

Every container-scoped check covers stopped and created containers too (their HostConfig is what
they will run with); only checks about live state (processes, health, exec sessions) answer
not_applicable for a container that is not running.
"""
