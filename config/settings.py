"""Omniman settings: the one settings module, driven by the environment.

Every value below can be set through an environment variable of the same
name; the defaults give a working local setup on SQLite (``db.sqlite3``).
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.utils.translation import gettext_lazy

from omniman.conf import DEFAULTS as OMNIMAN_DEFAULTS

BASE_DIR = Path(__file__).resolve().parent.parent

TRUTHY = {"1", "true", "yes", "on"}


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in TRUTHY


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated environment variable as a list (empty items dropped)."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

# The development default: with DEBUG off the process refuses to start with it
# (omniman.checks, omniman.E003), as with any key shorter than 50 characters.
DEV_SECRET_KEY = "django-insecure-omniman-dev-key"
SECRET_KEY = os.environ.get("SECRET_KEY") or DEV_SECRET_KEY

# Development serves localhost; production names its hosts (empty refuses to start, omniman.E005).
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# -- HTTPS and security headers (docs/deployment/production.rst) --------------------
# On by default with DEBUG off; each one can be turned off by its variable.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# A load balancer probes /healthz over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # htmx sends the token from the page (hx-headers), never from the cookie
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# Preloading is a promise to the browsers' list that only the domain's owner can
# make: off unless asked for, and Django's reminder about it (W021) silenced.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """``X-Forwarded-Proto`` (or ``X-Forwarded-Proto,https``) as Django's ``SECURE_PROXY_SSL_HEADER``."""
    if not value.strip():
        return None
    header, _, expected = value.partition(",")
    name = header.strip().upper().replace("-", "_")
    if not name.startswith("HTTP_"):
        name = f"HTTP_{name}"
    return (name, expected.strip() or "https")


# Only behind a proxy that terminates TLS and always sets (or strips) this header.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(os.environ.get("SECURE_PROXY_SSL_HEADER", ""))

# Content-Security-Policy (omniman.web.csp): the same name and shape as Django
# 6's setting. Every page of the operator app runs on static files only.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "object-src": ["'none'"],
}
# The unfold admin needs more, under /admin/ only: Alpine.js evaluates its
# x-data attributes (unsafe-eval) and unfold writes inline styles.
SECURE_CSP_PATHS = {
    "/admin/": {
        "script-src": ["'self'", "'unsafe-eval'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
    },
}
SECURE_CSP_REPORT_ONLY = env_bool("SECURE_CSP_REPORT_ONLY")

INSTALLED_APPS = [
    # omniman ships the manager review's admin/index.html and admin/login.html and the
    # API docs page (drf_spectacular/swagger_ui.html): its templates must win over
    # unfold's and drf-spectacular's, so it comes first.
    "omniman",
    # django-unfold (the manager review) must come before the admin; its basic config leaves
    # the default site to ManagerAdminConfig (omniman.admin.site.ManagerAdminSite).
    "unfold.apps.BasicAppConfig",
    "unfold.contrib.filters",
    "omniman.apps.ManagerAdminConfig",  # the admin, whose site lets managers only in
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # WhiteNoise serves the static files under runserver too, as in production.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "omniman.contrib.catalog",
    "omniman.contrib.pricing",
    "omniman.contrib.stock",
    "omniman.contrib.payment",
    "omniman.contrib.notifications",
    "omniman.contrib.refs",
    "omniman.contrib.printing",
    "omniman.contrib.demo",
    "omniman.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "omniman.web.csp.ContentSecurityPolicyMiddleware",
    "omniman.web.clean_input.CleanInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the user's choice (session/cookie, set at login from their
    # preference), else the browser's Accept-Language, else LANGUAGE_CODE.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "omniman.web.language.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so its process_exception is asked first: a database outage answers 503, not 500.
    "omniman.web.outage.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": [
                "template_partials.templatetags.partials",
                # {% translate %} and {% blocktranslate %} in every template and partial, no {% load i18n %} needed.
                "django.templatetags.i18n",
                "omniman.web.templatetags.omniman_ui",
            ],
        },
    },
]

# The manager review: the admin, styled by django-unfold (see docs/operator/manager.rst).
UNFOLD = {
    "SITE_TITLE": "Omniman",
    "SITE_HEADER": "Omniman",
    "SITE_SUBHEADER": gettext_lazy("Manager review"),
    "SITE_SYMBOL": "hub",
    "SITE_URL": "/",
    "DASHBOARD_CALLBACK": "omniman.admin.dashboard.dashboard_callback",
    # Behaviour of our own admin templates (confirmations): no inline handlers under the CSP.
    "SCRIPTS": [lambda request: static("js/admin.js")],
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": "omniman.admin.site.sidebar_navigation",
    },
}

# The REST API (omniman.api; docs/api/rest-api.rst): token or login-session auth,
# JSON only, one error format, every list paginated.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous request answers 401 with "WWW-Authenticate: Token".
        "omniman.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["omniman.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's, with a shortcut for no Accept, */* or application/json (omniman/api/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "omniman.api.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "omniman.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "omniman.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Omniman API",
    "DESCRIPTION": "The headless face of the order hub: channels, sessions, orders, external orders. "
    'Errors answer {"error": {"code", "message", "context"}}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from this server (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A channel code in a path is a slug: say so, so clients (and the fuzzer) know what the URL accepts.
    "PATH_CONVERTER_OVERRIDES": {"slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "omniman.api.schema.postprocess",
    ],
}

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# Database: DATABASE_URL (dj-database-url syntax); SQLite file by default.
# Persistent connections in production (CONN_MAX_AGE seconds, 60 with DEBUG off):
# a new PostgreSQL connection per request costs a backend process and its cold
# caches (docs/deployment/performance.rst, "The REST API"). 0 closes each one
# at the end of its request (the development default).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("CONN_MAX_AGE", 0 if DEBUG else 60),
        # With persistent connections: check one before reusing it, so a database restart
        # costs no request an error once the database is back.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers take the lock at BEGIN (no "database is locked" upgrade
    # failures mid-transaction), wait up to 20 s for it, and readers do not
    # block writers (WAL). Options given in the URL's query string win.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        **DATABASES["default"].get("OPTIONS", {}),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # Prepared statements: parameters travel apart from the SQL (server-side binding) and a
    # statement a connection runs a second time is prepared once, so PostgreSQL stops parsing and
    # planning it on every request (about 40 % of its CPU per API order; docs/deployment/performance.rst).
    # DATABASE_PREPARED_STATEMENTS=0 turns them off: PgBouncer in transaction mode before 1.21 cannot
    # keep them (docs/deployment/production.rst). Options given in the URL's query string win.
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": 2,
        **DATABASES["default"].get("OPTIONS", {}),
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
# Signing in without ?next= lands on the role home (/pos/, /kitchen/ or /admin/).
LOGIN_REDIRECT_URL = "/"

# The default language (docs/guides/languages.rst); the browser's, or the user's
# choice in the operator app, wins over it.
LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "en-us").strip().lower() or "en-us"
LANGUAGES = [
    ("en", "English"),
    ("pt-br", "Português (Brasil)"),
]
# Omniman's catalogue ships in the package (omniman/locale); a project puts its
# overrides here, searched first.
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production serves collected files with hashed names, compressed, cached forever.
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# LOG_FORMAT=json: one JSON object per line, with the records' extra fields
# (session_key, order_ref, channel, actor…) as keys and secrets redacted.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', got {LOG_FORMAT!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "omniman.logs.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "omniman.logs.JSONFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "loggers": {
        "omniman": {
            "handlers": ["console"],
            "level": os.environ.get("LOG_LEVEL", "INFO").upper(),
            "propagate": False,
        },
    },
}
if not DEBUG:
    # Django's own errors (django.request 500s…) in the same format; DEBUG has Django's console handler.
    LOGGING["root"] = {"handlers": ["console"], "level": "WARNING"}


def omniman_settings(defaults: dict) -> dict:
    """``defaults``, each key overridable by ``OMNIMAN_<KEY>`` in the environment.

    The default's type says how the variable is read: bools as truthy strings,
    ints as ints, lists as comma-separated values, anything else as a string.
    """
    values = {}
    for key, default in defaults.items():
        name = f"OMNIMAN_{key}"
        if isinstance(default, bool):
            values[key] = env_bool(name, default)
        elif isinstance(default, int):
            values[key] = env_int(name, default)
        elif isinstance(default, list):
            values[key] = env_list(name) if name in os.environ else list(default)
        else:
            values[key] = os.environ.get(name, default)
    return values


# Every key of omniman.conf.DEFAULTS (SPEC §8), each overridable by OMNIMAN_<KEY>.
OMNIMAN = omniman_settings(OMNIMAN_DEFAULTS)

# This project runs the checks a POS waits for, and the pickup number it shows,
# right after the transaction that enqueued them (cron and workers remain the
# safety net). OMNIMAN_DISPATCH_ON_COMMIT overrides it ("" for none).
if "OMNIMAN_DISPATCH_ON_COMMIT" not in os.environ:
    OMNIMAN["DISPATCH_ON_COMMIT"] = ["stock.hold", "pricing.check", "refs.assign_ticket"]

# How often a kitchen board asks whether anything changed (omniman.web.kitchen; 500 ms by default).
if os.environ.get("OMNIMAN_KITCHEN_POLL_MS", "").strip():
    OMNIMAN["KITCHEN_POLL_MS"] = env_int("OMNIMAN_KITCHEN_POLL_MS", 500)
