"""Full-text search over records and article texts, on SQLite FTS5 and PostgreSQL alike.

Python tokenises both the indexed text and the query (`tokenize`), so that both engines see
the same words and return the same hits; they differ only in how they rank them (bm25 on
SQLite, ts_rank on PostgreSQL). Query syntax: words (all must match), "quoted phrases",
and a trailing * for a prefix (`mobili*`).
"""

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Select, column, delete, false, func, literal_column, select, table, text
from sqlalchemy.orm import Session

from .models import Article, Fact, SearchDocument

_TOKEN = re.compile(r"[^\W_]+")
_QUERY_PART = re.compile(r'"([^"]*)"|(\S+)')


def tokenize(value: str) -> list[str]:
    return _TOKEN.findall(value.lower())


@dataclass(frozen=True)
class Term:
    tokens: tuple[str, ...]  # several tokens: a phrase, matched in order
    prefix: bool = False  # the last token matches any word it begins


def parse_query(query: str) -> list[Term]:
    """The query's terms; none when it has no word (`€`, `😍`): such a query matches nothing."""
    terms = []
    for phrase, word in _QUERY_PART.findall(query):
        prefix = bool(word) and word.endswith("*")
        tokens = tuple(tokenize(phrase or word))
        if tokens:
            terms.append(Term(tokens, prefix))
    return terms


def _fts5_query(terms: list[Term], doc_types: list[str] | None) -> str:
    """The FTS5 query: every term in `tokens`, and (if given) one of the types in `doc_type`."""
    words = " AND ".join(f'"{" ".join(t.tokens)}"' + ("*" if t.prefix else "") for t in terms)
    query = f"{{tokens}}: ({words})"
    if doc_types:
        query += " AND {doc_type}: (" + " OR ".join(f'"{t}"' for t in doc_types) + ")"
    return query


def _fts_match(terms: list[Term], doc_types: list[str] | None):
    return text("search_fts MATCH :fts_query").bindparams(fts_query=_fts5_query(terms, doc_types))


def _tsquery(terms: list[Term]) -> str:
    def term(t: Term) -> str:
        words = list(t.tokens)
        if t.prefix:
            words[-1] += ":*"
        return "(" + " <-> ".join(words) + ")"

    return " & ".join(term(t) for t in terms)


_FTS = table("search_fts", column("rowid"))
# Each match's type and id, from the index that holds only them (migration 0012), not from
# its whole document row: SQLite would look the row up by rowid unless told.
_KEYS = (
    text("SELECT id, doc_type, doc_id FROM search_documents INDEXED BY search_fts_keys")
    .columns(SearchDocument.id, SearchDocument.doc_type, SearchDocument.doc_id)
    .subquery("documents")
)


def _matching(dialect: str, terms: list[Term], doc_types: list[str] | None) -> Select:
    """The matching search documents of these types (None: all): their id, doc_type and doc_id
    and their relevance `score` (higher is better)."""
    if dialect == "sqlite":
        # The types are matched inside FTS5 (migration 0003): a condition on
        # search_documents.doc_type could lead SQLite to test every document of a type.
        return (
            select(*_KEYS.c, _bm25().label("score"))
            .select_from(_FTS)
            .join(_KEYS, _KEYS.c.id == _FTS.c.rowid)
            .where(_fts_match(terms, doc_types))
        )
    vector = literal_column("search_documents.tsv")  # to_tsvector('simple', tokens), stored
    query = func.to_tsquery(literal_column("'simple'"), _tsquery(terms))
    columns = (SearchDocument.id, SearchDocument.doc_type, SearchDocument.doc_id)
    stmt = select(*columns, func.ts_rank(vector, query).label("score")).where(
        vector.op("@@")(query)
    )
    return stmt.where(SearchDocument.doc_type.in_(doc_types)) if doc_types else stmt


def _bm25():
    return -func.bm25(literal_column("search_fts"), 1.0, 0.0)  # the type weighs nothing


def _count(session: Session, dialect: str, terms: list[Term], doc_types: list[str] | None) -> int:
    if dialect == "sqlite":  # FTS5 counts alone, without reading the documents
        stmt = select(func.count()).select_from(_FTS).where(_fts_match(terms, doc_types))
        return session.scalar(stmt) or 0
    matches = _matching(dialect, terms, doc_types)
    matches = matches.with_only_columns(matches.selected_columns.id)
    return session.scalar(select(func.count()).select_from(matches.subquery())) or 0


def matching_ids(dialect: str, query: str, doc_types: list[str]) -> Select:
    """Ids of the documents of these types that match the query (the lists' `q` filter)."""
    terms = parse_query(query)
    if not terms:
        return select(SearchDocument.doc_id).where(false())
    matches = _matching(dialect, terms, doc_types)
    return matches.with_only_columns(matches.selected_columns.doc_id, maintain_column_froms=False)


@dataclass
class Hit:
    type: str
    id: str
    title: str
    score: float
    snippet: str


class Ranked(NamedTuple):
    id: int  # the search document's
    doc_type: str
    doc_id: str
    score: float


def rank(
    session: Session, terms: list[Term], types: list[str] | None, limit: int, offset: int
) -> tuple[list[Ranked], int]:
    """The hits from `offset` on, best first (ties by type and id), and the total number of
    hits.

    Ranked on the documents' keys and scores alone: only a page's own documents are then read
    whole (`hits`).
    """
    if not terms:
        return [], 0
    dialect = session.get_bind().dialect.name
    stmt = _matching(dialect, terms, types)
    if dialect != "sqlite":
        # Counted in the same pass over the matches as the ranking, over the scored keys: a
        # window over the documents themselves carried their vectors (to temporary files).
        # OFFSET 0 keeps PostgreSQL from merging the two.
        scored = stmt.offset(0).subquery()
        stmt = select(*scored.c, func.count().over().label("total"))
    ranked = session.execute(_best_first(stmt).limit(limit).offset(offset)).all()
    total = ranked[0].total if ranked and dialect != "sqlite" else None
    if total is None:  # FTS5 counts from its index alone; past the last page there is no row
        total = _count(session, dialect, terms, types)
    return [_ranked(row) for row in ranked], total


def best(
    session: Session, terms: list[Term], types: list[str] | None, size: int
) -> tuple[list[Ranked], int]:
    """The first hits in `rank`'s order, up to `size` of them (fewer when scores tie at the
    end: see below), and the total number of hits.

    On SQLite the scores are ranked by FTS5 alone, and only the best `size` + 1
    are then looked up for their type and id: a common word's 300k matches cost their
    scores, not their keys too. Hits of equal score go by type and id, which only the keys
    tell: a score shared with the first hit left out may have more hits beyond it, so those
    are dropped and the window ends where one score does.
    """
    dialect = session.get_bind().dialect.name
    if not terms or dialect != "sqlite":
        return rank(session, terms, types, size, 0)
    score = _bm25().label("score")
    best_scores = (  # by FTS5 alone: no match is read beyond its entry in the index
        select(_FTS.c.rowid, score)
        .where(_fts_match(terms, types))
        .order_by(score.desc())
        .limit(size + 1)
    )
    scores = session.connection().execute(best_scores).all()
    every_hit = len(scores) <= size
    if not every_hit:
        cut = scores[-1][1]
        scores = [(id_, value) for id_, value in scores if value > cut]
        if not scores:  # more than `size` hits share the best score
            return rank(session, terms, types, size, 0)
    by_id = dict(scores)
    keys = session.execute(select(*_KEYS.c).where(_KEYS.c.id.in_(by_id))).all()
    window = [Ranked(id_, doc_type, doc_id, by_id[id_]) for id_, doc_type, doc_id in keys]
    total = len(window) if every_hit else _count(session, dialect, terms, types)
    return sorted(window, key=_best_first_key), total


def _ranked(row) -> Ranked:
    return Ranked(*row[:4])  # a third of a Row's size, to be kept


def _best_first_key(hit: Ranked) -> tuple:
    # _best_first's order; str order is SQLite's BINARY collation (UTF-8 sorts by code point)
    return -hit.score, hit.doc_type, hit.doc_id


def rank_all(
    session: Session, terms: list[Term], types: list[str] | None, batch: int
) -> Iterator[Ranked]:
    """Every hit, best first, fetched `batch` at a time (a common word has 300k)."""
    if not terms:
        return
    stmt = _best_first(_matching(session.get_bind().dialect.name, terms, types))
    for row in session.execute(stmt.execution_options(yield_per=batch)):
        yield Ranked(*row)


def _best_first(stmt: Select) -> Select:
    columns = stmt.selected_columns
    return stmt.order_by(literal_column("score").desc(), columns.doc_type, columns.doc_id)


def hits(session: Session, terms: list[Term], ranked: list[Ranked]) -> list[Hit]:
    """The ranked rows (`rank`) as hits, with their documents' titles and snippets."""
    page = select(SearchDocument).where(SearchDocument.id.in_([hit.id for hit in ranked]))
    by_id = {document.id: document for document in session.scalars(page)} if ranked else {}
    return [
        Hit(
            hit.doc_type,
            hit.doc_id,
            doc.title,
            round(float(hit.score), 6),
            snippet(doc.text, terms),
        )
        for hit in ranked
        if (doc := by_id.get(hit.id))  # not deleted since it was ranked
    ]


def snippet(source: str, terms: list[Term], width: int = 160) -> str:
    """A window of the text around the first match, matched words in <mark>, HTML-escaped."""
    words = {t for term in terms for t in term.tokens}
    prefixes = tuple(term.tokens[-1] for term in terms if term.prefix)

    def matches(word: str) -> bool:
        lowered = word.lower()
        return lowered in words or (bool(prefixes) and lowered.startswith(prefixes))

    spans = [m.span() for m in _TOKEN.finditer(source) if matches(m.group())]
    first = spans[0][0] if spans else 0
    start = source.rfind(" ", 0, max(0, first - width // 3)) + 1  # back to a word start
    end = min(len(source), start + width)
    out, cursor = [], start
    for span_start, span_end in spans:
        if span_start < start or span_end > end:
            continue
        out += [_escape(source[cursor:span_start]), "<mark>"]
        out += [_escape(source[span_start:span_end]), "</mark>"]
        cursor = span_end
    out.append(_escape(source[cursor:end]))
    return ("…" if start > 0 else "") + "".join(out).strip() + ("…" if end < len(source) else "")


def _escape(value: str) -> str:
    return html.escape(value, quote=False).replace("\n", " ")


# Building the index ---------------------------------------------------------------------------


def fact_document(fact: Fact) -> SearchDocument:
    parts = [fact.title, fact.summary, *(c.quote for c in fact.sources), fact.notes or ""]
    return _document(fact.type, fact.id, fact.title, "\n".join(p for p in parts if p))


def article_document(article: Article) -> SearchDocument:
    parts = [article.title, article.headline or "", article.text]
    return _document("article", article.id, article.title, "\n".join(p for p in parts if p))


def _document(doc_type: str, doc_id: str, title: str, body: str) -> SearchDocument:
    return SearchDocument(
        doc_type=doc_type, doc_id=doc_id, title=title, text=body, tokens=" ".join(tokenize(body))
    )


def reindex(
    session: Session, documents: list[SearchDocument], removed: list[tuple[str, str]]
) -> None:
    """Replace the search documents of changed records and drop those of removed ones."""
    keys = [(d.doc_type, d.doc_id) for d in documents] + removed
    for doc_type in {doc_type for doc_type, _ in keys}:
        ids = [doc_id for t, doc_id in keys if t == doc_type]
        for chunk in range(0, len(ids), 500):
            session.execute(
                delete(SearchDocument).where(
                    SearchDocument.doc_type == doc_type,
                    SearchDocument.doc_id.in_(ids[chunk : chunk + 500]),
                )
            )
    session.add_all(documents)
    session.flush()


def is_index_object(name: str | None) -> bool:
    """Objects the migration creates beside the models (ignored when comparing schemas)."""
    return bool(name) and (
        name.startswith("search_fts") or name in ("tsv", "ix_search_documents_tsv")
    )
