"""The Flask application factory."""

from __future__ import annotations

from flask import Flask, jsonify

from datamgmt import __version__


def create_app() -> Flask:
    app = Flask("datamgmt")

    @app.get("/ping")
    def ping():  # type: ignore[no-untyped-def]
        return jsonify({"version": __version__})

    return app
