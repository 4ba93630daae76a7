# The one image every service runs from (`liandong run <service>`). Not built on the project's
# build machines (no container engine there); CI tests the same code without it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY services ./services
COPY proto ./proto
COPY deploy/registry ./deploy/registry
COPY deploy/dispatch ./deploy/dispatch
RUN pip install --no-cache-dir . && useradd --uid 10001 --create-home liandong \
    && mkdir -p /var/lib/liandong && chown liandong /var/lib/liandong
USER 10001
ENTRYPOINT ["liandong"]
