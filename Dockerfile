FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY daemon ./daemon
COPY detectors ./detectors
COPY alerts ./alerts
COPY config ./config
RUN pip install --no-cache-dir . \
    && useradd --uid 10001 --no-create-home driftwarden \
    && mkdir -p /data && chown driftwarden /data
# /data: state (SQLite checkpoint and outbox), reports, references; a named volume keeps this owner
VOLUME /data
USER driftwarden
EXPOSE 9108
# Docker's health state (docker ps, compose): the daemon's /healthz on this image's port 9108 is
# 200, else exit 1 (503: Kafka unreachable or the loop stalled; refused: still starting, which
# --start-period forgives). urllib, as curl is not in python:slim; not `driftwarden health`,
# which gives the same verdict but imports the whole daemon each time (~250 MB, ~5 s).
# A config with another http.port needs its own check (compose `healthcheck:` or --health-cmd).
HEALTHCHECK --interval=30s --timeout=10s --start-period=5m --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=8)"]
ENTRYPOINT ["driftwarden"]
CMD ["run", "-c", "/app/config/compose.yaml"]
