"""Publishing's user-facing error."""

from audotics.errors import AudoticsError


class PublishError(AudoticsError):
    """Publishing or rolling back was refused; the message says what is missing or wrong."""
