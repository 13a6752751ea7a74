"""Great Expectations suites as code, one per table and stage, and the runner that turns their
results into quarantine reasons and gates (see validation.py)."""
