{#- Monday of the ISO week of a date, as a date (independent of the session time zone). -#}
{% macro week_start(date_expression) -%}
    date_trunc('week', ({{ date_expression }})::timestamp)::date
{%- endmacro %}
