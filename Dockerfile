# One image for web, worker and beat; compose picks the command.
# Front-end assets (htmx) come from npm at build time; collectstatic copies them in.
FROM node:20-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=8000 VOLTPARK_DATA_DIR=/var/lib/voltpark
WORKDIR /app
# Production packages only: no test tools, no embedded database servers.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=assets /assets/node_modules node_modules
# DEBUG off: the manifest storage writes compressed, content-hashed copies and their manifest.
RUN DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    SECRET_KEY=build-only-Qm4tZ8vR2kLp7Wn5Xc3Hs9Jd6Fb1Ga0Ye-not-a-real-secret AGENT_TOKEN_KEYS=YnVpbGQtb25seS1ub3QtYS1yZWFsLWFnZW50LWtleSE= DEBUG=false \
    python manage.py collectstatic --noinput
# The code stays root-owned (read-only to the app); what the processes write (beat's schedule)
# goes to the data folder, owned by the user they run as.
RUN useradd --create-home voltpark \
    && install -d -o voltpark -g voltpark "$VOLTPARK_DATA_DIR"
USER voltpark
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=4)"
CMD ["gunicorn", "--config", "gunicorn.conf.py", "voltpark.wsgi:application"]
