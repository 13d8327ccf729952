"""What every response of the console carries for safety, and what is refused before any view runs.

A strict Content-Security-Policy (scripts and styles from this site only, no inline script, no plugins, no
framing) so that even text a customer wrote that slipped into a page could not run; no caching of pages that
show customer data; no MIME sniffing; no referrer to other sites.
"""

from __future__ import annotations

from flask import Flask, Response, request

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
PUBLIC = ("/static/", "/healthz")


def secure_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith(PUBLIC):
        response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask) -> None:
    app.after_request(secure_headers)

    @app.get("/healthz")
    def health() -> Response:
        """For the runner and the load balancer: answers, and says nothing else."""
        return Response("ok\n", mimetype="text/plain")
