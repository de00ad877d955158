"""Serve a trained bundle over HTTP: a JSON API (FastAPI on uvicorn) and a small page.

    rnnkit serve runs/imdb                      # http://127.0.0.1:8000/

    from rnnkit.serve.app import create_app     # the ASGI app, for tests or another server
    app = create_app(rnnkit.load("runs/imdb"))

Modules: `app` (endpoints, errors), `limits` (ServeLimits, checked at startup),
`guard` (body size, timeout, content type, UTF-8 before the app reads a body),
`batcher` (concurrent requests share model calls), `sentiment` (truncation,
leave-one-word-out explanations), `charlm` (/v1/generate: settings, unseen prime
characters, the deadline, streaming), `command` (the CLI), `static/` (the page,
for whichever task the bundle has).
This package imports FastAPI only in `app`; the CLI registers without it.
"""
