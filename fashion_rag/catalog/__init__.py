"""Garment catalog and retrieval: load a catalog folder, index it, search it by description, evaluate.

    catalog.py   the catalog folder: CatalogItem, load_catalog, problems report
    encoder.py   the open_clip retrieval encoder (images and texts -> normalised embeddings)
    index.py     faiss index build/update/load with a manifest
    chunking.py  description -> noun chunks (rule-based)
    lexical.py   BM25 over captions (bm25s)
    search.py    CatalogSearch: dense + lexical, fused with reciprocal rank fusion
    evaluate.py  recall@k and MRR per search mode

Import from the modules; this package imports nothing heavy on its own.
"""
