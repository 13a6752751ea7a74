{#- numerator / denominator as double precision; null when the denominator is 0 or null. -#}
{% macro safe_ratio(numerator, denominator) -%}
    (({{ numerator }})::double precision / nullif({{ denominator }}, 0))
{%- endmacro %}
