from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

DIGITS = frozenset("0123456789")


class Pagination(PageNumberPagination):
    """``?page=N&page_size=M``: 50 a page by default, at most 200 (a larger size is capped).

    ``page`` and ``page_size`` must be whole numbers ≥ 1 in ASCII digits: ``0``, ``-5``, ``abc`` or an empty
    value answer 400 ``invalid`` (``context.fields``) instead of being ignored; a page past the end is 404.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and (not raw or not set(raw) <= DIGITS or not raw.lstrip("0")):
            raise ValidationError({self.page_query_param: ["A page number, 1 or more."]})
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        significant = raw.lstrip("0")
        if not raw or not set(raw) <= DIGITS or not significant:
            raise ValidationError({self.page_size_query_param: ["A whole number, 1 or more."]})
        if len(significant) > len(str(self.max_page_size)):  # no int() of a thousand digits
            return self.max_page_size
        return min(int(significant), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = f"Results per page (default {self.page_size}, a larger value than {self.max_page_size} is capped)."
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
