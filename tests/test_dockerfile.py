"""The Dockerfile, checked statically (no Docker engine here): base, Java 17, pinned install, Delta jars
from the mirror, the files the image needs, the entry point."""
from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def args_of(kind: str) -> list[str]:
    return [a for k, a in instructions() if k == kind]


def run_text() -> str:
    return "\n".join(args_of("RUN"))


def build_args() -> dict[str, str]:
    out = {}
    for a in args_of("ARG"):
        name, _, default = a.partition("=")
        out[name] = default
    return out


def test_debian_python_base():
    froms = args_of("FROM")
    assert len(froms) == 1, "one image"
    assert re.fullmatch(r"python:3\.1[12]-slim-(bookworm|trixie)", froms[0]), froms[0]


def test_java_17_from_debian():
    assert re.search(r"apt-get install [^\n]*openjdk-17-jre-headless", run_text())
    assert any("JAVA_HOME=" in a for a in args_of("ENV"))


def test_pinned_install_with_constraints_and_extras():
    assert "pip install -c requirements/constraints.txt -e '.[spark,airflow,serve]'" in run_text()
    copied = " ".join(args_of("COPY"))
    for needed in ("setup.cfg", "requirements/", "pipelines/"):
        assert needed in copied
    # the sources an editable install needs are copied before it runs
    order = [(k, a) for k, a in instructions() if k in ("COPY", "RUN")]
    pip_at = next(i for i, (k, a) in enumerate(order) if k == "RUN" and "pip install -c" in a)
    assert any(k == "COPY" and a.startswith("pipelines/") for k, a in order[:pip_at])


def test_delta_jars_fetched_from_the_mirror_into_pyspark_jars():
    args = build_args()
    assert args.get("MAVEN_MIRROR") == "https://repo1.maven.org/maven2"
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    pin = re.search(r"delta-spark==([\d.]+)", cfg["options.extras_require"]["spark"]).group(1)
    assert args.get("DELTA_VERSION") == pin, "jars must match the delta-spark pip pin"
    assert pin.startswith("4.")
    constraints = (REPO / "requirements" / "constraints.txt").read_text()
    assert re.search(rf"^delta[-_]spark=={re.escape(pin)}$", constraints, re.M)
    assert args.get("SCALA_BINARY") == "2.13"
    run = run_text()
    assert "${MAVEN_MIRROR}/io/delta/${artifact}/${DELTA_VERSION}/${jar}" in run
    assert '"delta-spark_${SCALA_BINARY}" delta-storage' in run
    assert "sha1sum -c" in run, "downloaded jars are verified"
    assert "pyspark.__file__" in run and '"jars"' in run
    assert "delta_jars_available" in run, "the build proves the engine sees the jars"
    # the jar name the build produces is what delta_jars_available() globs for
    assert re.fullmatch(r"delta-spark_.*\.jar", f"delta-spark_{args['SCALA_BINARY']}-{pin}.jar")


@pytest.mark.parametrize("src", ["dags/", "rules/", "conf/"])
def test_copies_dags_rules_and_conf(src):
    assert any(a.split()[0] == src for a in args_of("COPY"))


def test_airflow_environment_and_entrypoint():
    env = " ".join(args_of("ENV"))
    assert "AIRFLOW__CORE__DAGS_FOLDER=/opt/fundguard/dags" in env
    assert "AIRFLOW__CORE__LOAD_EXAMPLES=False" in env
    entry = args_of("ENTRYPOINT")
    assert len(entry) == 1 and shlex.split(entry[0].strip("[]").replace(",", " ")) == ["fundguard"]
    assert args_of("USER") and args_of("USER")[-1] != "root"


def test_dockerignore_keeps_secrets_and_local_state_out():
    ignored = {l.strip() for l in (REPO / ".dockerignore").read_text().splitlines()
               if l.strip() and not l.startswith("#")}
    for entry in ("conf/local", ".venv", ".git", "data", "airflow_home"):
        assert entry in ignored
    for needed in ("conf", "rules", "dags", "pipelines", "requirements"):
        assert needed not in ignored


def test_the_git_commit_is_passed_in_at_build_time():
    assert any(a.startswith("GIT_COMMIT=") for a in args_of("ARG"))
    assert any("FUNDGUARD_GIT_COMMIT=${GIT_COMMIT}" in a for a in args_of("ENV"))
    assert "--build-arg GIT_COMMIT=" in DOCKERFILE.read_text(encoding="utf-8")   # the build command says how
