"""Constants of the HTTP contract that both the schemas and the app need (schemas import no app)."""

API_PREFIX = "/api/v1"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
