"""The installed wheel is a reusable app: a project that ``pip install``s Omniman renders the operator app.

Builds the wheel from a copy of the package (``pyproject.toml``, ``README.md``,
``MANIFEST.in``, ``omniman/``), installs it into a fresh virtual environment,
writes a minimal Django project of its own to a temporary directory (its own
settings and URLs; no ``config/``, no top-level ``templates/`` or ``static/``),
and runs it there, with the temporary directory as the working directory and
no ``PYTHONPATH``: migrate SQLite, sign in through the login form as a user
with the roles, and render ``/pos/``, ``/kitchen/``, ``/admin/`` and the API
docs page. Everything those pages need (templates, static files) must come
from the installed package. (~30 s: a network or pip-cache install of the
dependencies.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[2]
PACKAGE_FILES = ["pyproject.toml", "README.md", "MANIFEST.in", "omniman"]

SETTINGS = '''
"""A project of its own around the installed Omniman: only what the operator app needs."""

from django.templatetags.static import static

SECRET_KEY = "wheel-test-" + "a-project-of-its-own-with-a-long-enough-secret-key-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "urls"
INSTALLED_APPS = [
    # omniman first: its admin/index.html, admin/login.html and drf_spectacular/swagger_ui.html win.
    "omniman",
    "unfold.apps.BasicAppConfig",
    "omniman.apps.ManagerAdminConfig",  # the admin, on the manager review's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "omniman.web",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["template_partials.templatetags.partials", "omniman.web.templatetags.omniman_ui"],
        },
    }
]
UNFOLD = {
    "DASHBOARD_CALLBACK": "omniman.admin.dashboard.dashboard_callback",
    "SCRIPTS": [lambda request: static("js/admin.js")],
    "SIDEBAR": {"navigation": "omniman.admin.site.sidebar_navigation"},
}
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"}
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/pos/"
STATIC_URL = "static/"
USE_TZ = True
# A throwaway SQLite database with DEBUG off (omniman.E001 wants PostgreSQL in production).
OMNIMAN = {"ALLOW_SQLITE_IN_PRODUCTION": True}
'''

URLS = '''
from django.contrib import admin
from django.urls import include, path

from omniman.web import language, views

urlpatterns = [
    # The operator app's pages link to "home" (the role's start page) and post the
    # header's language switcher to "set_language".
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/setlang/", language.set_language, name="set_language"),
    path("pos/", include("omniman.web.urls")),
    path("kitchen/", include("omniman.web.kitchen_urls")),
    path("api/", include("omniman.api.urls")),
]
'''

# Runs inside the fresh venv, in the project's directory; prints one JSON object.
PROBE = '''
import json, sys
from pathlib import Path

import django

django.setup()

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.template.loader import get_template
from django.test import Client

import omniman
from omniman.models import Channel

call_command("check", fail_level="WARNING")
call_command("migrate", verbosity=0)

user = User.objects.create_user("alex", password="a-long-password-for-alex", is_staff=True)
user.groups.add(*(Group.objects.get_or_create(name=role)[0] for role in ("pos", "kitchen", "manager")))
Channel.objects.create(code="counter", name="Counter")
Channel.objects.create(code="tables", name="Tables")

client = Client()
pages = {"login": client.get("/accounts/login/")}
signed_in = client.post("/accounts/login/", {"username": "alex", "password": "a-long-password-for-alex"})
for name, url in [("pos", "/pos/"), ("channel", "/pos/counter/"), ("kitchen", "/kitchen/"),
                  ("admin", "/admin/"), ("api_docs", "/api/docs/")]:
    pages[name] = client.get(url)

def origin(name):
    return get_template(name).origin.name

print(json.dumps({
    "omniman": omniman.__file__,
    "sys_path": sys.path,
    "signed_in": [signed_in.status_code, signed_in.get("Location")],
    "status": {name: response.status_code for name, response in pages.items()},
    "bodies": {name: response.content.decode()[:200000] for name, response in pages.items()},
    "templates": {name: origin(name) for name in
                  ["pos/index.html", "kitchen/board.html", "registration/login.html", "admin/index.html",
                   "drf_spectacular/swagger_ui.html"]},
    "static": {name: finders.find(name) for name in
               ["css/app.css", "css/login.css", "js/app.js", "js/kitchen.js", "js/admin.js", "api/swagger-ui-page.css"]},
}))
'''


@pytest.mark.deploy
@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="runs once, in the SQLite pass: the project it installs has its own SQLite database",
)
def test_installed_wheel_renders_the_operator_app_in_a_project_of_its_own(tmp_path):
    source, dist, venv, project = (tmp_path / name for name in ("source", "dist", "venv", "project"))
    source.mkdir()
    for name in PACKAGE_FILES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        kwargs = {"ignore": shutil.ignore_patterns("__pycache__", "*.pyc")} if (REPO / name).is_dir() else {}
        copy(REPO / name, source / name, **kwargs)

    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTHON", "DATABASE_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    def run(command, cwd, timeout=600):
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        return result

    # The wheel, built as any packager would (an isolated build), outside the repository.
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)], cwd=tmp_path)
    [wheel] = dist.glob("django_omniman-*.whl")
    # A fresh venv without pip of its own (no ensurepip: faster); this venv's pip installs into it.
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)], cwd=tmp_path)

    project.mkdir()
    (project / "settings.py").write_text(textwrap.dedent(SETTINGS))
    (project / "urls.py").write_text(textwrap.dedent(URLS))
    (project / "probe.py").write_text(textwrap.dedent(PROBE))
    env["DJANGO_SETTINGS_MODULE"] = "settings"
    report = json.loads(run([str(python), "probe.py"], cwd=project, timeout=300).stdout.splitlines()[-1])

    # The installed copy answered, never this repository.
    site_packages = str(venv / "lib")
    assert report["omniman"].startswith(site_packages)
    assert not [entry for entry in report["sys_path"] if entry.startswith(str(REPO))]
    for name, origin in [*report["templates"].items(), *report["static"].items()]:
        assert origin and origin.startswith(site_packages), f"{name} comes from {origin}"
    assert "/omniman/templates/admin/index.html" in report["templates"]["admin/index.html"]
    assert "/omniman/web/templates/pos/index.html" in report["templates"]["pos/index.html"]

    assert report["signed_in"] == [302, "/pos/"]
    assert report["status"] == {
        "login": 200, "pos": 200, "channel": 200, "kitchen": 200, "admin": 200, "api_docs": 200
    }, report["bodies"]
    bodies = report["bodies"]
    assert 'href="/static/css/login.css"' in bodies["login"]
    assert 'href="/static/css/app.css"' in bodies["pos"] and "Counter" in bodies["pos"] and "Tables" in bodies["pos"]
    assert 'src="/static/js/kitchen.js"' in bodies["kitchen"]
    assert "/static/js/admin.js" in bodies["admin"]
    assert "/static/api/swagger-ui-page.css" in bodies["api_docs"]
