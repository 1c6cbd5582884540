"""Application steps: what the commands and the Airflow DAGs both call, composing the stages.

- `load`: a landing drop into bronze/silver (+ the knowledge base) — `load_drop`
- `screening`: rules → staging, and screen → gate → publish in one MLflow run — `screen_to_staging`,
  `screen_gate_publish`
- `publication`: gate a suspect list and publish it when it passes — `gate_and_publish`, `gate_staging`
- `exports`: one audit package per (institution, period) — `export_packages`, `export_period`
- `reproduce`: re-screen a published run from its recorded inputs
- `maintenance`: Delta optimize/vacuum with a retention that keeps what `reproduce` needs
- `orchestration`: what the DAG files need at parse time (assets, periods, Spark submit settings,
  failure callback); light: standard library, config and contract only
"""
