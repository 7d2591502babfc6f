from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_create_api_token_creates_the_user_and_prints_a_working_key():
    out = StringIO()

    call_command("create_api_token", "ingest-bot", stdout=out, stderr=StringIO())

    key = out.getvalue().strip()
    user = get_user_model().objects.get(username="ingest-bot")
    assert Token.objects.get(user=user).key == key
    assert not user.has_usable_password()
    assert APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/metrics/").status_code == 200


def test_create_api_token_is_stable_for_an_existing_user():
    first, second = StringIO(), StringIO()

    call_command("create_api_token", "bot", stdout=first, stderr=StringIO())
    call_command("create_api_token", "bot", stdout=second, stderr=StringIO())

    assert first.getvalue() == second.getvalue()
