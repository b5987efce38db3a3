"""Running the app on uvicorn, so that a shutdown also ends the event streams, which never end by themselves
(uvicorn would otherwise wait its whole graceful timeout for them before stopping)."""

from __future__ import annotations

from typing import Any

import uvicorn


class Server(uvicorn.Server):
    async def shutdown(self, sockets: Any = None) -> None:
        app = self.config.app
        state = getattr(getattr(app, "state", None), "server", None)
        if state is not None:
            await state.hub.stop()
        await super().shutdown(sockets)
