"""Audotics core: settings, lake access, service bootstrap and the CLI shared by every stage."""

__version__ = "0.1.0"
