from django.apps import AppConfig


class AggregationConfig(AppConfig):
    name = "aggregation"
    verbose_name = "Aggregation: metrics and day totals"

    def ready(self) -> None:
        from aggregation import checks  # noqa: F401  (registers the system check)
