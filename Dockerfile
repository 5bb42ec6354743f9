FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY daemon ./daemon
COPY detectors ./detectors
COPY alerts ./alerts
COPY config ./config
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["driftwarden"]
CMD ["run", "-c", "/app/config/driftwarden.yaml"]
