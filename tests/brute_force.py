"""The numpy oracle of the dense index's exact search (only tests use it)."""

from __future__ import annotations

import numpy as np


def brute_force_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The numpy reference of `search_index` for an exact index: (Q, k) scores and positions, best first,
    -1 padded like faiss when there are fewer than k vectors."""
    scores = np.asarray(queries, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32).T  # (Q, N)
    k_eff = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k_eff]
    out_scores = np.full((scores.shape[0], k), -np.inf, dtype=np.float32)
    out_positions = np.full((scores.shape[0], k), -1, dtype=np.int64)
    out_scores[:, :k_eff] = np.take_along_axis(scores, top, axis=1)
    out_positions[:, :k_eff] = top
    return out_scores, out_positions
