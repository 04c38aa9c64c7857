"""Serve mode: the studio on Ray Serve, with a pool of edit workers behind the page (docs/DEPLOYMENT.md).

    python app.py --serve [--replicas N] [--ray-address ADDR]       # from the command line
    serve run --name fashion-rag fashion_rag.serve.app:build_app models=DIR replicas=2  # or serve/config.yaml

worker.py   the edit deployment: one Editor per replica, one GPU each (or one CPU thread)
pool.py     PooledEditor: the Editor API the page calls, with edits sent to the pool (retried once on a lost replica)
app.py      the application: the Gradio page as ingress over the worker pool, and its options

Nothing here is imported by the local mode (`python app.py`), which runs without Ray.
"""
