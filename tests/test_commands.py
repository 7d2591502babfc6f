from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from apikeys.models import ApiKey, api_key_hash

pytestmark = pytest.mark.django_db


def test_create_api_token_creates_the_user_and_prints_a_working_key():
    out = StringIO()

    call_command("create_api_token", "ingest-bot", stdout=out, stderr=StringIO())

    key = out.getvalue().strip()
    user = get_user_model().objects.get(username="ingest-bot")
    assert ApiKey.objects.get(user=user).key_hash == api_key_hash(key)
    assert not user.has_usable_password()
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/metrics/").status_code == 200


def test_create_api_token_makes_a_new_key_each_time_and_both_work():
    first, second = StringIO(), StringIO()

    call_command("create_api_token", "bot", stdout=first, stderr=StringIO())
    call_command("create_api_token", "bot", stdout=second, stderr=StringIO())

    keys = [first.getvalue().strip(), second.getvalue().strip()]
    assert keys[0] != keys[1]  # a key is shown once; it cannot be printed again
    for key in keys:
        assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/days/").status_code == 200
