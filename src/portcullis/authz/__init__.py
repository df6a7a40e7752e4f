"""`portcullis authz`: a Docker authorization plugin that judges container requests with the audit's rules."""


class AuthzError(Exception):
    """The plugin cannot start or cannot load its policy: one line for the user."""
