"""Who gets a place in the queue: bounded lanes, a fair share per visitor, no work for clients that left.

`enable_queue(demo, limits)` replaces `demo.queue(...)`. It gives the studio three lanes (Gradio
concurrency groups) so that searches never wait behind photo preparations or edits:

| lane      | events                                 | running at once |
|-----------|----------------------------------------|-----------------|
| `search`  | the page's search, API `/search`       | 4               |
| `prepare` | photo upload and category change, `/prepare` | 2         |
| `gpu`     | Generate, API `/edit`                  | 1               |

and checks every new event before Gradio queues it (`Admission.refusal`):

- the queue as a whole holds at most `limits.queue_size` events;
- one session (a browser tab or a gradio_client `Client`) has at most `edits_per_session` edits,
  `prepares_per_session` preparations and `searches_per_session` searches queued or running, and one
  client address at most `edits_per_address` / `prepares_per_address` across its sessions (a new session
  costs nothing, an address does);
- the values of one call add up to at most `limits.request_kb` (files travel as uploads, not here);
- every file value names a file inside the upload folder (`uploads.py`): Gradio checks that only for
  values that carry `meta`, and answers a failed check with a blank error.

A refused event is answered at once with "busy, try again in N s" (N from the lane's queue and its
average run time) or the limit it broke, and one log line; it never takes a queue slot. A queued event
whose client does not read its results (it never opened the result stream, or stopped reading it) for
`listener_grace_s` is dropped before it starts (`Admission.drop_unheard`).
When the queue falls idle after some work, the freed heap goes back to the system
(`Admission.hand_back_when_idle`, studio/memory.py).

Gradio 6.31 has no hook for any of this, so it wraps the queue's `push` and watches each session's
message queue. The names used (`Queue.push`, `event_queue_per_concurrency_id`, `active_jobs`,
`pending_messages_per_session`, `clean_events`, `route_utils.GradioMultiPartParser`) are Gradio
internals of that version: tests/test_admission.py drives each over HTTP, so an upgrade that moves
them fails there.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from typing import Any

from fashion_rag.config import ServingLimits
from fashion_rag.errors import InputError
from fashion_rag.studio.memory import hand_back_freed_heap, hand_back_periodically
from fashion_rag.studio.uploads import NOT_AN_UPLOAD, uploaded_file

logger = logging.getLogger(__name__)

LANE_LIMITS = {"search": 4, "prepare": 2, "gpu": 1}  # events of each lane running at once
WATCH_EVERY_S = 1.0  # how often queued events are checked for a client that stopped listening, and for idleness


class WatchedQueue(asyncio.Queue):
    """A session's message queue that remembers when its reader last asked for a message.

    Gradio's result stream (`/queue/data`, `/call/<api>/<id>`) waits on `get()` at least every 10 s while
    it is open, so a queue whose `get()` is older than that has nobody listening.
    """

    def __init__(self) -> None:
        super().__init__()
        self.created = self.last_read = time.monotonic()
        self.read_ever = False

    async def get(self):
        self.last_read, self.read_ever = time.monotonic(), True
        try:
            return await super().get()
        finally:
            self.last_read = time.monotonic()

    def listening(self, grace_s: float, now: float) -> bool:
        return now - (self.last_read if self.read_ever else self.created) < grace_s


def client_address(request: Any, behind_proxy: bool) -> str:
    """The visitor's address: the socket peer, or the first X-Forwarded-For entry behind a Space's proxy."""
    if behind_proxy and request is not None:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded.strip():
            return forwarded.split(",")[0].strip()
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


def file_paths(value: Any) -> list[str]:
    """The `path` of every file value (a dict with a string `path`) in a call's values, at any depth."""
    if isinstance(value, dict):
        own = [value["path"]] if isinstance(value.get("path"), str) else []
        return own + [path for item in value.values() for path in file_paths(item)]
    if isinstance(value, list | tuple):
        return [path for item in value for path in file_paths(item)]
    return []


def outside_uploads(path: str) -> bool:
    """True for a path that does not resolve inside the upload folder (uploads.uploaded_file's rule)."""
    try:
        uploaded_file(path, "file")
    except InputError:
        return True
    return False


def values_size(value: Any) -> int:
    """About how many bytes a call's values hold (strings and nested lists/dicts), for the request cap."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(values_size(k) + values_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(values_size(item) for item in value)
    return 8


class Admission:
    """The checks every new event passes before Gradio queues it (see the module docstring)."""

    def __init__(self, queue, limits: ServingLimits, behind_proxy: bool = False) -> None:
        self.queue = queue
        self.limits = limits
        self.behind_proxy = behind_proxy
        self.per_session = {
            "gpu": limits.edits_per_session,
            "prepare": limits.prepares_per_session,
            "search": limits.searches_per_session,
        }
        self.per_address = {"gpu": limits.edits_per_address, "prepare": limits.prepares_per_address}
        self.refused: Counter[str] = Counter()  # reason -> count, for the attack replay and tests
        self.dropped = 0
        self._busy_since_hand_back = False
        self._watcher: asyncio.Task | None = None

    # -- deciding ------------------------------------------------------------------------------------

    def lane_events(self, lane: str) -> list:
        """Events of a lane that are queued or running."""
        queued = list(getattr(self.queue.event_queue_per_concurrency_id.get(lane), "queue", []))
        running = [event for job in self.queue.active_jobs if job for event in job if event.concurrency_id == lane]
        return queued + running

    def idle(self) -> bool:
        """Nothing queued or running, in any lane or event of its own."""
        queues = self.queue.event_queue_per_concurrency_id.values()
        return not any(self.queue.active_jobs) and not any(getattr(queue, "queue", None) for queue in queues)

    def refusal(self, body, request, fn) -> tuple[str, str] | None:
        """(reason, message) when this event must not be queued, else None."""
        if any(outside_uploads(path) for path in file_paths(body.data)):
            return "not-an-upload", "a " + NOT_AN_UPLOAD.format(what="file value")
        size = values_size(body.data)
        if size > self.limits.request_kb * 1024:
            return "request-size", (
                f"this request carries {size // 1024:,} KB of values: at most "
                f"{self.limits.request_kb} KB (send images as file uploads)"
            )
        if len(self.queue) >= self.limits.queue_size:
            return (
                "queue-full",
                f"the studio is busy ({len(self.queue)} requests waiting): try again in {self.wait_s()} s",
            )
        lane = fn.concurrency_id
        if lane not in self.per_session:
            return None
        events = self.lane_events(lane)
        mine = sum(1 for event in events if body.session_hash and event.session_hash == body.session_hash)
        if mine >= self.per_session[lane]:
            why = f"{mine} of your requests of this kind are already waiting or running"
            return f"{lane}-per-session", self.busy(lane, events, why)
        address = client_address(request, self.behind_proxy)
        if lane in self.per_address:
            from_here = sum(1 for event in events if client_address(event.request, self.behind_proxy) == address)
            if from_here >= self.per_address[lane]:
                why = f"{from_here} requests of this kind from your address are already waiting or running"
                return f"{lane}-per-address", self.busy(lane, events, why)
        return None

    def busy(self, lane: str, events: list, why: str) -> str:
        return f"busy: {why}; try again in {self.wait_s(lane, len(events))} s"

    def wait_s(self, lane: str | None = None, ahead: int | None = None) -> int:
        """Seconds until a slot frees up: events ahead x their average run time / the lane's concurrency."""
        if lane is None:
            return 30
        times = [
            stats.avg_time
            for fn, stats in self.queue.process_time_per_fn.items()
            if fn.concurrency_id == lane and stats.avg_time
        ]
        average = max(times) if times else 10.0
        return max(1, math.ceil(average * max(1, ahead or 0) / LANE_LIMITS.get(lane, 1)))

    # -- wrapping Gradio's queue --------------------------------------------------------------------

    async def push(self, original, body, request, username):
        """Gradio's Queue.push behind the checks; refused events get an answer, never a slot."""
        from gradio import route_utils

        fn = route_utils.get_fn(self.queue.blocks, None, body) if body.fn_index is not None else None
        refused = self.refusal(body, request, fn) if fn is not None else None
        if refused:
            reason, message = refused
            self.refused[reason] += 1
            logger.info(
                "refused %s (%s) from %s: %s",
                fn.api_name or fn._id,
                reason,
                client_address(request, self.behind_proxy),
                message,
            )
            if fn.api_visibility == "private":  # the page: a 400's detail becomes its error toast
                return False, message, "error"
            # gradio_client turns a 422 of this shape into ValidationError(message); raw HTTP reads the JSON.
            detail = [{"__type__": "validate", "is_valid": False, "message": message, "parameter_name": "request"}]
            return False, detail, "validator_error"
        if body.session_hash and body.session_hash not in self.queue.pending_messages_per_session:
            self.queue.pending_messages_per_session[body.session_hash] = WatchedQueue()  # push keeps it
        pushed = await original(body=body, request=request, username=username)
        if pushed[0]:
            self._busy_since_hand_back = True
            self.watch_new_session(body.session_hash)
            self.start_watcher()
        return pushed

    def watch_new_session(self, session_hash: str) -> None:
        """A call without a session (`/call/<api>`) got a new one inside push: watch it too. Its client
        learns the event id only from push's answer, so no reader can hold the queue being replaced."""
        messages = self.queue.pending_messages_per_session.get(session_hash)
        if messages is not None and not isinstance(messages, WatchedQueue):
            watched = WatchedQueue()
            while not messages.empty():
                watched.put_nowait(messages.get_nowait())
            self.queue.pending_messages_per_session[session_hash] = watched

    def tell_late_reader(self, event) -> None:
        """Leave the dropped event's answer where a reader that comes late will find it."""
        from gradio.server_messages import ProcessCompletedMessage

        message = (
            f"this request was dropped before it started: nobody read its results for "
            f"{self.limits.listener_grace_s:g} s; send it again and read its result stream"
        )
        messages = self.queue.pending_messages_per_session.get(event.session_hash)
        if messages is not None:
            messages.put_nowait(ProcessCompletedMessage(output={"error": message}, success=False, event_id=event._id))

    def start_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch_forever())

    async def _watch_forever(self) -> None:
        while not self.queue.stopped:
            await asyncio.sleep(WATCH_EVERY_S)
            await self.drop_unheard()
            await self.hand_back_when_idle()

    async def hand_back_when_idle(self) -> bool:
        """Once the queue has nothing queued or running after some work, hand the freed heap back
        (studio/memory.py): an idle server then holds what it uses, not the free pages its last requests
        left resident (a 50 MB swing in the soak, docs/RELIABILITY.md). True when it did."""
        if not self._busy_since_hand_back or not self.idle():
            return False
        self._busy_since_hand_back = False
        await asyncio.to_thread(hand_back_freed_heap)
        return True

    async def drop_unheard(self) -> int:
        """Drop queued (not yet running) events whose client has not read its results for the grace time."""
        now, grace = time.monotonic(), self.limits.listener_grace_s
        unheard = []
        for lane in self.per_session:
            for event in list(getattr(self.queue.event_queue_per_concurrency_id.get(lane), "queue", [])):
                messages = self.queue.pending_messages_per_session.get(event.session_hash)
                if isinstance(messages, WatchedQueue) and not messages.listening(grace, now):
                    unheard.append(event)
        for event in unheard:
            await self.queue.clean_events(event_id=event._id)
            self.tell_late_reader(event)
            logger.info(
                "dropped queued %s of session %s: its client stopped listening",
                event.fn.api_name,
                event.session_hash[:8],
            )
        self.dropped += len(unheard)
        return len(unheard)


def limit_files_per_upload(files: int) -> None:
    """At most `files` files in one upload request (Gradio's own parser allows 1,000).

    Gradio's upload route builds its multipart parser with a fixed `max_files=1000`; a subclass that caps
    it is put in its place. Past the cap Gradio answers 400 "Too many files. Maximum number of files is N."
    """
    from gradio import route_utils

    parser = route_utils.GradioMultiPartParser
    base = getattr(parser, "uncapped", parser)

    class CappedParser(base):
        uncapped = base

        def __init__(self, *args, max_files: float = 1000, **kwargs) -> None:
            super().__init__(*args, max_files=min(max_files, files), **kwargs)

    route_utils.GradioMultiPartParser = CappedParser


def enable_queue(demo, limits: ServingLimits, behind_proxy: bool = False) -> Admission:
    """Queue `demo` with the studio's lanes and admission checks; returns the Admission (for its counters)."""
    demo.queue(max_size=None, default_concurrency_limit=LANE_LIMITS["search"])  # the size is checked below
    queue = demo._queue
    admission = Admission(queue, limits, behind_proxy)
    original = queue.push

    async def push(body, request, username=None):
        return await admission.push(original, body, request, username)

    queue.push = push
    limit_files_per_upload(limits.files_per_upload)
    hand_back_periodically()  # closed tabs' state is dropped between requests (studio/memory.py)
    demo.admission = admission
    return admission
