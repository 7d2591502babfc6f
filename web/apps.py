from django.apps import AppConfig


class WebConfig(AppConfig):
    """The top layer: pages and API views that combine the apps, health, worker
    heartbeats, the operations page and "run snapshots now"."""

    name = "web"
    verbose_name = "Operations"
