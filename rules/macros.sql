{#- Macros every rule template and shared view may call: `{{ month('fee_ocur_time') }}`, `{{ param('key') }}`.
    Loaded by pipelines/screen/sql.py. Each expands to Spark SQL that sqlglot carries to DuckDB unchanged in
    meaning (tests/screen/test_sql.py runs them on DuckDB).

    num(x)          an amount as text with two decimals: '12.50'
    ymd(x)          a date or timestamp as 'yyyy-MM-dd'
    ymdhm(x)        a timestamp as 'yyyy-MM-dd HH:mm'
    month(x)        the period of a date or timestamp: 'yyyy-MM'
    param(key)      kb_param's value of `key` as DECIMAL(16,6); absent, the shipped knowledge base's value
                    (rules/kb/kb_param.csv, `kb_defaults`: the contract's defaults and the project's own), else NULL
    param_text(key) kb_param's value of `key` as text; absent, the shipped value, else NULL
    qty(x)          a quantity as text without trailing zeros: 2, 0.5, 12.8
    sn_key(x)       a sort key ordering digit strings numerically ('2' < '007' < '10'), ties by the text
    age_at(brdy, d) completed years at date d of a person born on brdy
    in_force(k, d)  the knowledge-base row k is in force on date d (its release's kb_valid_from ≤ d <
                    kb_valid_to; rows without dates, e.g. the sample kb, always are)
-#}
{%- macro num(x) -%}CAST(CAST({{ x }} AS DECIMAL(18,2)) AS STRING){%- endmacro -%}
{%- macro ymd(x) -%}date_format({{ x }}, 'yyyy-MM-dd'){%- endmacro -%}
{%- macro ymdhm(x) -%}date_format({{ x }}, 'yyyy-MM-dd HH:mm'){%- endmacro -%}
{%- macro month(x) -%}date_format({{ x }}, 'yyyy-MM'){%- endmacro -%}
{%- macro param(key) -%}{% if key in kb_defaults %}coalesce({% endif %}(SELECT CAST(max(value) AS DECIMAL(16,6)) FROM kb_param WHERE key = '{{ key }}'){% if key in kb_defaults %}, CAST({{ kb_defaults[key] }} AS DECIMAL(16,6))){% endif %}{%- endmacro -%}
{%- macro param_text(key) -%}{% if key in kb_defaults %}coalesce({% endif %}(SELECT max(value) FROM kb_param WHERE key = '{{ key }}'){% if key in kb_defaults %}, {{ kb_defaults[key] }}){% endif %}{%- endmacro -%}
{%- macro qty(x) -%}CASE WHEN CAST(CAST({{ x }} AS DECIMAL(20,4)) AS STRING) LIKE '%.%' THEN TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST(CAST({{ x }} AS DECIMAL(20,4)) AS STRING))) ELSE CAST(CAST({{ x }} AS DECIMAL(20,4)) AS STRING) END{%- endmacro -%}
{%- macro sn_key(x) -%}concat(lpad(CAST(length(regexp_replace({{ x }}, '^0+', '')) AS STRING), 6, '0'), regexp_replace({{ x }}, '^0+', ''), '|', {{ x }}){%- endmacro -%}
{%- macro age_at(brdy, d) -%}(year({{ d }}) - year({{ brdy }}) - CASE WHEN month({{ d }}) * 100 + day({{ d }}) < month({{ brdy }}) * 100 + day({{ brdy }}) THEN 1 ELSE 0 END){%- endmacro -%}
{%- macro in_force(k, d) -%}(({{ k }}.kb_valid_from IS NULL OR {{ d }} >= {{ k }}.kb_valid_from) AND ({{ k }}.kb_valid_to IS NULL OR {{ d }} < {{ k }}.kb_valid_to)){%- endmacro -%}
