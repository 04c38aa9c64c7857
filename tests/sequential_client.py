"""gradio_client used the one way that does not race with the server's closing of its event stream.

A `Client` reads the results of all its jobs from one SSE stream per session, and the server closes that
stream (`close_stream`) as soon as the session has no job left. gradio_client 2.7.2 decides whether a new
job needs a new reader when the job is submitted: if the reader has not yet handled the server's
`close_stream`, the new job is left to that reader, which then ends and marks the job cancelled
(`concurrent.futures.CancelledError` from `Client.predict`, though the server runs the job). It was hit
once in the CI soak of 2026-12-02 (8 threads sharing 8 clients); `python -m tests.stream_race` reproduces it
(docs/RELIABILITY.md, "The soak's CancelledError", has the counts).

So each client here belongs to one thread, and after each answer it waits until its reader has closed: the
next job then always opens a reader of its own. Nothing on the server is changed by this.
"""

from __future__ import annotations

import time

from gradio_client import Client

STREAM_CLOSE_WAIT_S = 5.0  # the server sends close_stream right after the last job's result


def predict(client: Client, *args, api_name: str):
    """`client.predict(*args, api_name=...)`, returning (or raising what the server answered) once the
    client's event stream is closed."""
    try:
        return client.predict(*args, api_name=api_name)
    finally:
        deadline = time.monotonic() + STREAM_CLOSE_WAIT_S
        while client.stream_open and time.monotonic() < deadline:
            time.sleep(0.005)
