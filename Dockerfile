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
ENTRYPOINT ["driftwarden"]
CMD ["run", "-c", "/app/config/compose.yaml"]
