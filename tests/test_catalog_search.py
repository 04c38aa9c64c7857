"""Catalog search on the example catalog: lexical, dense (tiny bundle), hybrid, bad input, evaluation."""

from __future__ import annotations

import json
import re
import shutil
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashion_rag.catalog.catalog import Catalog, load_catalog
from fashion_rag.catalog.chunking import chunk_description
from fashion_rag.catalog.encoder import RetrievalEncoder
from fashion_rag.catalog.evaluate import evaluate, format_table, load_queries, score_rankings
from fashion_rag.catalog.index import build_index, load_index
from fashion_rag.catalog.lexical import LexicalDocument, LexicalIndex, tokenize
from fashion_rag.catalog.search import CatalogSearch
from fashion_rag.config import CATEGORIES, REPO_ROOT
from fashion_rag.errors import CatalogIndexError, InputError
from fashion_rag.weights import ModelSources

from .brute_force import brute_force_search

EXAMPLE = REPO_ROOT / "examples" / "catalog"
QUERIES = REPO_ROOT / "examples" / "queries.jsonl"
CAPTION_FORMS = [
    re.compile(r"^plain (?P<colour>\w+) (?P<kind>.+)$"),
    re.compile(r"^(?P<colour>\w+) and (?P<accent>\w+) (?P<pattern>striped|checked) (?P<kind>.+)$"),
    re.compile(r"^(?P<colour>\w+) (?P<kind>.+) with (?P<accent>\w+) polka dots$"),
    re.compile(r"^(?P<colour>\w+) floral (?P<kind>.+) with (?P<accent>\w+) flowers$"),
]


def garments(catalog: Catalog) -> list[tuple[str, str, str, str, str]]:
    """(id, category, colour, pattern, type) of every example garment, read back from its caption."""
    out = []
    for item in catalog:
        for number, form in enumerate(CAPTION_FORMS):
            match = form.match(item.caption)
            if match:
                pattern = ("plain", match.groupdict().get("pattern"), "polka dot", "floral")[number]
                out.append((item.id, item.category, match["colour"], pattern, match["kind"]))
                break
        else:
            raise AssertionError(f"caption {item.caption!r} does not state colour, pattern and type")
    return out


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CaptionEncoder:
    """A stand-in retrieval encoder that understands captions: an image embeds as the hashed bag of words
    of its caption (found by its pixels), a text as its own bag of words. It makes the dense side of
    hybrid search meaningful without a real CLIP model."""

    dim = 256
    batch_size = 16

    def __init__(self, catalog: Catalog) -> None:
        self.captions = {self._key(Image.open(item.path)): item.caption for item in catalog}
        self.identity = "caption-bag-of-words"
        self.info = {"identity": self.identity}
        self.images_encoded = 0

    @staticmethod
    def _key(image: Image.Image) -> int:
        return zlib.crc32(image.convert("RGB").tobytes())

    def _embed(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for token in tokenize(text):
            vector[zlib.crc32(token.encode()) % self.dim] += 1.0
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int | None = None) -> np.ndarray:
        self.images_encoded += len(images)
        return np.stack([self._embed(self.captions[self._key(image)]) for image in images])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._embed(text) for text in texts])


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(EXAMPLE)


@pytest.fixture(scope="module")
def tiny_encoder(tiny_sources) -> RetrievalEncoder:
    return RetrievalEncoder.from_sources(tiny_sources, device="cpu")


@pytest.fixture(scope="module")
def tiny_index_dir(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog, tiny_encoder) -> Path:
    directory = tmp_path_factory.mktemp("tiny-index") / "index"
    build_index(catalog, tiny_encoder, directory)
    return directory


@pytest.fixture(scope="module")
def tiny_search(tiny_index_dir: Path, tiny_encoder) -> CatalogSearch:
    index = load_index(tiny_index_dir, encoder_identity=tiny_encoder.identity)
    return CatalogSearch.from_index(index, tiny_encoder, catalog_root=EXAMPLE)


@pytest.fixture(scope="module")
def lexical_search(catalog: Catalog) -> CatalogSearch:
    return CatalogSearch.from_catalog(catalog)


@pytest.fixture(scope="module")
def oracle_search(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> CatalogSearch:
    encoder = CaptionEncoder(catalog)
    directory = tmp_path_factory.mktemp("oracle-index") / "index"
    build_index(catalog, encoder, directory)  # type: ignore[arg-type]
    index = load_index(directory, encoder_identity=encoder.identity)
    return CatalogSearch.from_index(index, encoder, catalog_root=EXAMPLE)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Colour, pattern and type at rank 1


@pytest.mark.parametrize("which", ["lexical", "hybrid"])
def test_colour_pattern_type_queries_find_a_matching_caption_first(which, catalog, lexical_search, oracle_search):
    search = lexical_search if which == "lexical" else oracle_search
    assert search.mode == which
    for item_id, category, colour, pattern, kind in garments(catalog):
        query = f"{colour} {pattern} {kind}"
        hits = search.search(query, category, 5)
        top = hits[0].caption
        assert colour in top and pattern in top and kind in top, (query, top)
        assert item_id in [hit.id for hit in hits[:3]], (query, [hit.caption for hit in hits[:3]])


@pytest.mark.parametrize(
    ("text", "category", "expected"),
    [
        ("navy and white striped button-down shirt", "upper_body", "top-002"),
        ("a blazer in grey and black checks", "upper_body", "top-003"),
        ("red hoodie with white polka dots", "upper_body", "top-004"),
        ("olive pleated skirt with a flower print", "lower_body", "bottom-030"),
        ("floral wrap dress in teal", "dresses", "dress-005"),
        ("wrap dress, olive, with polka dots", "dresses", "dress-025"),
    ],
)
def test_paraphrased_descriptions(text, category, expected, catalog, lexical_search, oracle_search):
    assert catalog.get(expected).category == category
    for search in (lexical_search, oracle_search):
        hits = search.search(text, category, 3)
        assert hits[0].id == expected, (search.mode, text, [h.caption for h in hits])
        assert hits[0].chunk in [*chunk_description(text), ", ".join(chunk_description(text))]


def test_category_filter_never_leaks(catalog, lexical_search, tiny_search, oracle_search):
    other_captions = {c: [i.caption for i in catalog if i.category != c][::7] for c in CATEGORIES}
    for search in (lexical_search, tiny_search, oracle_search):
        for category in CATEGORIES:
            for text in other_captions[category] + ["jeans", "blazer", "maxi dress"]:
                for mode in search.available_modes:
                    hits = search.search(text, category, search.count(category), mode=mode)
                    assert {hit.category for hit in hits} <= {category}, (mode, text)
                    assert all(
                        hit.id.startswith({"upper_body": "top", "lower_body": "bottom"}.get(category, "dress"))
                        for hit in hits
                    )


def test_hits_are_deduplicated_and_ranked(catalog, tiny_search):
    hits = tiny_search.search("red satin slip dress with lace trim", "dresses", 33)
    assert len(hits) == 33 and len({hit.id for hit in hits}) == 33
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    chunks = ["red satin slip dress", "lace trim", "red satin slip dress, lace trim"]
    assert {hit.chunk for hit in hits} <= set(chunks)
    assert all(hit.dense_rank is not None or hit.lexical_rank is not None for hit in hits)


def test_same_image_under_two_ids_is_reported_once(tmp_path: Path):
    for name in ("dress-001", "dress-002"):
        (tmp_path / "dresses").mkdir(exist_ok=True)
        shutil.copyfile(EXAMPLE / "dresses" / f"{name}.png", tmp_path / "dresses" / f"{name}.png")
    shutil.copyfile(EXAMPLE / "dresses" / "dress-001.png", tmp_path / "dresses" / "dress-001-again.png")
    rows = [
        {"id": "dress-001", "file": "dresses/dress-001.png", "caption": "plain green slip dress"},
        {"id": "dress-001-again", "file": "dresses/dress-001-again.png", "caption": "plain green slip dress"},
        {"id": "dress-002", "file": "dresses/dress-002.png", "caption": "brown and black striped A-line dress"},
    ]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    hits = CatalogSearch.from_catalog(load_catalog(tmp_path)).search("green slip dress", "dresses", 3)
    assert [hit.id for hit in hits] == ["dress-001", "dress-002"]


# --------------------------------------------------------------------------------------------------
# Dense search with the tiny bundle's open_clip model (random weights: wiring, shapes, determinism)


def test_tiny_bundle_dense_search_is_brute_force_over_the_category(catalog, tiny_encoder, tiny_index_dir, tiny_search):
    assert tiny_search.mode == "hybrid" and tiny_search.available_modes == ("hybrid", "dense", "lexical")
    index = load_index(tiny_index_dir, encoder_identity=tiny_encoder.identity)
    assert index.vectors.shape == (99, 32) and index.vectors.dtype == np.float32
    members = index.items_in("upper_body")
    rows = [index.items.index(item) for item in members]
    query = tiny_encoder.encode_texts(["hoodie"])
    scores, positions = brute_force_search(index.vectors[rows], query, 7)
    hits = tiny_search.search("hoodie", "upper_body", 7, mode="dense")
    assert [hit.id for hit in hits] == [members[p].id for p in positions[0]]
    np.testing.assert_allclose([hit.similarity for hit in hits], scores[0], atol=1e-5)
    assert [hit.dense_rank for hit in hits] == list(range(1, 8)) and all(h.lexical_rank is None for h in hits)


def test_tiny_bundle_search_is_deterministic(tiny_encoder, tiny_index_dir, tiny_search, tiny_sources):
    text = "navy double-breasted blazer with gold buttons"
    first = tiny_search.search(text, "upper_body", 10)
    encoded = tiny_encoder.texts_encoded
    assert tiny_search.search(text, "upper_body", 10) == first
    assert tiny_encoder.texts_encoded == encoded  # the chunk embeddings came from the cache
    fresh = CatalogSearch.open(EXAMPLE, tiny_index_dir, tiny_sources)
    assert fresh.mode == "hybrid" and fresh.search(text, "upper_body", 10) == first


def test_without_encoder_weights_search_is_lexical_and_says_so(tmp_path: Path, tiny_index_dir):
    (tmp_path / "bundle.json").write_text('{"name": "empty"}')
    sources = ModelSources(str(tmp_path))  # a bundle without the retrieval-encoder part
    search = CatalogSearch.open(EXAMPLE, tiny_index_dir, sources)
    assert search.mode == "lexical" and search.available_modes == ("lexical",)
    assert "lexical search only" in search.mode_reason and "retrieval-encoder" in search.mode_reason
    hits = search.search("plain purple t-shirt", "upper_body", 3)
    assert hits[0].id == "top-001" and hits[0].dense_rank is None and hits[0].lexical_rank == 1
    with pytest.raises(InputError, match="search mode 'hybrid' is not available here: use one of lexical"):
        search.search("plain purple t-shirt", "upper_body", 3, mode="hybrid")


def test_encoder_present_but_no_index_falls_back_to_lexical(tmp_path: Path, tiny_sources):
    search = CatalogSearch.open(EXAMPLE, tmp_path / "no-index", tiny_sources)
    assert search.mode == "lexical" and "no index at" in search.mode_reason and "index build" in search.mode_reason


def test_index_of_another_encoder_is_refused_by_search(tiny_index_dir, catalog):
    other = CaptionEncoder(catalog)
    with pytest.raises(CatalogIndexError, match="was built with the retrieval encoder"):
        load_index(tiny_index_dir, encoder_identity=other.identity)
    index = load_index(tiny_index_dir)
    with pytest.raises(CatalogIndexError, match="not with the encoder in use 'caption-bag-of-words'"):
        CatalogSearch.from_index(index, other)  # type: ignore[arg-type]


def test_image_deleted_after_indexing_is_reported_not_returned(tmp_path: Path, tiny_encoder, tiny_sources):
    root = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("index"))
    build_index(load_catalog(root), tiny_encoder, root / "index")
    (root / "dresses" / "dress-005.png").unlink()
    assert CatalogSearch.open(root, None, tiny_sources).count("dresses") == 32
    search = CatalogSearch.open(None, root / "index", tiny_sources)  # the index knows its catalog folder
    assert search.catalog_root == root.resolve()
    assert search.mode == "hybrid" and search.count("dresses") == 32
    assert any("dresses/dress-005.png (id dress-005) was indexed but no longer exists" in p for p in search.problems)
    for mode in search.available_modes:
        hits = search.search("floral wrap dress in teal", "dresses", 32, mode=mode)
        assert "dress-005" not in {hit.id for hit in hits}
    assert len(search.search("wrap dress", "dresses", 32, mode="dense")) == 32
    with pytest.raises(InputError, match="unknown catalog id 'dress-005'"):
        search.image_path("dress-005")
    assert search.image_path("dress-004") == root.resolve() / "dresses" / "dress-004.png"


# --------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("text", "category", "k", "message"),
    [
        ("", "dresses", 5, "the description is empty"),
        ("   \n\t", "dresses", 5, "the description is empty"),
        ("\U0001f31e 42", "dresses", 5, "has no letters, so it names no garment, part, colour, material or pattern"),
        ("red dress", "dresses", 0, r"k=0 is out of range: use 1 to 33 \(the dresses items in the catalog\)"),
        ("red dress", "dresses", 34, "k=34 is out of range: use 1 to 33"),
        ("red dress", "dresses", -1, "k=-1 is out of range"),
        ("red dress", "dresses", True, "k=True is out of range"),
        ("red dress", "dresses", "3", "k='3' is out of range"),
        ("red dress", "shoes", 5, "unknown category 'shoes': use one of upper_body, lower_body, dresses"),
        ("red dress", "Dresses", 5, "unknown category 'Dresses'"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(text, category, k, message, lexical_search, tiny_search):
    for search in (lexical_search, tiny_search):
        with pytest.raises(InputError, match=message):
            search.search(text, category, k)


def test_lexical_index_directly():
    index = LexicalIndex(
        [
            LexicalDocument("a", "dresses", "Red slip dress"),
            LexicalDocument("b", "dresses", "blue slip dress"),
            LexicalDocument("c", "dresses", ""),
            LexicalDocument("d", "upper_body", "red shirt"),
        ]
    )
    assert len(index) == 3 and not index.has_captions("lower_body")
    assert [i for i, _ in index.rank("red dresses", "dresses")] == ["a", "b"]
    assert index.rank("red", "lower_body") == [] and index.rank("the", "dresses") == []
    assert index.rank("green", "dresses") == []  # no shared word: not ranked


def test_cached_lexical_index_ranks_as_a_fresh_one_and_never_serves_stale_captions(catalog, tmp_path: Path):
    documents = [LexicalDocument(i.id, i.category, i.caption) for i in catalog]
    fresh = LexicalIndex(documents)
    queries = [("navy slip dress with white polka dots", "dresses"), ("striped shirt", "upper_body"),
               ("blue denim jeans", "lower_body"), ("kurta", "dresses")]  # fmt: skip
    folder = tmp_path / "lexical"
    built = LexicalIndex.cached(documents, folder)  # builds and saves
    assert (folder / "ids.json").is_file() and {p.name for p in folder.iterdir()} >= {"dresses", "upper_body"}
    written = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    loaded = LexicalIndex.cached(documents, folder)  # reads back, writes nothing
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == written
    for text, category in queries:
        assert built.rank(text, category) == loaded.rank(text, category) == fresh.rank(text, category)

    # One caption changed: the cache is stale and is rebuilt, so the new caption is found.
    changed = [
        LexicalDocument(d.id, d.category, "emerald kurta" if d.id == "dress-003" else d.caption) for d in documents
    ]
    assert (
        LexicalIndex.cached(changed, folder).rank("emerald", "dresses")
        == [(i, s) for i, s in LexicalIndex(changed).rank("emerald", "dresses")]
        and LexicalIndex(changed).rank("emerald", "dresses")[0][0] == "dress-003"
    )
    # A damaged cache is rebuilt; a folder that cannot be written only means no cache.
    (folder / "dresses" / "vocab.index.json").write_text("{")
    assert LexicalIndex.cached(changed, folder).rank("emerald", "dresses")[0][0] == "dress-003"
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert LexicalIndex.cached(documents, blocked / "lexical").rank("kurta", "dresses") == fresh.rank(
        "kurta", "dresses"
    )


# --------------------------------------------------------------------------------------------------
# Evaluation


def test_score_rankings_by_hand():
    recall, mrr = score_rankings([["a", "b"], ["c", "d"], ["x", "y"]], [["b"], ["c", "q"], ["z"]], ks=(1, 2))
    assert recall == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3)}
    assert mrr == pytest.approx((0.5 + 1.0) / 3)


def test_evaluate_example_queries(lexical_search, tiny_search, oracle_search):
    queries = load_queries(QUERIES)
    assert len(queries) == 30 and {q.category for q in queries} == set(CATEGORIES)
    lexical, notes = evaluate(lexical_search, queries)
    assert notes == [] and [s.mode for s in lexical] == ["lexical"] and lexical[0].queries == 30
    assert lexical[0].recall[1] >= 0.9 and lexical[0].recall[10] == 1.0 and lexical[0].mrr >= 0.9
    oracle, _ = evaluate(oracle_search, queries)
    assert [s.mode for s in oracle] == ["hybrid", "dense", "lexical"]
    assert oracle[0].recall[1] >= 0.9 and oracle[1].recall[10] >= 0.9
    tiny, _ = evaluate(tiny_search, queries)
    assert all(0.0 <= s.recall[1] <= s.recall[5] <= s.recall[10] <= 1.0 for s in tiny)
    table = format_table(tiny)
    assert table.splitlines()[0] == "| mode | queries | R@1 | R@5 | R@10 | MRR |" and len(table.splitlines()) == 5


def test_evaluate_skips_queries_with_unknown_ids(tmp_path: Path, lexical_search):
    path = tmp_path / "q.jsonl"
    path.write_text(
        json.dumps({"text": "red dress", "category": "dresses", "relevant": ["nope"]})
        + "\n"
        + json.dumps({"text": "plain purple t-shirt", "category": "upper_body", "relevant": "top-001"})
        + "\n"
    )
    scores, notes = evaluate(lexical_search, load_queries(path))
    assert scores[0].queries == 1 and scores[0].recall[1] == 1.0
    assert notes == ["skipped 'red dress': none of its relevant ids ['nope'] is searchable"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"q.jsonl:2: not valid JSON"),
        ('{"text": "", "category": "dresses", "relevant": ["a"]}', "q.jsonl:2: each line needs a non-empty 'text'"),
        ('{"text": "red dress", "category": "dresses", "relevant": []}', "'relevant' must be a non-empty list"),
        ('{"text": "red dress", "category": "hats", "relevant": ["a"]}', "q.jsonl:2: unknown category 'hats'"),
    ],
)
def test_bad_queries_file(tmp_path: Path, line: str, message: str):
    path = tmp_path / "q.jsonl"
    path.write_text('{"text": "red dress", "category": "dresses", "relevant": ["a"]}\n' + line + "\n")
    with pytest.raises(InputError, match=message):
        load_queries(path)


# --------------------------------------------------------------------------------------------------
# Open vocabulary, random encoder weights, concurrency (issue 13)


def test_garment_names_outside_the_vocabulary_are_searched(tmp_path: Path, tiny_encoder):
    root = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("index"))
    rows = [json.loads(line) for line in (EXAMPLE / "metadata.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        if row["id"] == "top-010":
            row["caption"] = "red cotton kurta with gold embroidery"
        if row["id"] == "dress-012":
            row["caption"] = "jade silk qipao"
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    catalog = load_catalog(root)
    build_index(catalog, tiny_encoder, root / "index")
    hybrid = CatalogSearch.from_index(load_index(root / "index"), tiny_encoder, catalog_root=root)
    lexical = CatalogSearch.from_catalog(catalog)
    for search in (lexical, hybrid):
        assert search.search("kurta", "upper_body", 3)[0].id == "top-010"
        assert search.search("an embroidered kurta", "upper_body", 3)[0].id == "top-010"
        assert search.search("jade qipao", "dresses", 3)[0].id == "dress-012"
    # A name no caption has still gets the dense ranking in hybrid mode, and no error in lexical mode.
    assert len(hybrid.search("lehenga choli", "dresses", 5)) == 5
    assert lexical.search("an embroidered sari", "dresses", 5) == []


def test_random_encoder_weights_rank_caption_matches_first(catalog, tiny_search, oracle_search):
    # The tiny bundle's encoder is random: hybrid search says so and puts caption matches first.
    assert tiny_search.encoder.info.get("random_weights") is True
    assert tiny_search.mode == "hybrid" and tiny_search.fusion == "lexical-first"
    assert "random weights" in tiny_search.mode_reason and "caption matches ranked first" in tiny_search.mode_reason
    # Held-out catalog captions used as queries find their own item in the top 3 (issue 13: 6 of 12 before).
    captions = [item.caption for item in catalog]
    held_out = [item for item in list(catalog)[3::8] if captions.count(item.caption) == 1][:12]
    assert len(held_out) == 12
    found = [item.id in [h.id for h in tiny_search.search(item.caption, item.category, 3)] for item in held_out]
    assert sum(found) == 12, [item.caption for item, ok in zip(held_out, found, strict=True) if not ok]
    # Caption matches first: every hit with a lexical rank comes before every hit without one.
    hits = tiny_search.search("burgundy", "dresses", 20)
    flags = [hit.lexical_rank is not None for hit in hits]
    assert flags == sorted(flags, reverse=True) and flags[0] and not flags[-1]
    # An encoder with trained weights (here the caption oracle) keeps reciprocal rank fusion.
    assert oracle_search.fusion == "rrf" and oracle_search.mode_reason == ""


def test_concurrent_searches_match_serial_ones(tiny_index_dir, tiny_encoder, catalog):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    index = load_index(tiny_index_dir, encoder_identity=tiny_encoder.identity)
    # A cache of 8 texts and 60 distinct descriptions (each 1-3 chunks): entries are evicted all the time.
    search = CatalogSearch.from_index(index, tiny_encoder, catalog_root=EXAMPLE, text_cache_size=8)
    colours = ["red", "navy", "olive", "teal", "pink", "grey", "black", "white", "mustard", "cream"]
    kinds = [("upper_body", "shirt"), ("lower_body", "skirt"), ("dresses", "dress")]
    texts = [
        (cat, f"{c} {kind} with {d} buttons")
        for c, d in zip(colours, colours[::-1], strict=True)
        for cat, kind in kinds
    ] + [(cat, f"{c} {kind}") for c in colours for cat, kind in kinds]
    assert len(texts) == 60
    serial = {t: search.search(t[1], t[0], 5) for t in texts}
    work = texts * 10
    start = threading.Barrier(8)

    def run(chunk: list[tuple[str, str]]) -> list:
        start.wait()  # all 8 threads search at once
        return [(t, search.search(t[1], t[0], 5)) for t in chunk]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [r for part in pool.map(run, [work[i::8] for i in range(8)]) for r in part]
    assert len(results) == 600
    assert all(hits == serial[t] for t, hits in results)
    info = search._embed_text.cache_info()
    assert info.maxsize == 8 and info.currsize == 8 and info.misses > 8  # the cache was full and evicting
