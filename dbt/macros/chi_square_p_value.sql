{#- The upper tail P(X >= statistic) of a chi-square distribution with `df` degrees of freedom,
    in closed form for whole df from 1 to max_df (an experiment's arms - 1); null beyond.
    Even df: exp(-x/2) * sum_{j < df/2} (x/2)^j / j!.
    Odd df: erfc(sqrt(x/2)) + sqrt(2x/pi) * exp(-x/2) * sum_{j < (df-1)/2} x^j / (3*5*...*(2j+1)).
    (PostgreSQL 16+ has erfc.) -#}
{% macro chi_square_p_value(statistic, df, max_df=9) -%}
    case {{ df }}
    {%- for k in range(1, max_df + 1) %}
        when {{ k }} then
        {%- if k % 2 == 0 %}
            exp(-({{ statistic }}) / 2.0) * (
            {%- for j in range(k // 2) %}
                {{ '+ ' if not loop.first }}power(({{ statistic }}) / 2.0, {{ j }}) / {{ factorial(j) }}
            {%- endfor %})
        {%- else %}
            erfc(sqrt(({{ statistic }}) / 2.0))
            {%- for j in range((k - 1) // 2) %}
                + sqrt(2.0 * ({{ statistic }}) / pi()) * exp(-({{ statistic }}) / 2.0)
                  * power({{ statistic }}, {{ j }}) / {{ double_factorial(2 * j + 1) }}
            {%- endfor %}
        {%- endif %}
    {%- endfor %}
    end
{%- endmacro %}

{% macro factorial(n) -%}
    {%- set ns = namespace(value=1) -%}
    {%- for i in range(2, n + 1) %}{% set ns.value = ns.value * i %}{% endfor -%}
    {{ ns.value }}
{%- endmacro %}

{% macro double_factorial(n) -%}
    {%- set ns = namespace(value=1) -%}
    {%- for i in range(n, 1, -2) %}{% set ns.value = ns.value * i %}{% endfor -%}
    {{ ns.value }}
{%- endmacro %}
