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
from hypothesis.stateful import run_state_machine_as_test

from tests.factories import UserFactory, api_key_for

# Loaded from the WSGI application itself: no server, and the requests run in this process
# and in the test's transaction.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
# Requests carry the operator's token below, not generated Authorization values.
schema.config.generation.update(with_security_parameters=False)
# Every phase, as `schemathesis run` does by default: the schema's own examples, the
# coverage phase (boundaries and each way to break each constraint), random fuzzing, and
# the stateful phase (test_the_api_as_a_sequence_of_linked_calls below).
schema.config.phases.update(phases=["examples", "coverage", "fuzzing", "stateful"])


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
    # Every check, from "no 5xx" to "the schema refuses exactly what the API refuses"
    # (negative_data_rejection, and positive data acceptance with the one exception below).
    case.call_and_validate(
        headers={"Authorization": f"Token {operator_token}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )


@schemathesis.check
def positive_data_accepted(ctx, response, case):
    """Schemathesis's positive_data_acceptance, except for refusals a schema cannot state:
    a well-formed metric name that names no metric, and event times in the future (or an
    arrival before its event), which depend on the clock."""
    if _refused_by_data_or_clock(response):
        return None
    return schemathesis.checks.positive_data_acceptance(ctx, response, case)


def _refused_by_data_or_clock(response) -> bool:
    if response.status_code != 400:
        return False
    body = response.json()
    errors = body.get("errors") or [body]
    return all(_data_or_clock(error) for error in errors)


# Rules between query parameters of /api/aggregates/ (period or from/to, from before to,
# the longest range, limit's bounds) and a NUL in a source (PostgreSQL text holds none):
# an OpenAPI parameter list states each parameter alone, so these are refused by the API
# with the field named, and left out of "the schema says exactly what the API takes".
CROSS_PARAMETER_RULES = (
    "not both",
    "give period, or from and to",
    "is required with from",
    "from is after to",
    "the range is longer than",
    "limit must be a whole number",
    "contains a NUL character",
)


def _data_or_clock(error: dict) -> bool:
    detail = str(error.get("detail", ""))
    if any(rule in detail for rule in CROSS_PARAMETER_RULES):
        return True
    if "more than 6 decimal places" in detail:
        # A JSON number's decimals: the string form's pattern states the limit, but
        # JSON Schema's multipleOf (0.000001) is inexact on binary floats, so the number
        # form cannot (e.g. -1.36e-235 is generated as valid).
        return True
    if error.get("field") == "metric":
        return "unknown metric" in detail
    if error.get("field") in {"event_time", "arrival_time"}:
        return "in the future" in detail or "before event_time" in detail
    return False


# The stateful phase: sequences of calls where one answer feeds the next request (links
# schemathesis infers from the schema, e.g. an event posted, then read back by its id).
Workflow = schema.as_state_machine()


@override_settings(INGEST_RATE_LIMIT=None)
@pytest.mark.django_db
def test_the_api_as_a_sequence_of_linked_calls(operator_token):
    class AsOperator(Workflow):
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Token {operator_token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                additional_checks=additional_checks,
                # ignored_auth runs in the test above (and tests/security per role); here
                # it cannot tell the operator's token from a generated one.
                excluded_checks=[
                    schemathesis.checks.positive_data_acceptance,
                    schemathesis.checks.ignored_auth,
                ],
                transport_kwargs=kwargs,
            )

    run_state_machine_as_test(
        AsOperator,
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
