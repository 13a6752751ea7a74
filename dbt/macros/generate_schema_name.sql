{#- Models go to the schema their folder configures (staging, intermediate, marts), verbatim:
    the warehouse has one set of schemas, not one per developer target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
