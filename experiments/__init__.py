"""A/B experiments between published model versions: their definition, user assignment and
the `audotics experiment` commands. Serving applies the assignment (serving/README.md)."""
