"""Constants of the HTTP contract that both the schemas and the app need (schemas import no app)."""

API_PREFIX = "/api/v1"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

# Read-your-writes across replicas: every write answers the sequence number it committed at;
# a read that sends it back is served a state at least that new (api/db.py).
SEQ_HEADER = "Dataset-Seq"
MIN_SEQ_HEADER = "Min-Dataset-Seq"
