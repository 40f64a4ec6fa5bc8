"""The served OpenAPI schema against the public contract, and the docs pages.

The contract is docs/contract/update-snapshot.openapi.yaml, an unchanged copy
of the published description of ``PATCH /api/sandboxes``. The service may
add to it (nullability, status codes, constraints) but must not contradict
it.
"""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import jsonschema_rs
import pytest
import yaml
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sandboxes.serializers import SnapshotUpdateSerializer

CONTRACT_PATH = (
    Path(__file__).resolve().parent.parent
    / "docs"
    / "contract"
    / "update-snapshot.openapi.yaml"
)
CONTRACT_STATUS_CODES = ["200", "400", "401", "403"]
ADDED_ERROR_STATUS_CODES = ["404", "411", "413", "415", "429", "503"]
DOCS_PAGES = ["/api/docs/", "/api/redoc/"]


@pytest.fixture(scope="module")
def contract():
    return yaml.safe_load(CONTRACT_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def schema():
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


def resolve(document, node):
    """Follow a local ``$ref`` such as ``#/components/schemas/Name``."""
    while "$ref" in node:
        reference = node["$ref"]
        assert reference.startswith("#/"), reference
        node = document
        for part in reference[2:].split("/"):
            node = node[part]
    return node


def operation(document):
    return document["paths"]["/api/sandboxes"]["patch"]


def request_component(document):
    body = operation(document)["requestBody"]
    return resolve(document, body["content"]["application/json"]["schema"])


def response_component(document, status):
    response = operation(document)["responses"][status]
    return resolve(document, response["content"]["application/json"]["schema"])


def allowed_types(contract_property):
    """The ``type`` values that agree with a contract property: its type, or
    its type with null, which the service adds for fields that can be unset."""
    base = contract_property["type"]
    return [base, [base, "null"]]


# The schema itself.


def test_openapi_version_is_3_1(schema, contract):
    assert re.fullmatch(r"3\.1\.\d+", schema["openapi"]), schema["openapi"]
    assert re.fullmatch(r"3\.1\.\d+", contract["openapi"]), contract["openapi"]


def test_sandboxes_path_has_patch(schema):
    assert "/api/sandboxes" in schema["paths"]
    assert "patch" in schema["paths"]["/api/sandboxes"]


def test_request_body_required_as_in_contract(schema, contract):
    assert operation(contract)["requestBody"]["required"] is True
    assert operation(schema)["requestBody"].get("required") is True


def test_request_body_required_by_view(api_client, raw_key):
    # The schema marks the body required, so the view must reject a request
    # without one.
    response = api_client.patch("/api/sandboxes", HTTP_X_API_KEY=raw_key)
    assert response.status_code == 400, response.content
    assert "body is empty" in response.json()["error"]


@pytest.mark.parametrize(
    ("name", "component"),
    [
        ("UpdateSnapshotRequest", request_component),
        (
            "UpdateSnapshotResponse",
            lambda document: response_component(document, "200"),
        ),
    ],
    ids=["request", "response"],
)
def test_component_properties_match_contract(schema, contract, name, component):
    ours = component(schema)
    theirs = component(contract)
    assert ours == schema["components"]["schemas"][name]
    assert theirs == contract["components"]["schemas"][name]
    assert ours["type"] == theirs["type"] == "object"
    assert set(ours["properties"]) == set(theirs["properties"])
    for field, contract_property in theirs["properties"].items():
        served = ours["properties"][field]
        assert served["type"] in allowed_types(contract_property), field
        assert served.get("format") == contract_property.get("format"), field


def test_request_required_fields_match_contract(schema, contract):
    assert contract["components"]["schemas"]["UpdateSnapshotRequest"]["required"] == []
    assert request_component(schema).get("required", []) == []


def test_response_required_fields_match_contract(schema, contract):
    expected = set(
        contract["components"]["schemas"]["UpdateSnapshotResponse"]["required"]
    )
    assert expected == {
        "account_id",
        "snapshot_id",
        "expires_at",
        "github_repo",
        "created_at",
    }
    assert set(response_component(schema, "200")["required"]) == expected


def test_contract_status_codes_match(contract):
    assert sorted(operation(contract)["responses"]) == CONTRACT_STATUS_CODES


@pytest.mark.parametrize("status", CONTRACT_STATUS_CODES + ADDED_ERROR_STATUS_CODES)
def test_status_code_documented(schema, status):
    response = operation(schema)["responses"][status]
    assert "application/json" in response["content"]


@pytest.mark.parametrize("status", CONTRACT_STATUS_CODES[1:] + ADDED_ERROR_STATUS_CODES)
def test_error_schema_requires_error_string(schema, status):
    error = response_component(schema, status)
    assert "error" in error["required"]
    assert error["properties"]["error"]["type"] == "string"


def test_contract_error_schema_requires_error_string(contract):
    error = contract["components"]["schemas"]["SandboxErrorResponse"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["type"] == "string"


def test_security_schemes_defined(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"]["type"] == "apiKey"
    assert schemes["ApiKeyAuth"]["in"] == "header"
    assert schemes["ApiKeyAuth"]["name"] == "x-api-key"
    assert schemes["BearerAuth"]["type"] == "http"
    assert schemes["BearerAuth"]["scheme"] == "bearer"


def test_operation_accepts_either_scheme(schema):
    # Two requirement objects mean either one; one object with both names
    # would mean both headers at once, which the API rejects.
    assert operation(schema)["security"] == [{"ApiKeyAuth": []}, {"BearerAuth": []}]


def test_request_forbids_unknown_fields(schema):
    assert request_component(schema)["additionalProperties"] is False


# The request schema must describe exactly the values the serializer accepts,
# because Schemathesis expects 2xx for every value the schema allows and 4xx
# for every value it forbids.


@pytest.fixture(scope="module")
def request_validator(schema):
    """A validator of UpdateSnapshotRequest with format checks on, the
    validator Schemathesis uses."""
    return jsonschema_rs.Draft202012Validator(
        request_component(schema), validate_formats=True
    )


def serializer_accepts(body):
    return SnapshotUpdateSerializer(data=body).is_valid()


SCHEMES = st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "http:/", ""])
HOSTS = st.sampled_from(
    [
        "github.com",
        "localhost",
        "a.bc",
        "a-.bc",
        "a.b-c",
        "a",
        "xn--p1ai.xn--p1ai",
        "1.2.3.4",
        "256.1.1.1",
        "01.2.3.4",
        "[::1]",
        "[1::2::3]",
        "[::ffff:1.2.3.4]",
        "[1:2:3:4:5:6:7:8]",
        "[1111:2222:3333:4444:5555:6666:1.2.3.4]",
        "user@github.com",
        "a?b@github.com",
        "a" * 250 + ".com",
        "",
    ]
)
TAIL_PIECES = st.sampled_from(
    [
        ":8080",
        ":",
        "/",
        "/org/repo",
        "?q=1",
        "#readme",
        "%41",
        "%4",
        "%zz",
        *"<>{}|^`[]@#?:.-~",
    ]
)
URL_LIKE = st.builds(
    "".join,
    st.tuples(
        SCHEMES,
        HOSTS,
        st.lists(st.one_of(TAIL_PIECES, st.text(max_size=3)), max_size=6).map("".join),
    ),
)

PARITY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def github_repo_values(schema):
    pattern = request_component(schema)["properties"]["github_repo"]["pattern"]
    return st.one_of(URL_LIKE, st.from_regex(pattern, fullmatch=True))


@pytest.mark.parametrize(
    "value",
    [
        "https://github.com/org/repo",
        "HTTPS://GITHUB.COM/org/repo.git",
        "https://github.example.com:8443/a/b?x=1#frag",
        "http://localhost:9000/",
        "http://[::1]/repo",
        "http://1.2.3.4/repo",
        "https://github.com/org/repo?q=a%20b",
        "https://github.com/org/a@b:c",
        "https://github.com/<org>",
        "https://github.com/org/%zz",
        "https://github.com/org#a#b",
        "http://a?b@github.com",
        "https://user@github.com/org/repo",
        "https://" + "a" * 250 + ".com",
        "https://github.com/" + "a" * 2030,
        "ftp://github.com/org/repo",
        "github.com/org/repo",
        "",
    ],
)
def test_github_repo_example_agrees(request_validator, value):
    body = {"github_repo": value}
    assert request_validator.is_valid(body) == serializer_accepts(body)


def test_github_repo_schema_agrees(schema, request_validator):
    @PARITY_SETTINGS
    @given(value=github_repo_values(schema))
    def check(value):
        body = {"github_repo": value}
        assert request_validator.is_valid(body) == serializer_accepts(body)

    check()


@PARITY_SETTINGS
@given(
    value=st.one_of(
        st.text(max_size=300),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7F), max_size=260),
        st.from_regex(r"[\x21-\x7e]{1,255}", fullmatch=True),
    )
)
@example("")
@example("a" * 255)
@example("a" * 256)
@example("snap abc")
def test_snapshot_id_schema_agrees(request_validator, value):
    body = {"snapshotId": value}
    assert request_validator.is_valid(body) == serializer_accepts(body)


@PARITY_SETTINGS
@given(
    value=st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda value: str(value).upper()),
        st.uuids().map(lambda value: value.hex),
        st.uuids().map(lambda value: "{" + str(value) + "}"),
        st.text(max_size=40),
        st.none(),
        st.integers(),
    )
)
def test_account_id_schema_agrees(request_validator, value):
    body = {"account_id": value}
    assert request_validator.is_valid(body) == serializer_accepts(body)


# The docs pages and the files they load.


class AssetCollector(HTMLParser):
    """Collect the URLs a page loads: script sources, stylesheets and icons."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])
        if tag == "img" and attributes.get("src"):
            self.urls.append(attributes["src"])


@pytest.fixture
def static_client(settings):
    # Tests run with DEBUG off and without collectstatic, so WhiteNoise
    # serves the files from the staticfiles finders, as it does in
    # development.
    settings.WHITENOISE_USE_FINDERS = True
    return Client()


def page_assets(html):
    collector = AssetCollector()
    collector.feed(html)
    return collector.urls


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_page_served(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_page_names_no_other_host(client, path):
    html = client.get(path).content.decode()
    assert re.findall(r"https?://[^\s\"'<>]*", html) == []
    assert re.findall(r"(?:src|href)\s*=\s*[\"']//", html) == []


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_assets_served_locally(static_client, path):
    html = static_client.get(path).content.decode()
    assets = page_assets(html)
    assert assets, html
    for url in assets:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        response = static_client.get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content), url


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_stylesheets_import_nothing_remote(static_client, path):
    html = static_client.get(path).content.decode()
    for url in page_assets(html):
        if not url.endswith(".css"):
            continue
        css = b"".join(static_client.get(url).streaming_content).decode()
        assert re.findall(r"url\(\s*[\"']?(?:https?:)?//", css) == [], url
        assert "@import" not in css, url


def test_swagger_ui_online_validator_off(client):
    # Swagger UI's default validatorUrl loads a badge image from
    # validator.swagger.io, sending it the schema URL, for every host but
    # localhost and 127.0.0.1.
    html = client.get("/api/docs/").content.decode()
    match = re.search(r"const swaggerSettings = (\{.*?\});", html, re.DOTALL)
    assert match, html
    assert json.loads(match.group(1)).get("validatorUrl", "unset") in (None, "none")


def content_security_policy(response):
    """Return the page's Content-Security-Policy, from the header or from a
    ``<meta http-equiv>`` tag, as a mapping of directive to sources."""
    policy = response.get("Content-Security-Policy")
    if policy is None:
        match = re.search(
            r"<meta\s+http-equiv=[\"']Content-Security-Policy[\"']\s+"
            r"content=[\"']([^\"']*)[\"']",
            response.content.decode(),
            re.IGNORECASE,
        )
        policy = match.group(1) if match else ""
    directives = {}
    for directive in policy.split(";"):
        if directive.strip():
            name, *sources = directive.split()
            directives[name.lower()] = sources
    return directives


def remote_sources(script):
    """Return the hard-coded ``src`` URLs on other hosts in a bundle."""
    return re.findall(r"\bsrc\s*:\s*[\"'`](https?://[^\"'`]+)", script)


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_page_blocks_remote_images(static_client, path):
    # Redoc's bundle shows a logo from cdn.redoc.ly in its side menu. A
    # page whose scripts name such sources must forbid loading them.
    response = static_client.get(path)
    remote = []
    for url in page_assets(response.content.decode()):
        if url.endswith(".js"):
            script = b"".join(static_client.get(url).streaming_content).decode()
            remote += remote_sources(script)
    if not remote:
        return
    policy = content_security_policy(response)
    image_sources = policy.get("img-src", policy.get("default-src"))
    assert image_sources is not None, (remote, policy)
    for source in image_sources:
        assert source in ("'self'", "data:", "blob:"), (remote, source)


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_schema_and_docs_errors_are_json(path):
    response = Client().patch(path, "{}", content_type="application/json")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith(f"PATCH is not allowed on {path}.")
