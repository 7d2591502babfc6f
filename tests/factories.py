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


def api_key_for(user, *, scopes: list[str] | None = None, expires_at=None) -> str:
    """A new API key for `user` (by default with every scope its role allows): the raw key."""
    from django.utils import timezone

    from apikeys.selectors import api_key_role_scopes
    from apikeys.services import api_key_create

    _, raw_key = api_key_create(
        user=user,
        name="test",
        scopes=api_key_role_scopes(user=user) if scopes is None else scopes,
        expires_at=expires_at,
        now=timezone.now(),
    )
    return raw_key
