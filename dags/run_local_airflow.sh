#!/usr/bin/env bash
# Local Airflow for FundGuard (`make airflow`): `airflow standalone` on SQLite, this repo's dags/.
#
#   AIRFLOW_HOME   outside the repository: $FUNDGUARD_AIRFLOW_HOME, else ~/.local/state/fundguard/airflow
#                  (delete it to start over)
#   UI             http://127.0.0.1:8080, this machine only (AIRFLOW_PORT to change the port)
#   login          user `admin`; the password is printed at start-up and kept in
#                  $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
#   pool           fundguard_lake (1 slot): ingest, screening and maintenance never run at once
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO}"
if [[ -x "${REPO}/.venv/bin/airflow" ]]; then
  export PATH="${REPO}/.venv/bin:${PATH}"
fi
command -v airflow >/dev/null || { echo "airflow not found: run 'make install' first" >&2; exit 2; }

export AIRFLOW_HOME="${FUNDGUARD_AIRFLOW_HOME:-${XDG_STATE_HOME:-${HOME}/.local/state}/fundguard/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${REPO}/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW__API__HOST=127.0.0.1
export FUNDGUARD_ENV="${FUNDGUARD_ENV:-dev}"
mkdir -p "${AIRFLOW_HOME}"

cat <<MSG
FundGuard Airflow (standalone, SQLite)
  AIRFLOW_HOME  ${AIRFLOW_HOME}
  DAGs          ${AIRFLOW__CORE__DAGS_FOLDER}  (fundguard_ingest, fundguard_screen, fundguard_maintenance)
  FUNDGUARD_ENV ${FUNDGUARD_ENV}
  UI            http://127.0.0.1:${AIRFLOW__API__PORT}  (this machine only)
  Log in as     admin  — the password is printed below once the API server is up, and kept in
                ${AIRFLOW_HOME}/simple_auth_manager_passwords.json.generated
  Load a drop   trigger fundguard_ingest with {"landing": "${REPO}/data/landing", "lake": "${REPO}/data/lake"}
                (fundguard_screen then runs on the new silver data); Ctrl-C stops everything.
MSG
airflow db migrate >/dev/null
airflow pools set fundguard_lake 1 "one FundGuard writer per lake: ingest, screening, maintenance" >/dev/null
exec airflow standalone
