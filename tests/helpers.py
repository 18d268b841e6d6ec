"""Small helpers shared by the tests."""

import re
from pathlib import Path

import yaml

from api.dataset import FACT_FILES
from schemas.facts import COLLECTIONS

LINK = re.compile(r'<([^>]+)>; rel="([^"]+)"')


def links(response) -> dict[str, str]:
    return {rel: url for url, rel in LINK.findall(response.headers.get("Link", ""))}


def walk(client, url: str) -> list[dict]:
    """Every item of a paginated list, following the `next` links."""
    items: list[dict] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.json
        items += response.json
        url = links(response).get("next")
    return items


def shipped_records(data_dir: Path) -> dict[str, list[dict]]:
    """The records of each fact collection, as the YAML files hold them."""
    return {
        COLLECTIONS[fact_type]: yaml.safe_load((data_dir / name).read_text(encoding="utf-8")) or []
        for fact_type, name in FACT_FILES.items()
    }
