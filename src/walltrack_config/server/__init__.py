"""`walltrack-config serve`: the REST API over the lifecycle (FastAPI on uvicorn).

Reads come from memory (one live listener per process, see `state`); writes go through the lifecycle API
on a connection pool; every request runs as an authenticated principal (V12), whose name is what the
audit trail records. Import `app.create_app` for the ASGI application.
"""
