# One image for web, worker and beat; compose picks the command.
# Front-end assets (htmx) come from npm at build time; collectstatic copies them in.
FROM node:20-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=assets /assets/node_modules node_modules
RUN DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    SECRET_KEY=build-only-secret-key-build-only-secret-key DEBUG=false \
    python manage.py collectstatic --noinput
RUN useradd --create-home voltpark
USER voltpark
EXPOSE 8000
CMD ["gunicorn", "voltpark.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
