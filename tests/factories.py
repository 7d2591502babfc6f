from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model

from aggregation.models import Metric, TooLatePolicy


class MetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Metric
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"metric-{n}")
    description = "A test metric."
    allowed_lateness = dt.timedelta(days=1)
    too_late_policy = TooLatePolicy.RESTATE


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user-{n}")
    password = factory.django.Password("correct horse battery staple")
