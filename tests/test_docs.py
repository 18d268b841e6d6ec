"""The OpenAPI document: generated from the code, committed in sync, valid, and complete."""

import re

import yaml
from openapi_spec_validator import validate

from api.config import PROJECT_DIR
from api.spec import spec_yaml

COMMITTED = PROJECT_DIR / "openapi.yaml"
UNVERSIONED = ("/healthz", "/readyz", "/metrics")  # operations, outside the versioned API


def test_committed_spec_matches_the_code(loaded_app):
    assert COMMITTED.read_text(encoding="utf-8") == spec_yaml(loaded_app), (
        "openapi.yaml is stale: run `make spec` and commit it"
    )


def test_served_spec_is_valid_openapi_3_1_and_equals_the_committed_one(client):
    served = client.get("/api/v1/openapi.json").json
    validate(served)
    assert served["openapi"] == "3.1.0"
    assert served == yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))


def test_every_operation_is_documented(client):
    spec = client.get("/api/v1/openapi.json").json
    operation_ids = []
    for path, operations in spec["paths"].items():
        assert path.startswith("/api/v1/") or path in UNVERSIONED, path
        assert not path.endswith("/")
        for parameter in operations.get("parameters", []):
            assert parameter.get("description"), (path, parameter["name"])
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("summary"), (method, path)
            assert operation.get("description"), (method, path)
            operation_ids.append(operation["operationId"])
            for parameter in operation.get("parameters", []):
                if "$ref" not in parameter:
                    assert parameter.get("description"), (method, path, parameter["name"])
    assert len(operation_ids) == len(set(operation_ids))


def test_every_schema_field_has_a_description_and_example(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    for name, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field} has no description"
            assert "example" in prop, f"{name}.{field} has no example"


def test_every_list_endpoint_is_served_and_documented(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for collection in ("articles", "decrees", "campaigns", "penalties", "events", "actors"):
        assert f"/api/v1/{collection}" in paths
        assert client.get(f"/api/v1/{collection}").status_code == 200


def test_swagger_ui_uses_only_the_apps_own_assets(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/v1/openapi.json" in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, "no assets referenced"
    assert not [u for u in urls if "//" in u], "Swagger UI must not load from another host"
    for url in urls:
        with client.get(url) as asset:
            assert asset.status_code == 200, url
            assert len(asset.data) > 1000, url
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls)
