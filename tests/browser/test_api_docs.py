"""/api/redoc/ and /api/docs/ in a real browser: the schema is drawn, and no request leaves
this server. Every request the page makes goes through a route that lets this server's
through and aborts (and records) any other: there must be none. Redoc's bundle would fetch
Redocly's logo from cdn.redoc.ly; the page's Content-Security-Policy refuses it before any
request is made, which the page reports as a policy violation (recorded here too)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
RECORD_VIOLATIONS = """() => {
  window.refused = [];
  document.addEventListener('securitypolicyviolation', (e) => window.refused.push(e.blockedURI));
}"""


@pytest.mark.parametrize("path", ["/api/redoc/", "/api/docs/"])
def test_the_api_reference_renders_without_leaving_the_server(page, live_server, path):
    server = urlsplit(live_server.url)
    seen: list[str] = []
    elsewhere: list[str] = []
    errors: list[str] = []

    def route(request_route):
        url = request_route.request.url
        seen.append(url)
        target = urlsplit(url)
        if target.hostname in LOCAL_HOSTS and target.port == server.port:
            request_route.continue_()
        else:
            elsewhere.append(url)
            request_route.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(script=f"({RECORD_VIOLATIONS})()")
    page.goto(f"{live_server.url}{path}")

    if path == "/api/redoc/":
        # Redoc has fetched and parsed the schema: the title and the operations are drawn.
        expect(page.get_by_role("heading", name="snapagg API", level=1)).to_be_visible()
        expect(page.get_by_role("heading", name="aggregates_retrieve")).to_be_attached()
        expect(page.get_by_text("/api/aggregates/").first).to_be_attached()
    else:
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("snapagg API")
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    refused = page.evaluate("window.refused")

    assert any(urlsplit(url).path == "/api/schema/" for url in seen), seen
    assert elsewhere == []
    assert errors == []
    # Only what the bundle itself would fetch from elsewhere is refused, never our own.
    assert all(urlsplit(url).hostname not in LOCAL_HOSTS for url in refused), refused
