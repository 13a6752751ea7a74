"""Experiments dashboard: its page and the SQL of its charts."""
