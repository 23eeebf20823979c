# QSuite: the whole platform in one image. `docker compose up` runs it against PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    QSUITE_CONFIG_DIR=/opt/qsuite/config \
    QSUITE__APP__DATA_DIR=/var/lib/qsuite \
    QSUITE__UI__HOST=0.0.0.0 \
    QSUITE__METRICS__HOST=0.0.0.0

WORKDIR /opt/qsuite
COPY pyproject.toml README.md ./
COPY app ./app
COPY engine ./engine
COPY feeds ./feeds
COPY ui ./ui
COPY config ./config
RUN pip install . \
 && useradd --system --create-home --home-dir /home/qsuite qsuite \
 && mkdir -p /var/lib/qsuite \
 && chown qsuite /var/lib/qsuite

USER qsuite
VOLUME ["/var/lib/qsuite"]
EXPOSE 8080

# `qsuite health` exits 0 while every process is up or degraded, 1 when one is down.
HEALTHCHECK --interval=15s --timeout=10s --start-period=40s --retries=3 CMD ["qsuite", "health"]

CMD ["qsuite", "run"]
