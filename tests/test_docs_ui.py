"""Offline API docs (``djfapi.ops.docs``): Swagger UI and ReDoc from local files.

Two layers, because a page can answer 200 and still be blank in a browser:

* Through FastAPI's ``TestClient``: the pages of the demo (and of the documentation's
  example, ``docs_src/openapi/serve_docs.py``) reference nothing but this host, every
  asset they reference is served with a sensible type and size, nothing else under the
  assets URL is (unknown files, path traversal), and the app's docs settings are honoured.
* In a real browser: the demo under uvicorn (the live tests' ``start_server``), Debian's
  Chromium headless dumps the DOM once the scripts have run, and the operations it shows
  are exactly those of ``/openapi.json``; Chromium's network log shows that the page
  asked no other host for anything. Without Chromium the browser tests are skipped with
  the reason, except under ``CI=true``, where they fail (``.ci/run`` installs it).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import runpy
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.ops.docs import asset_directory, serve_docs
from tests.live.figures import record
from tests.live.server import REPO_ROOT, LiveServer, start_server

DOCS_EXAMPLE = REPO_ROOT / "docs_src" / "openapi" / "serve_docs.py"
DOCS_PAGE = REPO_ROOT / "docs" / "openapi.md"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# What a referenced asset must look like: (part of its content type, smallest size in bytes).
ASSET_KINDS = {".js": ("javascript", 100_000), ".css": ("text/css", 50_000), ".png": ("image/png", 100)}

# src="...", href="...", spec-url="..." attributes, and the URLs inside Swagger UI's script.
ATTRIBUTE_URL = re.compile(r"""\b(?:src|href|spec-url)\s*=\s*["']([^"']*)["']""")
ASSET_URL = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""")  # what the browser loads by itself
SCRIPT_URL = re.compile(r"""\burl:\s*'([^']*)'|window\.location\.origin\s*\+\s*'([^']*)'""")


def referenced_urls(html: str) -> list[str]:
    """Every URL a docs page makes the browser load (or hands to its scripts)."""
    urls = ATTRIBUTE_URL.findall(html)
    urls += [first or second for first, second in SCRIPT_URL.findall(html)]
    return [unescape(url) for url in urls]


def assert_offline_page(client: TestClient, path: str) -> list[str]:
    """Check that ``path`` is an HTML page referencing only this host; return its asset URLs."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "img-src 'self'" in response.headers["content-security-policy"]  # no images from other hosts
    page = response.text
    urls = referenced_urls(page)
    assert urls, page
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), f"{path} references {url!r}"
    lowered = page.lower()
    for other_host in ("http://", "https://", "//cdn", "cdn.", "fonts.googleapis", "fonts.gstatic"):
        assert other_host not in lowered, f"{path} mentions {other_host!r}"
    return [unescape(url) for url in ASSET_URL.findall(page)]


def assert_served_asset(client: TestClient, url: str) -> int:
    """Check that the asset at ``url`` is served with its kind's content type and a real size."""
    response = client.get(url)
    assert response.status_code == 200, url
    content_type, smallest = ASSET_KINDS[Path(urlsplit(url).path).suffix]
    assert content_type in response.headers["content-type"], (url, response.headers["content-type"])
    assert len(response.content) >= smallest, (url, len(response.content))
    assert response.headers.get("etag"), url  # StaticFiles answers with validators: browsers cache
    return len(response.content)


@pytest.fixture(scope="module")
def docs_client(app: FastAPI) -> TestClient:
    """The demo app without its lifespan: the docs pages touch no database."""
    return TestClient(app)


# -- the demo's pages through the TestClient -------------------------------------------


def test_swagger_ui_page_loads_only_local_assets(docs_client: TestClient) -> None:
    assets = assert_offline_page(docs_client, "/docs")
    assert {Path(url).name for url in assets} == {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}
    sizes = {url: assert_served_asset(docs_client, url) for url in assets}
    assert all(url.startswith("/docs-assets/") for url in sizes)
    page = docs_client.get("/docs").text
    assert "url: '/openapi.json'" in page
    assert "<title>djfapi testproject - Swagger UI</title>" in page
    assert '"validatorUrl": null' in page  # Swagger UI's default validator is a public web service
    assert docs_client.get("/openapi.json").json()["info"]["title"] == "djfapi testproject"


def test_redoc_page_loads_only_local_assets_and_no_google_fonts(docs_client: TestClient) -> None:
    assets = assert_offline_page(docs_client, "/redoc")
    assert {Path(url).name for url in assets} == {"redoc.standalone.js", "favicon-32x32.png"}
    for url in assets:
        assert_served_asset(docs_client, url)
    page = docs_client.get("/redoc").text
    assert '<redoc spec-url="/openapi.json"></redoc>' in page
    assert "<title>djfapi testproject - ReDoc</title>" in page


def test_swagger_ui_oauth2_redirect_page_is_served(docs_client: TestClient) -> None:
    response = docs_client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swaggerUIRedirectOauth2" in response.text
    assert "http://" not in response.text and "https://" not in response.text


def test_docs_routes_stay_out_of_the_openapi_document(docs_client: TestClient) -> None:
    paths = docs_client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]


@pytest.mark.parametrize(
    "url",
    [
        "/docs-assets/swagger-ui-dist/no-such-file.js",
        "/docs-assets/redoc/bundles/redoc.js",
        "/docs-assets/",
        "/docs-assets/swagger-ui-dist/",
    ],
)
def test_an_unknown_asset_is_a_404(docs_client: TestClient, url: str) -> None:
    response = docs_client.get(url)
    assert response.status_code == 404
    assert set(response.json()["detail"]) == {"type", "code", "message", "detail"}  # the §7 error body


# The sidecar's __init__.py lies two directories above the served one: a traversal that
# worked would serve it. /etc/passwd is the classic target further up.
TRAVERSALS = [
    "/docs-assets/%2e%2e/%2e%2e/__init__.py",
    "/docs-assets/%2E%2E/%2E%2E/__init__.py",
    "/docs-assets/..%2f..%2f__init__.py",
    "/docs-assets/%2e%2e%2f%2e%2e%2f__init__.py",
    "/docs-assets/swagger-ui-dist/..%2f..%2f..%2f__init__.py",
    "/docs-assets/..%5c..%5c__init__.py",
    "/docs-assets/%252e%252e/%252e%252e/__init__.py",
    "/docs-assets/%2fetc%2fpasswd",
    "/docs-assets/" + "..%2f" * 12 + "etc%2fpasswd",
]


def assert_refused(status: int, body: bytes, url: str) -> None:
    assert status in {400, 404}, (url, status)
    assert b"root:" not in body and b"AppConfig" not in body and b"import" not in body, url


@pytest.mark.parametrize("url", TRAVERSALS)
def test_encoded_path_traversal_is_refused(docs_client: TestClient, url: str) -> None:
    assert (asset_directory().parent.parent / "__init__.py").is_file()  # the target exists
    response = docs_client.get(url)
    assert_refused(response.status_code, response.content, url)


# -- djfapi.ops.docs on apps of its own ---------------------------------------------------


def routes_at(app: FastAPI, path: str) -> list[Any]:
    return [route for route in app.router.routes if getattr(route, "path", None) == path]


def test_fastapis_cdn_pages_are_replaced_not_duplicated() -> None:
    app = FastAPI()
    assert "cdn" in TestClient(app).get("/docs").text  # FastAPI's own page, the one that is blank offline
    serve_docs(app)
    serve_docs(app)  # twice is the same as once
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/docs-assets"):
        assert len(routes_at(app, path)) == 1, path
    client = TestClient(app)
    assert_offline_page(client, "/docs")
    assert_offline_page(client, "/redoc")
    assert client.get("/openapi.json").status_code == 200


def test_an_app_created_without_docs_gets_them() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    serve_docs(app)
    client = TestClient(app)
    for url in assert_offline_page(client, "/docs"):
        assert_served_asset(client, url)
    assert_offline_page(client, "/redoc")
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert (app.docs_url, app.redoc_url) == ("/docs", "/redoc")


def test_the_apps_docs_settings_and_the_root_path_are_honoured() -> None:
    app = FastAPI(
        title="Shop",
        openapi_url="/api/schema.json",
        swagger_ui_parameters={"deepLinking": False, "docExpansion": "none"},
        swagger_ui_init_oauth={"clientId": "shop-docs"},
        swagger_ui_oauth2_redirect_url="/api-docs/callback",
    )
    serve_docs(app, docs_url="/api-docs", redoc_url="/api-redoc", assets_url="/static-docs/")
    client = TestClient(app, root_path="/proxy")  # served under /proxy, as with uvicorn --root-path /proxy

    page = client.get("/proxy/api-docs").text
    assert "<title>Shop - Swagger UI</title>" in page
    assert "url: '/proxy/api/schema.json'" in page
    assert '"deepLinking": false' in page and '"docExpansion": "none"' in page
    assert 'ui.initOAuth({"clientId": "shop-docs"})' in page
    assert "window.location.origin + '/proxy/api-docs/callback'" in page
    for url in assert_offline_page(client, "/proxy/api-docs"):
        assert url.startswith("/proxy/static-docs/swagger-ui-dist/"), url
        assert_served_asset(client, url)
    assert client.get("/proxy/api-docs/callback").status_code == 200

    redoc = client.get("/proxy/api-redoc").text
    assert "<title>Shop - ReDoc</title>" in redoc and 'spec-url="/proxy/api/schema.json"' in redoc
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):  # FastAPI's pages are gone
        assert client.get(f"/proxy{path}").status_code == 404, path

    app.root_path = "/mounted"  # FastAPI puts app.root_path into every request's scope
    assert "url: '/mounted/api/schema.json'" in TestClient(app).get("/api-docs").text


def test_the_docs_routes_come_before_a_catch_all_added_earlier() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)

    @app.get("/{anything:path}", include_in_schema=False)
    def catch_all(anything: str) -> dict[str, str]:
        return {"caught": anything}

    serve_docs(app)
    client = TestClient(app)
    assert_offline_page(client, "/docs")
    assert client.get("/docs-assets/swagger-ui-dist/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert client.get("/elsewhere").json() == {"caught": "elsewhere"}


def test_each_page_can_be_left_out_or_both_turned_off() -> None:
    redoc_only = FastAPI()
    serve_docs(redoc_only, docs_url=None)
    client = TestClient(redoc_only)
    assert client.get("/docs").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404
    assert_offline_page(client, "/redoc")

    none = FastAPI()
    serve_docs(none, docs_url=None, redoc_url=None)
    client = TestClient(none)
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/docs-assets/swagger-ui-dist/swagger-ui.css"):
        assert client.get(path).status_code == 404, path
    assert client.get("/openapi.json").status_code == 200  # the document itself stays


def test_an_app_without_an_openapi_document_is_refused_with_the_fix() -> None:
    app = FastAPI(openapi_url=None)
    with pytest.raises(ImproperlyConfigured, match=r"openapi_url=None.*'/openapi.json'.*docs_url=None, redoc_url=None"):
        serve_docs(app)
    serve_docs(app, docs_url=None, redoc_url=None)  # asking for no pages needs no document
    assert TestClient(app).get("/docs").status_code == 404


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"docs_url": "docs"}, "docs_url='docs' must be a path below '/'"),
        ({"assets_url": "/"}, "assets_url='/' must be a path below '/'"),
        ({"redoc_url": "/openapi.json"}, "is the app's openapi_url"),
        ({"docs_url": "/api", "redoc_url": "/api"}, "give ReDoc its own path"),
    ],
)
def test_unusable_urls_are_refused_at_definition_time(options: dict[str, str], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        serve_docs(FastAPI(), **options)


def test_the_documentation_example_serves_offline_docs() -> None:
    """``docs/openapi.md`` shows its code only by including the file that this test runs."""
    page = DOCS_PAGE.read_text()
    assert '--8<-- "docs_src/openapi/serve_docs.py"' in page
    fenced = re.findall(r"```python\n(.*?)```", page, re.S)
    assert fenced and all(block.strip().startswith("--8<--") for block in fenced), fenced

    example = runpy.run_path(str(DOCS_EXAMPLE), run_name="docs_example")
    client = TestClient(example["app"])
    for page_url in ("/docs", "/redoc"):
        for url in assert_offline_page(client, page_url):
            assert_served_asset(client, url)
    assert client.get("/items/3").json() == {"item_id": 3}


# -- a real browser --------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIRTUAL_TIME_BUDGET_MS = 20_000  # virtual time: a fast render does not wait for it in real time
CHROMIUM_TIMEOUT = 45.0  # real seconds for one dump; a render takes about 3
ATTEMPTS = 3


def chromium_binary() -> str:
    """Debian's Chromium; its absence skips the browser tests, or fails them under CI=true."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found:
        return found
    reason = "Chromium is not installed (apt-get install chromium): the real-browser docs tests need it"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, where .ci/run installs it, so this must not be skipped")
    pytest.skip(reason)


@dataclass(frozen=True)
class Rendered:
    dom: str
    requests: list[str]  # URLs the page's own markup and scripts asked for, Chromium's own traffic left out
    seconds: float


def page_requests(net_log: Path, origin: str) -> list[str]:
    """The URLs of the requests that pages of ``origin`` initiated, to any host.

    A subresource, fetch or image of a page carries the page's origin as initiator;
    Chromium's own requests (update checks, account probes, autofill queries about the
    page) are initiated by the browser ("not an origin"), as is the navigation itself.
    """
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] != start_job or "url" not in params:
            continue
        if params.get("initiator") == origin:
            urls.append(params["url"])
    return urls


def render(chromium: str, url: str, workdir: Path, ready: Callable[[str], bool]) -> Rendered:
    """The DOM of ``url`` after its scripts ran; retried when a dump comes back unrendered."""
    problems = []
    for attempt in range(1, ATTEMPTS + 1):
        profile, net_log = workdir / f"profile-{attempt}", workdir / f"net-{attempt}.json"
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--log-net-log={net_log}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            "--dump-dom",
            url,
        ]
        started = time.monotonic()
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            problems.append(f"attempt {attempt}: no dump within {CHROMIUM_TIMEOUT} s")
            continue
        seconds = time.monotonic() - started
        if result.returncode != 0 or not ready(result.stdout):
            stderr = result.stderr.strip().splitlines()[-3:]
            problems.append(f"attempt {attempt}: exit {result.returncode}, {len(result.stdout)} chars, {stderr}")
            continue
        try:
            requests = page_requests(net_log, f"{urlsplit(url).scheme}://{urlsplit(url).netloc}")
        except (OSError, ValueError, KeyError) as error:
            problems.append(f"attempt {attempt}: unreadable network log: {error!r}")
            continue
        return Rendered(result.stdout, requests, seconds)
    pytest.fail(f"Chromium did not render {url}:\n" + "\n".join(problems))


def assert_only_this_host(rendered: Rendered, server: LiveServer, *expected_paths: str) -> None:
    """The page asked for nothing but ``server``, and for at least ``expected_paths``."""
    host = urlsplit(server.base_url).netloc
    foreign = [url for url in rendered.requests if urlsplit(url).netloc != host]
    assert not foreign, f"the page asked other hosts: {foreign}"
    asked = {urlsplit(url).path for url in rendered.requests}
    assert set(expected_paths) <= asked, (expected_paths, asked)


@pytest.fixture(scope="module")
def live_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The demo under a real uvicorn; the docs pages need no database rows, so SQLite will do."""
    log_dir = tmp_path_factory.mktemp("docs-ui")
    server = start_server("docs_ui", log_dir, url=f"sqlite:///{log_dir / 'docs.sqlite3'}", label="docs-ui")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def openapi(live_demo: LiveServer) -> dict[str, Any]:
    return httpx.get(f"{live_demo.base_url}/openapi.json", timeout=10).json()


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, operationId) of every operation in the document."""
    return [
        (method, path, operation["operationId"])
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


@pytest.mark.parametrize(
    "raw_path", ["/docs-assets/../../__init__.py", "/docs-assets/swagger-ui-dist/../../../../etc/passwd"]
)
def test_literal_dot_segments_are_refused_by_the_real_server(live_demo: LiveServer, raw_path: str) -> None:
    """HTTP clients resolve ``..`` before sending; a raw request line shows what the server does with it."""
    host, port = urlsplit(live_demo.base_url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("GET", raw_path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        assert_refused(response.status, response.read(), raw_path)
    finally:
        connection.close()


def test_swagger_ui_renders_every_operation_in_chromium(
    live_demo: LiveServer, openapi: dict[str, Any], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    chromium = chromium_binary()
    rendered = render(chromium, f"{live_demo.base_url}/docs", tmp_path, lambda dom: "opblock-summary" in dom)

    shown = Counter(
        (method, unescape(path))
        for method, path in re.findall(
            r'class="opblock-summary opblock-summary-(\w+)".*?data-path="([^"]*)"', rendered.dom, re.S
        )
    )
    expected = Counter((method, path) for method, path, _ in operations(openapi))
    assert shown == expected
    assert ("get", "/companies/{company_id}") in shown and ("patch", "/companies/{company_id}") in shown
    assert_only_this_host(rendered, live_demo, "/openapi.json", "/docs-assets/swagger-ui-dist/swagger-ui-bundle.js")
    record(
        request.config, f"Swagger UI in Chromium: {sum(shown.values())} operations rendered in {rendered.seconds:.1f} s"
    )


def test_redoc_renders_every_operation_in_chromium(
    live_demo: LiveServer, openapi: dict[str, Any], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    chromium = chromium_binary()
    # ReDoc gives each operation a section "operation/<operationId>" (inside "tag/<tag>/operation/...").
    section = re.compile(r'data-section-id="operation/([^"]+)"')
    rendered = render(chromium, f"{live_demo.base_url}/redoc", tmp_path, lambda dom: bool(section.search(dom)))

    shown = sorted(unescape(operation_id) for operation_id in section.findall(rendered.dom))
    assert shown == sorted(operation_id for _, _, operation_id in operations(openapi))
    assert "/companies/{company_id}" in rendered.dom
    assert_only_this_host(rendered, live_demo, "/openapi.json", "/docs-assets/redoc/bundles/redoc.standalone.js")
    record(request.config, f"ReDoc in Chromium: {len(shown)} operations rendered in {rendered.seconds:.1f} s")
