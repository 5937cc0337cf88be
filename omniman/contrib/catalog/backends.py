"""The model-backed catalog: ``Product`` and ``Category`` rows."""

from __future__ import annotations

from django.db import connections, router
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, Value, When

from omniman.contrib.catalog.models import Category, Option, OptionGroup, Product
from omniman.contrib.catalog.protocols import CatalogCategory, CatalogItem, CatalogOption, CatalogOptionGroup
from omniman.models import kept_per_connection

FIELDS = ("sku", "name", "category__code", "price_q", "station", "barcode", "is_active", "has_options", "forced")


def _groups(**extra):
    return OptionGroup.objects.filter(products=OuterRef("pk"), is_active=True, **extra)


def _item(row: dict) -> CatalogItem:
    return CatalogItem(
        sku=row["sku"],
        name=row["name"],
        category=row["category__code"] or "",
        price_q=row["price_q"],
        station=row["station"],
        barcode=row["barcode"],
        is_active=bool(row["is_active"]),  # hand-written SQL on SQLite reads 0/1
        has_options=bool(row["has_options"]),
        forced=bool(row["forced"]),
    )


def products_sql(connection, count: int, *, listed_only: bool = True) -> str:
    """``_active().filter(sku__in=…).values(*FIELDS)`` as SQL, written from the models' names.

    ``get_many`` runs on every modify (prices, names) and commit (stations):
    the ORM spent about 2 ms of CPU building and compiling that query with its
    two ``EXISTS`` each time (``benchmarks/profile_api.py``), the database a
    fraction of it. The text is kept per connection (its quoting) and number of
    SKUs (up to 64); the rows are read on every call.

    ``listed_only=False`` (the pricing app's read, ``CatalogPricingBackend.read_for_lines``):
    every active product, in an inactive category too, with one more column
    after ``FIELDS``, ``listed`` (what ``get_many`` would answer it) — what
    ``option_groups_many`` needs is an active product, not a listed one.
    """

    def build() -> str:
        qn = connection.ops.quote_name
        product, category, group = Product._meta, Category._meta, OptionGroup._meta
        link = Product.option_groups.through._meta
        link_product = qn(link.get_field("product").column)
        link_group = qn(link.get_field("optiongroup").column)
        category_fk = qn(product.get_field("category").column)

        def groups(extra: str = "") -> str:
            return (
                f"EXISTS(SELECT 1 FROM {qn(link.db_table)} l INNER JOIN {qn(group.db_table)} g "
                f"ON l.{link_group} = g.{qn(group.pk.column)} "
                f"WHERE l.{link_product} = p.{qn(product.pk.column)} AND g.{qn(group.get_field('is_active').column)}{extra})"
            )

        listed = f"(p.{category_fk} IS NULL OR c.{qn(category.get_field('is_active').column)})"
        columns = [f"p.{qn(product.get_field(name).column)}" for name in ("sku", "name")]
        columns.append(f"c.{qn(category.get_field('code').column)}")
        columns += [f"p.{qn(product.get_field(name).column)}" for name in ("price_q", "station", "barcode", "is_active")]
        columns += [groups(), groups(f" AND g.{qn(group.get_field('min_choices').column)} > 0")]
        if not listed_only:
            columns.append(listed)
        return (
            f"SELECT {', '.join(columns)} FROM {qn(product.db_table)} p "
            f"LEFT OUTER JOIN {qn(category.db_table)} c ON p.{category_fk} = c.{qn(category.pk.column)} "
            f"WHERE p.{qn(product.get_field('is_active').column)} "
            + (f"AND {listed} " if listed_only else "")
            + f"AND p.{qn(product.get_field('sku').column)} IN ({', '.join(['%s'] * count)})"
        )

    return kept_per_connection(connection, ("catalog.products", count, listed_only), build) if count <= 64 else build()


def _stations_sql(connection, count: int) -> str:
    """The SKUs and stations of ``get_many``'s products that have a station: its rows without the ``EXISTS``."""

    def build() -> str:
        qn = connection.ops.quote_name
        product, category = Product._meta, Category._meta
        category_fk = qn(product.get_field("category").column)
        station = f"p.{qn(product.get_field('station').column)}"
        return (
            f"SELECT p.{qn(product.get_field('sku').column)}, {station} FROM {qn(product.db_table)} p "
            f"LEFT OUTER JOIN {qn(category.db_table)} c ON p.{category_fk} = c.{qn(category.pk.column)} "
            f"WHERE p.{qn(product.get_field('is_active').column)} "
            f"AND (p.{category_fk} IS NULL OR c.{qn(category.get_field('is_active').column)}) "
            f"AND {station} <> '' AND p.{qn(product.get_field('sku').column)} IN ({', '.join(['%s'] * count)})"
        )

    return kept_per_connection(connection, ("catalog.stations", count), build) if count <= 64 else build()


class ModelCatalogBackend:
    """Search by exact SKU or barcode first, then by name or SKU containing the text."""

    def _active(self):
        return (
            Product.objects.filter(is_active=True)
            .filter(Q(category__isnull=True) | Q(category__is_active=True))
            .annotate(has_options=Exists(_groups()), forced=Exists(_groups(min_choices__gt=0)))
        )

    def search(self, query: str = "", *, category: str | None = None, limit: int = 24) -> list[CatalogItem]:
        query = (query or "").strip()
        products = self._active()
        if category:
            products = products.filter(category__code=category)
        if query:
            products = products.filter(
                Q(sku__iexact=query) | Q(barcode=query) | Q(name__icontains=query) | Q(sku__icontains=query)
            ).annotate(
                rank=Case(
                    When(Q(sku__iexact=query) | Q(barcode=query), then=Value(0)),
                    When(name__istartswith=query, then=Value(1)),
                    default=Value(2),
                    output_field=IntegerField(),
                )
            ).order_by("rank", "sort_order", "name", "sku")
        else:
            # Uncategorised products last on every database (SQLite sorts NULLs first, PostgreSQL last).
            products = products.order_by(
                F("category__sort_order").asc(nulls_last=True), "category__code", "sort_order", "name", "sku"
            )
        return [_item(row) for row in products.values(*FIELDS)[: max(int(limit), 0)]]

    def get(self, sku: str) -> CatalogItem | None:
        return self.get_many([sku]).get(sku)

    def get_many(self, skus: list[str]) -> dict[str, CatalogItem]:
        if not skus:
            return {}
        wanted = sorted(set(skus))
        connection = connections[router.db_for_read(Product)]
        with connection.cursor() as cursor:
            cursor.execute(products_sql(connection, len(wanted)), wanted)
            rows = cursor.fetchall()
        return {row[0]: _item(dict(zip(FIELDS, row))) for row in rows}  # the SQL selects FIELDS, in order

    def stations_many(self, skus: list[str]) -> dict[str, str]:
        """The kitchen station of each SKU ``get_many`` answers with one (one statement, its rows without
        the option groups' ``EXISTS``). A subclass that overrides ``get_many`` is asked through it instead."""
        if type(self).get_many is not ModelCatalogBackend.get_many:
            return {sku: item.station for sku, item in self.get_many(skus).items() if item.station}
        if not skus:
            return {}
        wanted = sorted(set(skus))
        connection = connections[router.db_for_read(Product)]
        with connection.cursor() as cursor:
            cursor.execute(_stations_sql(connection, len(wanted)), wanted)
            return dict(cursor.fetchall())

    def list_categories(self) -> list[CatalogCategory]:
        return [
            CatalogCategory(code=c.code, name=c.name, sort_order=c.sort_order)
            for c in Category.objects.filter(is_active=True).order_by("sort_order", "name", "code")
        ]

    def alternatives(self, sku: str) -> list[CatalogItem]:
        rows = (
            self._active()
            .filter(alternative_for__sku=sku)
            .order_by("sort_order", "name", "sku")
            .values(*FIELDS)
        )
        return [_item(row) for row in rows]

    def alternatives_many(self, skus: list[str]) -> dict[str, list[CatalogItem]]:
        """Each SKU's active alternatives (other than itself), in ``alternatives()``'s order.

        Two queries for all the SKUs (the ``alternatives`` pairs, then ``get_many``).
        A subclass that overrides ``alternatives()`` is asked once per SKU instead.
        """
        if type(self).alternatives is not ModelCatalogBackend.alternatives:
            return {sku: [alt for alt in self.alternatives(sku) if alt.sku != sku] for sku in skus}
        pairs = list(
            Product.alternatives.through.objects.filter(from_product__sku__in=skus)
            # The order of alternatives().
            .order_by("to_product__sort_order", "to_product__name", "to_product__sku")
            .values_list("from_product__sku", "to_product__sku")
        )
        items = self.get_many(sorted({alt for sku, alt in pairs if alt != sku}))
        options: dict[str, list[CatalogItem]] = {sku: [] for sku in skus}
        for sku, alt in pairs:
            if alt != sku and alt in items:
                options[sku].append(items[alt])
        return options

    def option_groups_many(self, skus: list[str]) -> dict[str, list[CatalogOptionGroup]]:
        """Each product's active option groups with their active options, in display order (two queries)."""
        if not skus:
            return {}
        links = list(
            Product.option_groups.through.objects.filter(
                product__sku__in=set(skus), product__is_active=True, optiongroup__is_active=True
            )
            .order_by("optiongroup__sort_order", "optiongroup__name", "optiongroup__code")
            .values_list(
                "product__sku",
                "optiongroup_id",
                "optiongroup__code",
                "optiongroup__name",
                "optiongroup__min_choices",
                "optiongroup__max_choices",
            )
        )
        if not links:
            return {}
        group_ids = {link[1] for link in links}
        options: dict[int, list[CatalogOption]] = {group_id: [] for group_id in group_ids}
        rows = (
            Option.objects.filter(group_id__in=group_ids, is_active=True)
            .order_by("sort_order", "name", "code")
            .values_list("group_id", "code", "name", "price_q", "sku")
        )
        for group_id, code, name, price_q, sku in rows:
            options[group_id].append(CatalogOption(code=code, name=name, price_q=price_q, sku=sku))
        found: dict[str, list[CatalogOptionGroup]] = {}
        for sku, group_id, code, name, min_choices, max_choices in links:
            group = CatalogOptionGroup(
                code=code, name=name, min_choices=min_choices, max_choices=max_choices, options=tuple(options[group_id])
            )
            found.setdefault(sku, []).append(group)
        return found
