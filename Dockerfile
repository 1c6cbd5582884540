# FundGuard: one image for the embedded engine, the Spark driver/submitter and Airflow.
#
#   docker build --build-arg GIT_COMMIT="$(git rev-parse HEAD)" -t fundguard .
#                                                     (add --build-arg MAVEN_MIRROR=... behind a firewall)
#   docker run --rm -v "$PWD/data:/data" fundguard run --landing /data/landing --lake /data/lake
#
# See docs/deploy.md for Spark and Airflow.
FROM python:3.11-slim-bookworm

# Where the Delta Lake jars come from (any Maven 2 layout mirror: Nexus, Artifactory, Aliyun...).
ARG MAVEN_MIRROR=https://repo1.maven.org/maven2
# Must match the delta-spark pin of setup.cfg / requirements/constraints.txt (a test checks it).
ARG DELTA_VERSION=4.4.1
ARG SCALA_BINARY=2.13

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8

# Java 17 for Spark (Debian's headless JRE), procps for Spark's scripts, CJK fonts for the export charts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps curl ca-certificates fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-17
ENV JAVA_HOME=/usr/lib/jvm/java-17

WORKDIR /opt/fundguard

# The pinned Python dependencies (pyspark and pyspark-client pinned together, see stack notes).
COPY setup.cfg pyproject.toml README.md ./
COPY requirements/ requirements/
COPY pipelines/ pipelines/
RUN pip install --upgrade "pip>=24" wheel \
 && pip install -c requirements/constraints.txt -e '.[spark,airflow,serve]'

# delta-spark's jars into pyspark's own jars folder, verified against the mirror's SHA-1, so that
# pipelines.screen.engines.delta_jars_available() finds them and Spark reads/writes Delta natively.
RUN set -eu; \
    JARS="$(python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"; \
    for artifact in "delta-spark_${SCALA_BINARY}" delta-storage; do \
      jar="${artifact}-${DELTA_VERSION}.jar"; \
      url="${MAVEN_MIRROR}/io/delta/${artifact}/${DELTA_VERSION}/${jar}"; \
      curl -fsSL --retry 3 "${url}" -o "${JARS}/${jar}"; \
      echo "$(curl -fsSL --retry 3 "${url}.sha1" | cut -c1-40)  ${JARS}/${jar}" | sha1sum -c -; \
    done; \
    python -c 'from pipelines.screen.engines import delta_jars_available as ok; assert ok(), "delta jars not found"'

# The rules, the configuration layers (conf/local stays out: .dockerignore) and the DAGs.
# FUNDGUARD_ENV=dev by default; a cluster runs the image with -e FUNDGUARD_ENV=prod (docs/deploy.md).
COPY conf/ conf/
COPY rules/ rules/
COPY dags/ dags/

# The commit the image was built from (the image has no .git): MLflow runs and published rows record it.
ARG GIT_COMMIT=unknown
ENV FUNDGUARD_ENV=dev \
    FUNDGUARD_GIT_COMMIT=${GIT_COMMIT} \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/fundguard/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

RUN useradd --create-home --uid 1000 fundguard \
 && mkdir -p /opt/airflow /data \
 && chown -R fundguard:fundguard /opt/airflow /data
USER fundguard
VOLUME ["/data"]
# `fundguard serve` (claim-time check) listens here when started with --host 0.0.0.0 --port 8000
EXPOSE 8000

ENTRYPOINT ["fundguard"]
CMD ["--help"]
