"""File inputs of the API and the page: only files that were uploaded to this server are opened.

Gradio checks a file input's path only when the value carries `meta` (a FileData); a plain
`{"path": "/any/file"}` reaches the handler unchecked. So every file input goes through `uploaded_file`,
which resolves the path (symbolic links followed, `..` removed) and accepts it only inside Gradio's
upload folder, where the upload route and the example cache put files. Anything else is refused before
it is opened, with the same message whether or not the path exists, so the refusal says nothing about
the server's files.

An MCP tool call (`python app.py --mcp`) hands a file input over as the URL Gradio serves an upload at
(`http://host/gradio_api/file=/tmp/gradio/…/photo.png`, what Gradio's `upload_file_to_gradio` tool
returns): only the path in it is read, and checked like any other. Nothing is ever fetched from a URL.
A `data:` URL (the file inline, as some MCP clients send it) is written into the upload folder with
Gradio's own decoder; the request-size limit (admission.py) bounds it.

Each studio process keeps its uploads in a folder of its own (`use_own_upload_folder`): Gradio stores an
upload by content (`<folder>/<hash>/<name>`) and, when a page shuts down, deletes every file it stored, so
two studios sharing `/tmp/gradio` on one machine delete each other's uploads (the same photo sent to both
vanished from the one still running when the other stopped).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fashion_rag.errors import InputError

NOT_AN_UPLOAD = (
    "{what} is not a file uploaded to this server: send it as an upload (gradio_client.handle_file(...), "
    "or the page's upload box); server paths are not accepted"
)


def upload_root() -> Path:
    """Gradio's upload folder (GRADIO_TEMP_DIR, else <tmp>/gradio), resolved."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def use_own_upload_folder(prefix: str, keep_configured: bool = True) -> Path:
    """Point Gradio's upload folder (GRADIO_TEMP_DIR) at a new folder for this process, before the page
    starts; with keep_configured, a folder the deployment set already is kept."""
    if not (keep_configured and os.environ.get("GRADIO_TEMP_DIR")):
        folder = tempfile.mkdtemp(prefix=prefix)
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # ours alone: nothing else reads it
        os.environ["GRADIO_TEMP_DIR"] = folder
    return Path(os.environ["GRADIO_TEMP_DIR"])


def uploaded_file(value: Any, what: str, root: Path | None = None) -> str | None:
    """The resolved path of an uploaded file input, None when the input is empty.

    `value` is what Gradio hands a handler: a FileData dict (API), or a path string (the page's gr.File).
    Refuses, without opening anything, values of another type and paths outside the upload folder.
    """
    if value is None or value == "":
        return None
    path = value.get("path") if isinstance(value, dict) else value
    if isinstance(path, str) and path.startswith(("http://", "https://")):
        path = served_path(path)
    elif isinstance(path, str) and path.startswith("data:"):
        path = inline_upload(path, what)
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise InputError(
            f"the {what} must be an uploaded file (gradio_client.handle_file(...)), not {type(value).__name__}"
        )
    root = root or upload_root()
    resolved = Path(path).resolve()  # follows every symbolic link, so a link out of the folder is caught
    if not resolved.is_relative_to(root) or resolved == root:
        raise InputError("the " + NOT_AN_UPLOAD.format(what=what))
    return str(resolved)


def served_path(url: str) -> str:
    """The server path in a Gradio file URL (`…/gradio_api/file=PATH`), or the URL itself (refused later)."""
    _, marker, rest = urlsplit(url).path.partition("/gradio_api/file=")
    return unquote(rest) if marker and rest else url


def inline_upload(data_url: str, what: str) -> str:
    """A `data:…;base64,…` file written into the upload folder; its path."""
    import binascii

    from gradio.processing_utils import save_base64_to_cache

    try:
        return save_base64_to_cache(data_url, str(upload_root()))
    except (binascii.Error, ValueError, IndexError) as error:
        raise InputError(f"the {what} is a data: URL that is not valid base64 ({error})") from None
