# One image for both processes: `chatflow web` (default command) and `chatflow worker`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CHATFLOW_CONFIG=/app/chatflow.toml

WORKDIR /app
RUN useradd --create-home --uid 10001 chatflow

# The same package a developer installs, without the dev extra.
COPY pyproject.toml README.md ./
COPY chatflow ./chatflow
COPY providers ./providers
COPY conversations ./conversations
RUN pip install .

# Numbers bound to flows; mount your own over it (see docker-compose.yml).
COPY chatflow.toml ./

USER chatflow
EXPOSE 8000
# No HEALTHCHECK here: web and worker run from this image and answer on different ports;
# docker-compose.yml (or your orchestrator) checks each.
CMD ["chatflow", "web", "--host", "0.0.0.0", "--port", "8000", "--log-json"]
