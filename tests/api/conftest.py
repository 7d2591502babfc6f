from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture
def operator_client(db) -> APIClient:
    """The token of an operator (a staff user): may also run the snapshot job."""
    user = UserFactory(username="operator-api", is_staff=True)
    token, _ = Token.objects.get_or_create(user=user)
    return APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
