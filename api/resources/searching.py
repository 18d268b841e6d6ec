"""Full-text search across every record type and the article texts."""

from flask.views import MethodView

from schemas.queries import SearchQuerySchema, encode_offset
from schemas.results import SearchHitSchema

from .. import formats, store
from ..config import Config
from ..db import db
from ..smorest import Blueprint, link_header, response_format
from . import listing

blp = Blueprint(
    "search",
    __name__,
    url_prefix="/search",
    description="Full-text search over records and article texts, ranked, with snippets.",
)


@blp.route("")
class Search(MethodView):
    @blp.arguments(SearchQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.list_response(SearchHitSchema, description="One page of hits, best first.")
    @blp.doc(operationId="search")
    def get(self, q, type=None, page_size=None, cursor=0, format=None):
        """Search records and articles

        Every article and record whose text (title, summary, quotes, notes; an article's
        headline and text) contains all the words. `"quoted phrases"` match words in order,
        `prefix*` any word beginning so. Hits come best first (ties by type and id); the same
        query finds the same hits on SQLite and PostgreSQL.
        """
        session = db.session()
        fmt = response_format()
        if fmt != "json" and page_size is None and not cursor:  # every hit, streamed
            hits = store.search_all(session, q, type)
            return formats.streamed(SearchHitSchema(), hits, fmt, "search")
        size = page_size or Config.DEFAULT_PAGE_SIZE
        hits, total = store.search(session, q, type, size, cursor)
        links = [("first", None)]
        if cursor:
            links.append(("prev", encode_offset(max(0, cursor - size))))
        if cursor + size < total:
            links.append(("next", encode_offset(cursor + size)))
        headers = {"Link": link_header(links), "X-Total-Count": str(total)}
        return listing.one_page(SearchHitSchema(), hits, headers, fmt, "search")
