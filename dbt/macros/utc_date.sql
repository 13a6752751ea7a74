{#- The UTC calendar date of a timestamptz, whatever the session time zone is. -#}
{% macro utc_date(timestamp_expression) -%}
    (({{ timestamp_expression }}) at time zone 'UTC')::date
{%- endmacro %}
