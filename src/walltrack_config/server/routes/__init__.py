"""The API's routes, one module per concern; each route is a thin typed wrapper over a core call."""
