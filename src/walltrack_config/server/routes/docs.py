"""/api/docs: the OpenAPI document as a plain HTML page, rendered here (no third-party script, no CDN:
the server may run where nothing outside can be reached, and the security headers allow only 'self')."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

STYLE = """
:root { color-scheme: light dark; --muted: #667; --line: #ccd; --code: #f3f3f6; }
@media (prefers-color-scheme: dark) { :root { --muted: #99a; --line: #445; --code: #22232a; } }
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1 { margin-bottom: 0; } .muted { color: var(--muted); }
section { border-top: 1px solid var(--line); padding: .5rem 0; }
.method { font: bold 13px monospace; padding: .1rem .4rem; border: 1px solid var(--line); border-radius: 4px; }
code, pre { font-family: ui-monospace, monospace; background: var(--code); border-radius: 4px; }
pre { padding: .5rem; overflow-x: auto; font-size: 13px; }
table { border-collapse: collapse; } td, th { text-align: left; padding: .1rem .6rem .1rem 0; vertical-align: top; }
"""


def _schema(spec: dict[str, Any], node: dict[str, Any]) -> str:
    ref = node.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    if "anyOf" in node:
        return " | ".join(_schema(spec, n) for n in node["anyOf"])
    if node.get("type") == "array":
        return f"list of {_schema(spec, node.get('items', {}))}"
    if "enum" in node:
        return " | ".join(map(str, node["enum"]))
    return str(node.get("type", "any"))


def render(spec: dict[str, Any]) -> str:
    info = spec.get("info", {})
    parts = [f"<h1>{escape(info.get('title', 'API'))}</h1>",
             f"<p class=muted>version {escape(str(info.get('version', '')))} · "
             f"<a href='/api/v1/openapi.json'>openapi.json</a> · authenticate with "
             "<code>Authorization: Bearer &lt;token&gt;</code>; errors are <code>application/problem+json</code></p>"]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            rows = "".join(
                f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
                f"<td>{escape(_schema(spec, p.get('schema', {})))}</td>"
                f"<td>{escape(p.get('description', ''))}</td></tr>" for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {})
            answers = ", ".join(f"{escape(code)} {escape(r.get('description', ''))}"
                                for code, r in op.get("responses", {}).items())
            parts.append(
                f"<section id='{escape(op.get('operationId', path))}'><p><span class=method>{method.upper()}</span> "
                f"<code>{escape(path)}</code> — {escape(op.get('summary', ''))}</p>"
                f"<p>{escape(op.get('description', ''))}</p>"
                + (f"<table>{rows}</table>" if rows else "")
                + (f"<p>body: {escape(', '.join(body))}</p>" if body else "")
                + f"<p class=muted>{answers}</p></section>")
    schemas = spec.get("components", {}).get("schemas", {})
    for name, node in schemas.items():
        parts.append(f"<section id='schema-{escape(name)}'><p><b>{escape(name)}</b></p>"
                     f"<pre>{escape(json.dumps(node.get('properties', node), indent=1)[:4000])}</pre></section>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            "content='width=device-width, initial-scale=1'><title>walltrack-config API</title>"
            "<link rel=stylesheet href='/api/docs/style.css'></head><body>" + "".join(parts) + "</body></html>")


@router.get("/api/docs")
def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(render(request.app.openapi()))


@router.get("/api/docs/style.css")
def style() -> Response:
    return Response(STYLE, media_type="text/css")
