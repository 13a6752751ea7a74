{#- The standard error of a relative lift t/c - 1 between two means (each with its sample
    variance and count), by the delta method: sqrt(var_t / (n_t c^2) + t^2 var_c / (n_c c^4));
    null when the control's mean is 0. -#}
{% macro lift_standard_error(mean, variance, count, control_mean, control_variance, control_count) -%}
    sqrt(
        {{ variance }} / ({{ count }} * nullif({{ control_mean }}, 0) ^ 2)
        + {{ mean }} ^ 2 * {{ control_variance }}
        / ({{ control_count }} * nullif({{ control_mean }}, 0) ^ 4)
    )
{%- endmacro %}
