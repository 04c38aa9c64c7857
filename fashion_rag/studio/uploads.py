"""File inputs of the API and the page: only files that were uploaded to this server are opened.

Gradio checks a file input's path only when the value carries `meta` (a FileData); a plain
`{"path": "/any/file"}` reaches the handler unchecked. So every file input goes through `uploaded_file`,
which resolves the path (symbolic links followed, `..` removed) and accepts it only inside Gradio's
upload folder, where the upload route and the example cache put files. Anything else is refused before
it is opened, with the same message whether or not the path exists, so the refusal says nothing about
the server's files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fashion_rag.errors import InputError

NOT_AN_UPLOAD = ("{what} is not a file uploaded to this server: send it as an upload (gradio_client.handle_file(...), "
                 "or the page's upload box); server paths are not accepted")  # fmt: skip


def upload_root() -> Path:
    """Gradio's upload folder (GRADIO_TEMP_DIR, else <tmp>/gradio), resolved."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def uploaded_file(value: Any, what: str, root: Path | None = None) -> str | None:
    """The resolved path of an uploaded file input, None when the input is empty.

    `value` is what Gradio hands a handler: a FileData dict (API), or a path string (the page's gr.File).
    Refuses, without opening anything, values of another type and paths outside the upload folder.
    """
    if value is None or value == "":
        return None
    path = value.get("path") if isinstance(value, dict) else value
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise InputError(
            f"the {what} must be an uploaded file (gradio_client.handle_file(...)), not {type(value).__name__}"
        )
    root = root or upload_root()
    resolved = Path(path).resolve()  # follows every symbolic link, so a link out of the folder is caught
    if not resolved.is_relative_to(root) or resolved == root:
        raise InputError("the " + NOT_AN_UPLOAD.format(what=what))
    return str(resolved)
