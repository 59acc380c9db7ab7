# One image for both long-running modelmon services:
#   modelmon sidecar   (default command; models POST events, Prometheus scrapes /metrics)
#   modelmon drift     (docker run ... drift --scrape http://model:10380/metrics)
#
# Build:  docker build -t modelmon:0.1.0 .
# Run:    docker run -p 10380:10380 -v "$PWD/etc:/etc/modelmon:ro" modelmon:0.1.0

# --- build: the modelmon wheel (no dependencies; the final stage resolves them) ------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the wheel is built from (pyproject.toml names README.md as the readme).
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- final: the wheel and its dependencies on a clean slim image ------------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="modelmon" \
      org.opencontainers.image.description="Prometheus-native monitoring for machine-learning models: HTTP sidecar (modelmon sidecar) and drift exporter (modelmon drift)." \
      org.opencontainers.image.source="https://github.com/modelmon/modelmon" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_STATE_HOME=/var/lib \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY --from=build /wheels /tmp/wheels
# With the redis extra, so --join-store redis://... works in the image too.
RUN pip install "$(ls /tmp/wheels/*.whl)[redis]" \
    && rm -rf /tmp/wheels

# A system user without a login shell or home; numeric USER so that Kubernetes
# runAsNonRoot can check it. /etc/modelmon is where the config and baselines are mounted;
# /var/lib/modelmon (owned by that user; XDG_STATE_HOME=/var/lib below) holds the sidecar's
# label join store, sqlite:/var/lib/modelmon/join.sqlite by default: mount a volume there
# to keep it across container restarts.
RUN groupadd --system --gid 10001 modelmon \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin modelmon \
    && mkdir -p /etc/modelmon /var/lib/modelmon \
    && chown 10001:10001 /var/lib/modelmon

WORKDIR /var/lib/modelmon
USER 10001:10001

# 10380: modelmon sidecar (POST /v1/models/{model}/events, /metrics)
# 10381: modelmon drift   (/metrics with the drift scores)
EXPOSE 10380 10381

# Liveness of whichever service runs: set MODELMON_HEALTH_PORT=10381 for `drift`.
# Plain HTTP: with TLS in --web.config.file, use the orchestrator's HTTPS probes instead.
# /-/healthy never needs basic auth. Python's urllib, since the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:${MODELMON_HEALTH_PORT:-10380}/-/healthy', timeout=4).status == 200 else 1)" || exit 1

ENTRYPOINT ["modelmon"]
CMD ["sidecar", "--config", "/etc/modelmon/modelmon.yaml"]
