"""API fuzzing: schemathesis generates requests from /api/schema/ (valid and invalid) for
every operation, with an operator's token: never a 5xx, and every answer (status code,
content type, body) must match the published schema."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings

from tests.factories import UserFactory, api_key_for

# Loaded from the WSGI application itself: no server, and the requests run in this process
# and in the test's transaction.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
# Requests carry the operator's token below, not generated Authorization values.
schema.config.generation.update(with_security_parameters=False)


@pytest.fixture(autouse=True)
def _keep_the_test_connection_open():
    """Like Django's test client: the request signals must not close the test's database
    connection (and with it the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def operator_token(db) -> str:
    user = UserFactory(username="fuzz-operator", is_staff=True)
    return api_key_for(user)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@override_settings(INGEST_RATE_LIMIT=None)
@pytest.mark.django_db
def test_every_operation_answers_within_its_schema(case, operator_token):
    case.call_and_validate(
        headers={"Authorization": f"Token {operator_token}"},
        # Not these two: a schema-valid event can name a metric that does not exist (400),
        # and an empty ?to= means "no bound" rather than an error. Everything else, from
        # "no 5xx" to the body matching the schema, is checked.
        excluded_checks=[
            schemathesis.checks.positive_data_acceptance,
            schemathesis.checks.negative_data_rejection,
        ],
    )
