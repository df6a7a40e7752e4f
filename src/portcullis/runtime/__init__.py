"""Runtime truth: what a container can reach (inside), whether its limits hold (prove), overhead."""
