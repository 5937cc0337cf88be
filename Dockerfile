# Omniman: the web process (gunicorn). The same image runs the directive
# worker, the maintenance schedule and migrations (see compose.yaml and
# docs/deployment/docker.rst). scripts/deploy_check.py proves these steps
# outside Docker: a fresh venv, `pip install .`, collectstatic, migrate,
# gunicorn with gunicorn.conf.py, /healthz.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    PORT=8000

RUN groupadd --system --gid 10001 omniman \
    && useradd --system --uid 10001 --gid omniman --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin omniman

WORKDIR /app

# The package and its dependencies, from pyproject.toml (not editable).
COPY pyproject.toml README.md ./
COPY omniman ./omniman
RUN pip install --no-cache-dir .

# The project around the package: settings, entry points, templates, static files.
COPY manage.py gunicorn.conf.py ./
COPY config ./config
COPY templates ./templates
COPY static ./static

# Hashed, compressed static files, served by WhiteNoise. Settings need no
# real secret or database for this: the values below exist only in this step.
RUN SECRET_KEY=collectstatic-at-build-time-only DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/build.sqlite3

# The unprivileged user, by number (runAsNonRoot needs it); the code stays owned by root.
USER 10001:10001

EXPOSE 8000

# No curl in the slim image. The probe sends a Host that ALLOWED_HOSTS accepts (its first entry);
# /healthz answers 503 when the database is down or migrations are pending.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = (os.environ.get('ALLOWED_HOSTS') or 'localhost').split(',')[0].strip().lstrip('*.') or 'localhost'; u.urlopen(u.Request('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), headers={'Host': h}), timeout=4)"]

CMD ["gunicorn", "config.wsgi", "-c", "gunicorn.conf.py"]
