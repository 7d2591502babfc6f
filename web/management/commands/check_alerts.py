"""`manage.py check_alerts [--deliver]`: run the alert checks once (what beat runs every
minute). With --deliver, also try every pending delivery once in this process: a cron job
that still alerts when no Celery worker is running (the case a stale backlog often is)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from alerts.services.delivery import deliveries_attempt_pending
from web.alert_checks import alert_checks_run


class Command(BaseCommand):
    help = "Run the alert checks once; --deliver also sends pending alerts from here."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--deliver", action="store_true")

    def handle(self, *args: object, deliver: bool, **options: object) -> None:
        result = alert_checks_run(now=timezone.now())
        self.stdout.write(f"raised {result.raised}, cleared {result.cleared}")
        if deliver:
            delivered = deliveries_attempt_pending(now=timezone.now())
            self.stdout.write(f"delivered {delivered}")
