"""Directives: read-only, with run now and retry through the engine's own claim."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display

from omniman import registry
from omniman.admin import actions as admin_actions
from omniman.admin.base import ReadOnlyAdmin, ServiceActionsMixin
from omniman.admin.filters import DirectiveTopicFilter
from omniman.admin.renderers import DIRECTIVE_BADGES, PRE_STYLE, admin_link, badge, nowrap, pretty_json, when
from omniman.models import Directive, Order, Session


def _payload_pk(model, field: str, key: str):
    return Subquery(model.objects.filter(**{field: KeyTextTransform(key, OuterRef("payload"))}).values("pk")[:1])


@admin.register(Directive)
class DirectiveAdmin(ServiceActionsMixin, ReadOnlyAdmin):
    list_display = ("id", "topic", "status_badge", "runs", "concerns", "due", "error_line")
    list_filter = (("status", admin.ChoicesFieldListFilter), DirectiveTopicFilter)
    search_fields = ("topic", "dedupe_key", "payload__order_ref", "payload__session_key")
    search_help_text = _("Topic, dedupe key, order ref or session key in the payload.")
    ordering = ("-id",)
    actions = ("run_selected", "retry_selected")
    fieldsets = (
        (None, {"fields": ("id", "topic", "status_view", "attempts", "concerns", "dedupe_key", "available_at", "started_at", "created_at", "updated_at")}),
        (_("Payload"), {"fields": ("payload_view",)}),
        (_("Last error"), {"fields": ("error_view",)}),
    )
    readonly_fields = ("id", "topic", "status_view", "attempts", "concerns", "dedupe_key", "available_at", "started_at", "created_at", "updated_at", "payload_view", "error_view")
    change_form_outer_before_template = "admin/omniman/directive/review_panel.html"
    review_actions = ("run", "retry")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            order_pk=_payload_pk(Order, "ref", "order_ref"),
            session_pk=_payload_pk(Session, "session_key", "session_key"),
        )

    @display(description=_("Status"), ordering="status", label=DIRECTIVE_BADGES)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description=_("Status"))
    def status_view(self, obj):
        return badge(obj.get_status_display(), DIRECTIVE_BADGES.get(obj.status, ""))

    @display(description=_("Concerns"))
    def concerns(self, obj):
        payload = obj.payload or {}
        if payload.get("order_ref"):
            return nowrap(admin_link("order", obj.order_pk, _("Order %(ref)s") % {"ref": payload["order_ref"]}))
        if payload.get("session_key"):
            return nowrap(admin_link("session", obj.session_pk, _("Session %(key)s") % {"key": payload["session_key"]}))
        return "—"

    @display(description=_("Runs"), ordering="attempts")
    def runs(self, obj):
        return obj.attempts

    @display(description=_("Due"), ordering="available_at")
    def due(self, obj):
        return when(obj.available_at)

    @display(description=_("Last error"))
    def error_line(self, obj):
        first = (obj.last_error or "").strip().splitlines()[:1]
        if not first:
            return "—"
        return nowrap(first[0] if len(first[0]) <= 60 else first[0][:59] + "…", title=first[0])

    @display(description=_("Payload"))
    def payload_view(self, obj):
        return pretty_json(obj.payload)

    @display(description=_("Last error"))
    def error_view(self, obj):
        if not obj.last_error:
            return "—"
        return format_html('<pre style="{}">{}</pre>', PRE_STYLE, obj.last_error)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["review"] = {
                "status_badge": badge(obj.get_status_display(), DIRECTIVE_BADGES.get(obj.status, "")),
                "can_run": obj.status == Directive.Status.QUEUED,
                "can_retry": obj.status == Directive.Status.FAILED,
                "has_handler": registry.get_directive_handler(obj.topic) is not None,
                "can_manage": self.has_manage_permission(request, obj),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _report(self, request, report: admin_actions.RunReport, what: str) -> None:
        counts = report.counts
        level = messages.SUCCESS if report.outcomes and set(counts) == {"done"} else messages.WARNING
        if not report.outcomes and not report.requeued:
            level = messages.WARNING
        messages.add_message(request, level, _("%(what)s: %(summary)s.") % {"what": what, "summary": report.summary()})

    def _log(self, request, ids, message: str) -> None:
        for directive in Directive.objects.filter(pk__in=list(ids)).only("id", "topic", "status"):
            self.log_change(request, directive, message)

    def run_view(self, request, object_id):
        directive = self.get_review_object(request, object_id)
        if registry.get_directive_handler(directive.topic) is None:
            messages.error(
                request,
                _("Directive #%(pk)s was not run: no handler is registered for %(topic)r.")
                % {"pk": directive.pk, "topic": directive.topic},
            )
            return self.back_to(directive)
        report = admin_actions.run_now([directive.pk])
        self._log(request, report.outcomes, "Run now.")
        self._report(request, report, _("Directive #%(pk)s") % {"pk": directive.pk})
        return self.back_to(directive)

    def retry_view(self, request, object_id):
        directive = self.get_review_object(request, object_id)
        report = admin_actions.retry_failed([directive.pk])
        self._log(request, report.outcomes, "Retried.")
        self._report(request, report, _("Directive #%(pk)s") % {"pk": directive.pk})
        return self.back_to(directive)

    @admin.action(description=_("Run selected now (queued ones)"), permissions=["manage"])
    def run_selected(self, request, queryset):
        report = admin_actions.run_now(queryset.values_list("pk", flat=True))
        self._log(request, report.outcomes, "Run now.")
        self._report(request, report, _("Run now"))

    @admin.action(description=_("Retry selected failed directives"), permissions=["manage"])
    def retry_selected(self, request, queryset):
        report = admin_actions.retry_failed(queryset.values_list("pk", flat=True))
        self._log(request, report.outcomes, "Retried.")
        self._report(request, report, _("Retry"))
