from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "omniman.contrib.catalog"
    label = "omniman_catalog"
    verbose_name = "Catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry
        from omniman.contrib.catalog.services import CatalogCategorySource, CatalogStationSource

        # Kitchen items whose line carries no meta["station"] get the product's station (the kernel asks the registry).
        registry.register_station_source(CatalogStationSource())
        # The reports' sales by category read the products' categories.
        registry.register_category_source(CatalogCategorySource())
