"""The spec's examples work as they stand: Swagger UI's "Try it out" fills every parameter
with its example, and each operation so called answers records of the shipped dataset."""

import jsonschema

from schemas.contract import API_PREFIX


def prefilled(parameter: dict):
    """What Swagger UI fills a parameter with: its example, else its schema's, else the default."""
    schema = parameter.get("schema", {})
    for value in (parameter.get("example"), schema.get("example"), schema.get("default")):
        if value is not None:
            return value
    return None


def example_request(path: str, parameters: list[dict]) -> tuple[str, dict[str, str]]:
    """The URL path and query string of a call with every parameter's example."""
    query = {}
    for parameter in parameters:
        if "$ref" in parameter:  # If-None-Match, which has no example
            continue
        value = prefilled(parameter)
        if parameter["in"] == "path":
            assert value is not None, f"{path}: {parameter['name']} has no example"
            path = path.replace(f"{{{parameter['name']}}}", str(value))
        elif parameter["in"] == "query" and value is not None:
            # Swagger UI checks a value against its schema before sending it.
            jsonschema.validate(value, parameter["schema"])
            query[parameter["name"]] = str(value).lower() if isinstance(value, bool) else value
    return path, query


def test_every_operation_answers_records_when_called_with_its_examples(client):
    spec = client.get("/api/v1/openapi.json").json
    reads = {
        path: item["get"]
        for path, item in spec["paths"].items()
        if path.startswith(API_PREFIX) and "get" in item  # not the probes: /healthz, /metrics
    }
    problems = {}
    for template, operation in reads.items():
        parameters = [
            *spec["paths"][template].get("parameters", []),
            *operation.get("parameters", []),
        ]
        path, query = example_request(template, parameters)
        response = client.get(path, query_string=query)
        content = operation["responses"]["200"]["content"]
        if "application/json" not in content:  # a stream only: NDJSON lines
            if response.status_code != 200 or response.mimetype not in content:
                problems[template] = (response.status_code, query, response.mimetype)
            elif not response.get_data().strip():
                problems[template] = ("an empty stream", query)
            continue
        body = response.json if response.mimetype == "application/json" else None
        schema = content["application/json"]["schema"]
        if response.status_code != 200 or body is None:
            problems[template] = (response.status_code, query, response.get_data(as_text=True))
        elif schema.get("type") == "array" and not body:
            problems[template] = ("an empty list", query)
        elif schema.get("$ref", "").endswith("/Facets") and not all(body.values()):
            problems[template] = ("empty counts", query, body)
        elif not body:
            problems[template] = ("an empty object", query)
    assert reads
    assert not problems, "\n".join(f"{path}: {problem}" for path, problem in problems.items())
