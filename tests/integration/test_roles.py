"""Roles live below every layer (``omniman.roles``); the web keeps only its door (``role_required``, ``actor``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User

from omniman import roles

pytestmark = pytest.mark.django_db


def test_roles_are_groups_and_a_superuser_is_a_manager():
    cook = User.objects.create_user("cook")
    cook.groups.add(Group.objects.create(name=roles.KITCHEN))
    boss = User.objects.create_superuser("boss")
    assert roles.roles_of(cook) == {"kitchen"} and roles.has_role(cook, roles.KITCHEN, roles.MANAGER)
    assert not roles.has_role(cook, roles.POS)
    assert roles.roles_of(boss) == {"manager"}
    assert roles.roles_of(AnonymousUser()) == set() and roles.roles_of(None) == set()
    assert roles.actor_of(cook) == "user:cook"
    assert roles.ROLES == ("pos", "kitchen", "manager", "integration")


def test_the_roles_module_knows_no_http_and_no_upper_layer():
    tree = ast.parse(Path(roles.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not [name for name in imported if name and (name.startswith(("django", "rest_framework", "omniman.web", "omniman.api", "omniman.admin")))]


def test_the_api_the_admin_and_the_web_ask_the_kernels_roles():
    root = Path(roles.__file__).parent
    for path in [root / "api" / "permissions.py", root / "admin" / "site.py", root / "admin" / "orders.py", root / "web" / "views.py", root / "web" / "kitchen.py"]:
        text = path.read_text()
        assert "from omniman.roles import" in text, path
    for path in (root / "admin").glob("*.py"):
        assert "omniman.web" not in path.read_text(), path  # the admin asks the kernel, not the operator app
    from omniman.web import roles as web_roles

    assert not hasattr(web_roles, "roles_of") and not hasattr(web_roles, "POS")
