FROM python:3.11-slim

# No .pyc files, unbuffered logs, the virtual environment first on PATH, and a writable HOME
# for the numeric user below (it has no passwd entry).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app

# Dependency layer, before the code so a code change rebuilds in seconds: it reruns only when
# requirements.txt changes, and train and serve images share it. Offline or mirrored builds: put
# wheels and a pip.conf (e.g. no-index = true, find-links = /tmp/deps) in docker/wheels/,
# picked up by the glob below.
ARG PIP_CONFIG_FILE=/tmp/deps/pip.conf
COPY ["requirements.txt", "docker/wheel[s]", "/tmp/deps/"]
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir -r /tmp/deps/requirements.txt \
    && pip install --no-cache-dir 'mlspec-gitops[sklearn]==0.1.0' \
    && rm -rf /tmp/deps

# Runtime settings, between the dependency layer and the code so a code change reuses them.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["mlspec", "serve", "model/model.pkl", "--port", "8080", "--host", "0.0.0.0"]
USER 10001:10001

# Code layer: the repository minus .dockerignore, owned by root, read-only to the server.
COPY . .

# Lineage. Values that change with every build are build arguments, set by `mlspec build`, so
# this file stays byte-identical for the same spec; declared last, they never bust the cache.
ARG MLSPEC_REVISION=unknown \
    MLSPEC_SOURCE=unknown \
    MLSPEC_VERSION=unreleased \
    MLSPEC_SPEC_HASH=unknown \
    MLSPEC_METRIC_F1_MACRO=none \
    MLSPEC_METRIC_ACCURACY=none \
    MLSPEC_LOCK_HASH=none
LABEL org.opencontainers.image.title="iris-classifier" \
      org.opencontainers.image.revision="${MLSPEC_REVISION}" \
      org.opencontainers.image.source="${MLSPEC_SOURCE}" \
      org.opencontainers.image.version="${MLSPEC_VERSION}" \
      mlspec.image="serve" \
      mlspec.spec-hash="${MLSPEC_SPEC_HASH}" \
      mlspec.metric.f1_macro="${MLSPEC_METRIC_F1_MACRO}" \
      mlspec.metric.accuracy="${MLSPEC_METRIC_ACCURACY}" \
      mlspec.lock-hash="${MLSPEC_LOCK_HASH}"
# The model version /metrics reports (mlspec_model_info), from the same build argument.
ENV MLSPEC_MODEL_VERSION="${MLSPEC_VERSION}"
