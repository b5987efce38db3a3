"""The console's route class: a page's refusals are pages, never problem+json (that is the API's answer)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from ...errors import ConfigError
from .web import BadForm, SignedOut, failed, invalid, refused, to_sign_in


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignedOut:
                return to_sign_in(request)
            except (ConfigError, BadForm) as exc:
                return refused(request, exc)
            except RequestValidationError as exc:  # a hand-made URL: a bad page number, a missing field
                return invalid(request, exc)
            except HTTPException as exc:  # the form parser's own limits (too many fields, a broken body)
                return failed(request, exc.status_code, str(exc.detail))

        return page


def page_router() -> APIRouter:
    return APIRouter(route_class=PageRoute, include_in_schema=False)
