"""Fashion-RAG studio: virtual try-on with garments retrieved from a catalog (docs/recipe.md).

The parts, from the bottom up; no two import each other, except editor and request for now
(tests/test_import_graph.py):

    config.py      settings, the only reader of environment variables
    errors.py      the user-error classes and USER_ERRORS, shown alike by the CLI and the page
    files.py       atomic writes (a file, a folder), file fingerprint, sha256
    images.py      the frame size and the one RGB conversion
    devices.py     the one device (and dtype) choice
    weights/       the model parts (weights/sources.json): locate, verify, download
    person/        photo -> frame, keypoints, pose map, garment mask
    catalog/       catalog folders, the retrieval index, search
    generation/    the inpainting pipeline and its loading
    editor.py      one object composing the stages; request.py describes one edit, batch.py many
    studio/        the Gradio page and API; serve/ runs the edit on a Ray Serve pool
    cli.py         `python -m fashion_rag`, one module per command in commands/
"""
