"""Serving: publish model versions from the lake into Redis, and the read API over Redis."""
