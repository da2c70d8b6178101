# syntax=docker/dockerfile:1
# The shiptrack image: one distribution, one CLI. docker-compose.yml runs it as
# `shiptrack migrate`, `shiptrack ingest`, `shiptrack api` and `shiptrack simulate`.

# The pages' npm packages (built-in base map, Swagger UI for /docs), exactly as pinned by
# dashboards/package-lock.json; no install script runs. Debian's npm, on the same base
# image as the rest; this stage only hands its node_modules to the next one.
FROM python:3.11-slim AS npm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src/dashboards
COPY dashboards/package.json dashboards/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# .dockerignore keeps the context to the sources (no .venv, .git, tests, data).
COPY . .
# The wheel carries the files the API serves from them (hatch `artifacts` in
# pyproject.toml), so the image's pages have their base layer and /docs.
COPY --from=npm /src/dashboards/node_modules dashboards/node_modules
RUN pip wheel --wheel-dir /wheels -c constraints.txt .

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
