"""Running the app on uvicorn, so that a shutdown also ends the event streams, which never end by themselves
(uvicorn would otherwise wait its whole graceful timeout for them before stopping)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import uvicorn

#: Seconds a thread may hold the GIL while another waits for it. A request hops between the event loop, a worker
#: thread and the listener's thread; at Python's default (5 ms) each hop can wait that long.
SWITCH_INTERVAL = 0.0005


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.on_started = on_started
        sys.setswitchinterval(SWITCH_INTERVAL)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and self.on_started is not None:  # accepting connections: a link printed now works
            self.on_started()

    async def shutdown(self, sockets: Any = None) -> None:
        app = self.config.app
        state = getattr(getattr(app, "state", None), "server", None)
        if state is not None:
            await state.hub.stop()
        await super().shutdown(sockets)
