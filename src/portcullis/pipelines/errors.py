"""The typed errors a flow raises instead of exiting: each message is one line, printed as it is by the CLI."""

from __future__ import annotations


class PipelineError(Exception):
    """A flow could not produce its result; the message is one line meant for the user."""


class SubjectError(PipelineError):
    """The subject (an image, a file, a container) could not be found or read."""


class VulnerabilityInputError(PipelineError):
    """The vulnerability database, an ignore file or a VEX document cannot be used."""


class UsageError(PipelineError):
    """The arguments cannot work as given: they conflict, or they need something this host does not offer."""


class OutputError(PipelineError):
    """A result could not be written where the arguments asked (a missing directory, no permission)."""


class ExperimentsInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped an experiment flow after it reached the engine; every container it started is gone.

    Still a KeyboardInterrupt, so callers that do not know it stop as before; the CLI prints its own line.
    """


class HistoryError(PipelineError):
    """The result store cannot be used, or a run or baseline named is not there or cannot be read."""
