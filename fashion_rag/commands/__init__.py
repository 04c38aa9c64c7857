"""One module per command of `python -m fashion_rag`: `add_parser(subparsers)` and `run(args)`."""
