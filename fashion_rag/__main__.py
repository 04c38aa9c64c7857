"""`python -m fashion_rag <command>`: see cli.py."""

from fashion_rag.cli import main

raise SystemExit(main())
