"""Garment catalog and retrieval: load a catalog folder, index it, search it by description, evaluate.

    catalog.py     the catalog folder: CatalogItem, load_catalog, problems report
    dataset.py     a Hugging Face dataset written out as a catalog folder
    encoder.py     the open_clip retrieval encoder (images and texts -> normalised embeddings)
    embedding.py   a catalog's images embedded in worker threads, with a resumable checkpoint
    index/         the faiss index: typed manifest, tiers, build/update, load (index/__init__.py lists them)
    vocabulary.py  the garment vocabulary of the chunker
    chunking.py    description -> noun chunks (rule-based)
    lexical.py     BM25 over captions (bm25s)
    search.py      CatalogSearch: dense + lexical, fused with reciprocal rank fusion
    evaluate.py    recall@k and MRR per search mode

Import from the modules; this package imports nothing heavy on its own.
"""
