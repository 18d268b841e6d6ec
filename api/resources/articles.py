"""Source articles and the records that cite them."""

from flask.views import MethodView

from schemas.articles import ArticleDetailSchema, ArticleSchema
from schemas.facts import FactsByTypeSchema
from schemas.queries import ArticleFactsQuerySchema, ArticleQuerySchema, AsOfQuerySchema

from .. import records, store
from ..db import db
from ..smorest import PAGE_HEADERS, Blueprint, abort_not_found, path_parameter
from . import editing, listing

blp = Blueprint(
    "articles",
    __name__,
    url_prefix="/articles",
    description="The source articles: metadata, full text and the records that cite them.",
)
ARTICLE_ID = path_parameter("article_id", "Article id.", "after-russia-kill-or-be-killed")
WRITES = editing.WriteDocs(
    singular="Article",
    create="Add a source article: its text and metadata. The server computes `sha256` and "
    "`word_count`.",
    change="The text cannot change once a record cites it (409): a corrected text is a new "
    "article.",
    delete="Needs an admin's token. An article that records still cite cannot be deleted (409).",
    delete_needs="delete_sources",
)


@blp.route("")
class ArticleList(editing.list_writes(blp, "article", ArticleDetailSchema, WRITES), MethodView):
    @blp.arguments(ArticleQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.list_response(ArticleSchema)
    @blp.doc(operationId="listArticles")
    def get(self, sort, page_size=None, cursor=None, format=None):
        """List source articles

        Articles without their text (fetch one article for that), in id order by default.
        """
        stmt = store.article_query()
        return listing.respond(
            stmt,
            store.ARTICLE_SORTS,
            sort,
            page_size,
            cursor,
            records.LIST_SCHEMAS["article"],
            "articles",
            stored=True,
        )


@blp.route("/<slug:article_id>", parameters=[ARTICLE_ID])
class ArticleDetail(
    editing.detail_writes(blp, "article", ArticleDetailSchema, "article_id", WRITES), MethodView
):
    @blp.arguments(AsOfQuerySchema, location="query", as_kwargs=True)
    @blp.record_etag
    @blp.response(200, ArticleDetailSchema)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.alt_response(410, "GONE")
    @blp.doc(operationId="getArticle")
    def get(self, article_id: str, as_of: int | None = None):
        """Get one article

        The article's metadata and its full stored text, which citations index into.
        """
        return editing.shown(blp, "article", article_id, as_of)


@blp.route("/<slug:article_id>/facts", parameters=[ARTICLE_ID])
class ArticleFacts(MethodView):
    @blp.arguments(ArticleFactsQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.response(200, FactsByTypeSchema, description=listing.LINKED_PAGE, headers=PAGE_HEADERS)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.doc(operationId="listArticleFacts")
    def get(self, article_id: str, page_size=None, cursor=None):
        """List the records citing an article

        The decrees, campaigns, penalties and events that cite the article, a page at a time
        in id order, grouped by type.
        """
        if store.get_article(db.session(), article_id) is None:
            abort_not_found("article", article_id)
        return listing.respond_linked_facts(
            "article", article_id, ArticleFactsQuerySchema.order, page_size, cursor, "article_facts"
        )


editing.revision_routes(blp, "article", ARTICLE_ID, "Article", ArticleDetailSchema)
