"""Generation: the Fashion-RAG inpainting pipeline and what feeds it (docs/recipe.md).

    limits.py         what an edit accepts (steps, guidance, images, garments, samplers), without torch
    loading.py        the components loaded from located part directories; the one scheduler builder
    garments.py       garment images -> CLIP features -> garment tokens
    adapter.py        the inversion adapter (CLIP features -> 16 pseudo-word tokens)
    garment_cache.py  garment tokens computed once and reused (memory and disk)
    prompt.py         garment-token and text-only prompts, encoded
    graphs.py         how the UNet step runs: eager, CUDA graphs or compiled
    pipeline.py       FashionRAGPipeline: one call from frame, mask, pose and garments to edited frames
    compose.py        paste-back of the edited frame into the original photo

Import from the modules; this package imports nothing on its own.
"""
