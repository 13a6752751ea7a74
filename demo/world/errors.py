"""The world generator's user-facing error."""

from audotics.errors import AudoticsError


class WorldError(AudoticsError):
    """The world cannot be generated as asked; the message names the setting or place and why."""
