from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory, api_key_for


@pytest.fixture
def operator_client(db) -> APIClient:
    """The token of an operator (a staff user): may also run the snapshot job."""
    user = UserFactory(username="operator-api", is_staff=True)
    return APIClient(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
