"""A channel's config is the kernel's to check (omniman.channel_config): on save, on clean,
in the admin, in seed_demo, and — for what is already in the database — in a system check."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from omniman import channel_config
from omniman.checks import STARTUP_CHECKS, check_channel_configs, check_default_currency
from omniman.models import Channel, Order, Session
from omniman.monetary import is_currency, validate_currency
from omniman.services import CommitService
from tests.factories import create_session_at, make_channel

pytestmark = pytest.mark.django_db

BAD_CURRENCIES = ["DOLLARS-US", "usd", "<b>", "X" * 300, "", "XYZ", "ÉUR", 840, None]


def codes_of(exc: ValidationError, field: str = "config") -> list[str]:
    return [error.code for error in exc.error_dict[field]]


# -- the rule ------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["BRL", "EUR", "USD", "JPY", "CHF"])
def test_iso_4217_codes_are_currencies(code):
    assert is_currency(code)
    validate_currency(code)


@pytest.mark.parametrize("value", BAD_CURRENCIES)
def test_anything_else_is_not_a_currency(value):
    assert not is_currency(value)
    with pytest.raises(ValidationError) as caught:
        validate_currency(value)
    assert caught.value.code == "invalid_currency"


@pytest.mark.parametrize(
    "config, code",
    [
        ([], channel_config.INVALID_CONFIG),
        ({"currency": "usd"}, channel_config.INVALID_CURRENCY),
        ({"order_flow": {"transitions": {"new": ["confirmd"]}}}, channel_config.UNKNOWN_STATUS),
        ({"order_flow": {"initial_status": "fresh"}}, channel_config.UNKNOWN_STATUS),
        ({"order_flow": "linear"}, channel_config.INVALID_ORDER_FLOW),
        ({"checks": ["stock"]}, channel_config.INVALID_CHECKS),
        ({"required_checks_on_commit": "stock"}, channel_config.INVALID_CHECKS),
        ({"post_commit_directives": "test.record"}, channel_config.INVALID_TOPIC),
        ({"on_abandon": [""]}, channel_config.INVALID_TOPIC),
        ({"terminology": ["Tab"]}, channel_config.INVALID_TERMINOLOGY),
        ({"ingestion": {"status_map": {"gone": "teleported"}}}, channel_config.INVALID_INGESTION),
    ],
)
def test_save_refuses_a_config_the_kernel_cannot_read(config, code):
    with pytest.raises(ValidationError) as caught:
        Channel.objects.create(code="bad", name="Bad", config=config)
    assert codes_of(caught.value) == [code]
    assert not Channel.objects.filter(code="bad").exists()


def test_save_refuses_a_bad_currency_on_an_existing_channel():
    channel = make_channel("counter", config={"currency": "BRL"})
    for value in BAD_CURRENCIES:
        channel.config = {"currency": value}
        with pytest.raises(ValidationError) as caught:
            channel.save()
        assert codes_of(caught.value) == ["invalid_currency"]
    assert Channel.objects.get(pk=channel.pk).config == {"currency": "BRL"}


def test_a_topic_without_handler_is_refused_by_clean_not_by_save():
    channel = Channel.objects.create(code="later", name="Later", config={"post_commit_directives": ["nobody.handles"]})
    with pytest.raises(ValidationError) as caught:
        channel.full_clean()
    assert codes_of(caught.value) == [channel_config.NO_HANDLER]
    Channel(code="fine", name="Fine", config={"post_commit_directives": ["test.record"]}).full_clean()


def test_problems_name_the_culprit():
    problems = channel_config.config_problems({"currency": "DOLLARS-US", "on_abandon": ["nope.release"]})
    assert [(p.code, "DOLLARS-US" in p.message or "nope.release" in p.message) for p in problems] == [
        ("no_handler", True),
        ("invalid_currency", True),
    ]
    assert channel_config.config_problems({"on_abandon": ["nope.release"]}, handlers=False) == []


def test_a_session_on_a_bad_currency_channel_cannot_come_to_be():
    """The commit that answered 500 (value too long for varchar(8)) needs a channel save() now refuses."""
    session = create_session_at(make_channel("web"))
    channel = session.channel
    channel.config = {"currency": "DOLLARS-US"}
    with pytest.raises(ValidationError):
        channel.save()
    assert Channel.objects.get(pk=channel.pk).config == {}
    result = CommitService.commit(session.session_key, "web", idempotency_key="k1")
    assert Order.objects.get(ref=result["order_ref"]).currency == "BRL"  # the default, never the refused value
    assert Session.objects.get(pk=session.pk).state == "committed"


def test_a_commit_on_a_currency_planted_behind_the_model_is_refused_not_a_500(client, django_user_model):
    """A bad currency already in the database (the system check reports it): the commit answers
    ``invalid_currency`` (400 from the API), and writes nothing."""
    from django.contrib.auth.models import Group

    from omniman.exceptions import CommitError
    from tests.factories import DbState

    session = create_session_at(make_channel("planted-commit"))
    Channel.objects.filter(pk=session.channel.pk).update(config={"currency": "DOLLARS-US"})
    before = DbState(Session.objects.get(pk=session.pk))
    with pytest.raises(CommitError) as caught:
        CommitService.commit(session.session_key, "planted-commit", idempotency_key="k-planted")
    assert caught.value.code == "invalid_currency"
    assert caught.value.context == {"channel_code": "planted-commit", "currency": "DOLLARS-US"}
    before.assert_unchanged()
    user = django_user_model.objects.create_user("till", password="x")
    user.groups.add(Group.objects.get_or_create(name="pos")[0])
    client.force_login(user)
    response = client.post(
        f"/api/sessions/{session.session_key}/commit/",
        {"channel_code": "planted-commit", "idempotency_key": "k-api"},
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_currency"
    before.assert_unchanged()


# -- what is already in the database: the system check ----------------------------


def test_the_check_reports_a_bad_config_planted_behind_the_model():
    make_channel("good", config={"currency": "EUR", "post_commit_directives": ["test.record"]})
    bad = make_channel("planted")
    assert check_channel_configs(databases=["default"]) == []
    Channel.objects.filter(pk=bad.pk).update(config={"currency": "DOLLARS-US", "on_abandon": ["nobody.handles"]})
    messages = check_channel_configs(databases=["default"])
    assert [(m.id, m.obj) for m in messages] == [("omniman.W031", "Channel planted"), ("omniman.W032", "Channel planted")]
    assert "DOLLARS-US" in messages[0].msg and "nobody.handles" in messages[1].msg
    assert check_channel_configs(databases=None) == []  # reads the database only when asked to


@pytest.mark.parametrize("value", ["usd", "DOLLARS-US", "<b>", ""])
def test_the_default_currency_must_be_iso_4217(value):
    with override_settings(OMNIMAN={"DEFAULT_CURRENCY": value}):
        assert [m.id for m in check_default_currency()] == ["omniman.E030"]
    assert check_default_currency() == []
    assert check_default_currency in STARTUP_CHECKS


# -- the admin ----------------------------------------------------------------------


def _form(config, **fields) -> dict:
    return {
        "code": "web", "name": "Web", "pricing_policy": "internal", "edit_policy": "open",
        "config": json.dumps(config), "is_active": "on", "display_order": 0, **fields,
    }


@pytest.fixture
def manager(admin_client):
    return admin_client


@pytest.mark.parametrize("value", ["DOLLARS-US", "usd", "<b>", "X" * 300])
def test_the_admin_add_form_refuses_a_bad_currency(manager, value):
    response = manager.post("/admin/omniman/channel/add/", _form({"currency": value}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert [e.code for e in errors["config"]] == ["invalid_currency"]
    if value == "<b>":
        assert "currency: &#x27;&lt;b&gt;&#x27; is not an ISO 4217" in response.content.decode()  # escaped
    assert not Channel.objects.filter(code="web").exists()


@pytest.mark.parametrize("value", ["DOLLARS-US", "usd", "<b>", "X" * 300])
def test_the_admin_change_form_refuses_a_bad_currency(manager, value):
    channel = make_channel("counter", config={"currency": "BRL"})
    response = manager.post(f"/admin/omniman/channel/{channel.pk}/change/", _form({"currency": value}, name="Renamed"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors.as_data()
    assert [e.code for e in errors["config"]] == ["invalid_currency"]
    channel.refresh_from_db()
    assert (channel.name, channel.config) == ("COUNTER", {"currency": "BRL"})


# -- seed_demo ----------------------------------------------------------------------


@pytest.mark.contrib("omniman.contrib.demo", "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock")
def test_seed_demo_channels_pass_the_kernels_rules():
    from django.core.management import call_command

    call_command("seed_demo")
    assert Channel.objects.count() >= 1
    for channel in Channel.objects.all():
        channel.full_clean()
    assert check_channel_configs(databases=["default"]) == []
