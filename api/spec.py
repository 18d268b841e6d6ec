"""The OpenAPI document, written to and compared with the committed `openapi.yaml`."""

import json

import yaml
from flask import Flask


def spec_dict(app: Flask) -> dict:
    with app.app_context():
        # A JSON round trip turns the spec into plain types that YAML writes cleanly.
        return json.loads(json.dumps(app.extensions["smorest_api"].spec.to_dict()))


def spec_yaml(app: Flask) -> str:
    return yaml.safe_dump(spec_dict(app), sort_keys=True, allow_unicode=True, width=100)
