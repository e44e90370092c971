"""The HTTP API (FastAPI): thin routers over the use cases, errors as problem+json."""
