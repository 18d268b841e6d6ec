"""Full-text search over records and article texts, on SQLite FTS5 and PostgreSQL alike.

Python tokenises both the indexed text and the query (`tokenize`), so that both engines see
the same words and return the same hits; they differ only in how they rank them (bm25 on
SQLite, ts_rank on PostgreSQL). Query syntax: words (all must match), "quoted phrases",
and a trailing * for a prefix (`mobili*`). The frequent words have postings in ranking order
(SearchPosting), from which a one-word search takes its best hits without scoring every match.
"""

import html
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import (
    Select,
    bindparam,
    column,
    delete,
    false,
    func,
    insert,
    literal_column,
    select,
    table,
    text,
    tuple_,
)
from sqlalchemy.orm import Session

from .models import Article, DatasetState, Fact, SearchDocument, SearchPosting, SearchWordCount

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
    vector, query = _VECTOR, _ts_query(terms)
    columns = (SearchDocument.id, SearchDocument.doc_type, SearchDocument.doc_id)
    stmt = select(*columns, _ts_rank(terms).label("score")).where(vector.op("@@")(query))
    return stmt.where(SearchDocument.doc_type.in_(doc_types)) if doc_types else stmt


_VECTOR = literal_column("search_documents.tsv")  # to_tsvector('simple', tokens), stored


def _ts_query(terms: list[Term]):
    return func.to_tsquery(literal_column("'simple'"), _tsquery(terms))


def _ts_rank(terms: list[Term]):
    return func.ts_rank(_VECTOR, _ts_query(terms))


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
    end: see below), and the total number of hits. A word with postings: best_of_word.

    On SQLite the scores are ranked by FTS5 alone, and only the best `size` + 1
    are then looked up for their type and id: a common word's 300k matches cost their
    scores, not their keys too. Hits of equal score go by type and id, which only the keys
    tell: a score shared with the first hit left out may have more hits beyond it, so those
    are dropped and the window ends where one score does.
    """
    dialect = session.get_bind().dialect.name
    groups = _word_groups(session, terms)
    if groups:
        return best_of_word(session, terms[0].tokens[0], groups, types, size)
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


# A frequent word's best hits, from its postings ----------------------------------------------

MIN_POSTED_DOCUMENTS = 20_000  # words in this many documents get postings (index_words)
# PostgreSQL's tsvector keeps at most 256 positions of a word, none beyond 16,383.
_PG_MAX_POSITIONS, _PG_MAX_POSITION = 256, 16_383
_BM25_K1, _BM25_B = 1.2, 0.75  # FTS5's bm25 constants


def _word_groups(session: Session, terms: list[Term]) -> list:
    """A one-word query's (doc_type, occurrences, documents) groups if the word has postings."""
    if len(terms) != 1 or len(terms[0].tokens) != 1 or terms[0].prefix:
        return []
    counts = SearchWordCount.__table__.c
    stmt = select(counts.doc_type, counts.occurrences, counts.documents)
    return session.execute(stmt.where(counts.word == terms[0].tokens[0])).all()


def best_of_word(
    session: Session, word: str, groups: list, types: list[str] | None, size: int
) -> tuple[list[Ranked], int]:
    """`best` for one word with postings: exactly the same hits and scores, from the first
    `size` postings of each (doc_type, occurrences) group rather than a score for every match.

    Within a group the postings' order is the ranking's (SearchPosting), so the best `size`
    hits overall are among the groups' first `size`; only those are scored and merged.
    """
    wanted = [g for g in groups if g.documents and (not types or g.doc_type in types)]
    postings, connection = SearchPosting.__table__.c, session.connection()
    candidates: list[tuple] = []  # (document_id, doc_type, doc_id, occurrences, length)
    for group in wanted:
        stmt = (
            select(postings.document_id, postings.doc_type, postings.doc_id)
            .add_columns(postings.occurrences, postings.length)
            .where(
                postings.word == word,
                postings.doc_type == group.doc_type,
                postings.occurrences == group.occurrences,
            )
            .order_by(postings.length, postings.doc_id)
            .limit(size)
        )
        candidates += connection.execute(stmt)
    if connection.dialect.name == "sqlite":
        score = _bm25_of_word(session, sum(g.documents for g in groups))
        # Ties by type and id; str order is SQLite's BINARY collation (code points).
        scored = [(-score(o, n), t, d, i, d) for i, t, d, o, n in candidates]
    else:
        # ts_rank of one word depends only on its occurrences; ties go by the database's
        # collation of doc_id, which is each group's own order (equal ranks: one group).
        rank_of = _ts_rank_by_occurrences(session, word, candidates)
        scored = [(-rank_of[o], t, k, i, d) for k, (i, t, d, o, _) in enumerate(candidates)]
    scored.sort()
    window = [Ranked(i, t, d, -value) for value, t, _, i, d in scored[:size]]
    return window, sum(g.documents for g in wanted)


def _bm25_of_word(session: Session, hits: int):
    """FTS5's bm25 of one word as a function of its occurrences and the document's length,
    with FTS5's own totals, in the same floating-point steps as its C code (fts5_aux.c)."""
    rows, tokens = _fts5_totals(session)
    idf = math.log((rows - hits + 0.5) / (hits + 0.5))
    idf = idf if idf > 0.0 else 1e-6
    avgdl, k1, b = tokens / rows, _BM25_K1, _BM25_B

    def score(occurrences: int, length: int) -> float:
        freq = float(occurrences)
        return idf * ((freq * (k1 + 1.0)) / (freq + k1 * (1 - b + b * length / avgdl)))

    return score


def _fts5_totals(session: Session) -> tuple[int, int]:
    """FTS5's row count and total tokens (all columns), as bm25 reads them: the varints of
    its "averages" record (rowid 1 of search_fts_data)."""
    block = session.connection().exec_driver_sql("SELECT block FROM search_fts_data WHERE id = 1")
    values, value, data = [], 0, block.scalar() or b""
    # SQLite varints: 7 bits a byte, the high bit set on all but the last (a ninth byte, for
    # values of 2**56 and more, cannot occur in counts of rows and tokens)
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            values.append(value)
            value = 0
    return values[0], sum(values[1:])


def _ts_rank_by_occurrences(session: Session, word: str, candidates: list) -> dict[int, float]:
    """PostgreSQL's ts_rank of one word for each number of occurrences among the candidates,
    computed by PostgreSQL on one document of each."""
    one_of_each = {occurrences: document_id for document_id, _, _, occurrences, _ in candidates}
    stmt = select(SearchDocument.id, _ts_rank([Term((word,))])).where(
        SearchDocument.id.in_(list(one_of_each.values()))
    )
    rank_of = dict(session.execute(stmt).all())
    return {n: rank_of[document_id] for n, document_id in one_of_each.items()}


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
    """Replace the search documents of changed records and drop those of removed ones, and
    their postings of the frequent words."""
    keys = [(d.doc_type, d.doc_id) for d in documents] + removed
    old, words = [], set()  # the documents replaced or dropped, as they were; posted words
    if session.scalar(select(SearchWordCount.word).limit(1)) is not None:
        key = tuple_(SearchDocument.doc_type, SearchDocument.doc_id)
        for chunk in range(0, len(keys), 500):
            old += session.execute(_DOCUMENT_ROWS.where(key.in_(keys[chunk : chunk + 500])))
        words = _posted_words(session, {w for d in old + documents for w in d.tokens.split()})
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
    if words:
        _replace_postings(session, old, documents, words)


def _posted_words(session: Session, words: set[str]) -> set[str]:
    """Those of these words that have postings."""
    posted, words_ = set(), sorted(words)
    for chunk in range(0, len(words_), 500):
        stmt = select(SearchWordCount.word).where(
            SearchWordCount.word.in_(words_[chunk : chunk + 500])
        )
        posted.update(session.scalars(stmt.distinct()))
    return posted


_DOCUMENT_ROWS = select(
    *(SearchDocument.__table__.c[name] for name in ("id", "doc_type", "doc_id", "tokens"))
)


class Posting(NamedTuple):  # a SearchPosting row, its columns in the table's order
    word: str
    doc_type: str
    occurrences: int
    length: int
    doc_id: str
    document_id: int


def postings(dialect: str, document, words: set[str]) -> list[Posting]:
    """The document's postings (SearchPosting rows) of these words."""
    tokens = document.tokens.split()
    if dialect == "sqlite":
        counts = Counter(t for t in tokens if t in words)
        length = len(tokens) + len(tokenize(document.doc_type))  # FTS5 counts both columns
    else:  # to_tsvector's positions (from 1) of each word, as many as it keeps
        positions: dict[str, set[int]] = {}
        for position, token in enumerate(tokens, 1):
            if token in words:
                positions.setdefault(token, set()).add(min(position, _PG_MAX_POSITION))
        counts = {w: min(len(p), _PG_MAX_POSITIONS) for w, p in positions.items()}
        length = 0
    doc_type, doc_id, id_ = document.doc_type, document.doc_id, document.id
    return [Posting(w, doc_type, n, length, doc_id, id_) for w, n in counts.items()]


def _replace_postings(session: Session, old: list, new: list, words: set[str]) -> None:
    """Replace the old documents' postings by the new ones' and count the difference in their
    groups (a PATCH changes a few counts, if any)."""
    dialect, table = session.get_bind().dialect.name, SearchPosting.__table__
    removed = [p for document in old for p in postings(dialect, document, words)]
    added = [p for document in new for p in postings(dialect, document, words)]
    key = tuple_(*(table.c[name] for name in Posting._fields[:5]))  # the primary key
    for chunk in range(0, len(removed), 500):
        values = [p[:5] for p in removed[chunk : chunk + 500]]
        session.execute(delete(table).where(key.in_(values)))
    if added:
        session.execute(insert(table), [p._asdict() for p in added])
    changes = Counter(p[:3] for p in added)  # (word, doc_type, occurrences): a group
    changes.subtract(p[:3] for p in removed)
    _count_postings(session, changes)


def _count_postings(session: Session, changes: Counter) -> None:
    """Add {(word, doc_type, occurrences): +n or -n} to the groups' counts.

    Writers take turns (records.ChangeSet), so no other write changes these rows meanwhile.
    """
    changes = Counter({group: n for group, n in changes.items() if n})
    if not changes:
        return
    counts = SearchWordCount.__table__
    group = tuple_(counts.c.word, counts.c.doc_type, counts.c.occurrences)
    kept = set(session.execute(select(*group.clauses).where(group.in_(list(changes)))).all())
    rows = [{"w": w, "t": t, "o": o, "n": n} for (w, t, o), n in changes.items()]
    if new := [row for row in rows if (row["w"], row["t"], row["o"]) not in kept]:
        # new groups (a removal always has its group)
        session.execute(
            insert(counts).values(
                word=bindparam("w"),
                doc_type=bindparam("t"),
                occurrences=bindparam("o"),
                documents=bindparam("n"),
            ),
            new,
        )
    if changed := [row for row in rows if (row["w"], row["t"], row["o"]) in kept]:
        session.execute(
            counts.update()
            .where(
                counts.c.word == bindparam("w"),
                counts.c.doc_type == bindparam("t"),
                counts.c.occurrences == bindparam("o"),
            )
            .values(documents=counts.c.documents + bindparam("n")),
            changed,
        )


def index_words(
    session: Session, min_documents: int | None = None, words: Iterable[str] = ()
) -> dict[str, int]:
    """Give postings to the words in at least `min_documents` (MIN_POSTED_DOCUMENTS)
    documents, and to `words`, anew (the others' are dropped): {word: documents}.

    Two passes over every document's tokens: one counts each word's documents, one writes the
    chosen words' postings.
    """
    # Writers take turns on this row (records.ChangeSet): none changes a document meanwhile.
    session.execute(select(DatasetState.id).where(DatasetState.id == 1).with_for_update())
    session.execute(delete(SearchPosting))
    session.execute(delete(SearchWordCount))
    documents: Counter = Counter()
    for tokens in session.scalars(select(SearchDocument.tokens).execution_options(yield_per=2000)):
        documents.update(set(tokens.split()))
    least = MIN_POSTED_DOCUMENTS if min_documents is None else min_documents
    chosen = {w for w, n in documents.items() if n >= least}
    chosen |= {w for w in words if documents[w]}
    dialect, groups = session.get_bind().dialect.name, Counter()
    if chosen:
        with _bulk_writer(session) as write:
            every = session.execute(_DOCUMENT_ROWS.execution_options(yield_per=2000))
            for batch in every.partitions():
                rows = [p for document in batch for p in postings(dialect, document, chosen)]
                write(rows)
                groups.update(p[:3] for p in rows)
    _count_postings(session, groups)
    session.flush()
    return {w: documents[w] for w in sorted(chosen)}


@contextmanager
def _bulk_writer(session: Session) -> Iterator[Callable[[list[Posting]], None]]:
    """A function that writes postings, tens of millions at 1M records, into an empty table.

    Their key's B-tree is built once, from the sorted rows, not an insert at a time across
    a tree bigger than any cache: PostgreSQL COPYs them into the table without its primary
    key, then makes the key; SQLite (whose table is its key) sorts them from a temporary table.
    """
    connection = session.connection()
    columns = ", ".join(Posting._fields)
    key = ", ".join(Posting._fields[:5])
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"CREATE TEMP TABLE new_postings ({columns})")
        insert_ = f"INSERT INTO new_postings ({columns}) VALUES (?, ?, ?, ?, ?, ?)"
        yield lambda rows: rows and connection.exec_driver_sql(insert_, rows)
        connection.exec_driver_sql(
            f"INSERT INTO search_postings ({columns}) "
            f"SELECT {columns} FROM new_postings ORDER BY {key}"
        )
        connection.exec_driver_sql("DROP TABLE new_postings")
        return
    connection.exec_driver_sql("ALTER TABLE search_postings DROP CONSTRAINT pk_search_postings")
    cursor = connection.connection.driver_connection.cursor()

    def copy_rows(rows: list[Posting]) -> None:
        # One COPY a batch: the documents' cursor cannot fetch while a COPY is open.
        with cursor.copy(f"COPY search_postings ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    yield copy_rows
    connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
    connection.exec_driver_sql(
        f"ALTER TABLE search_postings ADD CONSTRAINT pk_search_postings PRIMARY KEY ({key})"
    )


def is_index_object(name: str | None) -> bool:
    """Objects the migration creates beside the models (ignored when comparing schemas)."""
    return bool(name) and (
        name.startswith("search_fts") or name in ("tsv", "ix_search_documents_tsv")
    )
