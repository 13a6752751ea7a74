"""Dashboards on the dbt marts: a Streamlit app whose pages live in one folder per dashboard,
each chart's SQL beside the page that draws it. Start with `audotics dashboards`."""
