# syntax=docker/dockerfile:1
# The shiptrack image: one distribution, one CLI. docker-compose.yml runs it as
# `shiptrack migrate`, `shiptrack ingest`, `shiptrack api` and `shiptrack simulate`.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# .dockerignore keeps the context to the sources (no .venv, .git, tests, data).
COPY . .
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# LightGBM (the ETA's learned correction) needs the OpenMP runtime.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels shiptrack \
 && useradd --system --create-home --home-dir /home/shiptrack --uid 10001 shiptrack
USER shiptrack
WORKDIR /home/shiptrack
# API (SHIPTRACK_HTTP_PORT) and ingest metrics (SHIPTRACK_METRICS_PORT).
EXPOSE 8000 9108
ENTRYPOINT ["shiptrack"]
CMD ["--help"]
