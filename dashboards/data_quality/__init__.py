"""Data quality dashboard: its page and the SQL of its charts."""
