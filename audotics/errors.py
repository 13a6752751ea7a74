"""User-facing errors: the CLI prints their message (which names the thing and the reason) and
exits 1 instead of showing a traceback."""


class AudoticsError(RuntimeError):
    """Base of every error a user can act on."""
