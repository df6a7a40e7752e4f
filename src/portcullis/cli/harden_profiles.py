"""`portcullis harden seccomp` and `portcullis harden apparmor` (added to the `harden` group of cli/harden.py)."""
