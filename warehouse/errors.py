"""The warehouse's user-facing error."""

from audotics.errors import AudoticsError


class WarehouseError(AudoticsError):
    """A lake table cannot be copied into the warehouse, or dbt failed; the message says which."""
