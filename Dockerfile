# One image for web, worker and beat; compose picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    SECRET_KEY=build-only-secret-key-build-only-secret-key DEBUG=false \
    python manage.py collectstatic --noinput
RUN useradd --create-home voltpark
USER voltpark
EXPOSE 8000
CMD ["gunicorn", "voltpark.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
