"""Flaskr: the application factory."""

import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(test_config=None):
    """Create and configure an instance of the Flaskr application."""
    instance_path = os.environ.get("FLASKR_INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=os.path.abspath(instance_path) if instance_path else None,
        instance_relative_config=True,
    )

    from . import (
        account,
        admin,
        auth,
        blog,
        caching,
        comments,
        copydb,
        db,
        discovery,
        errors,
        feeds,
        health,
        help,
        likes,
        logs,
        markdown,
        portability,
        search,
        security,
        settings,
        snippets,
        uploads,
    )

    settings.configure(app, test_config)
    db.init_app(app)
    discovery.init_app(app)
    errors.init_app(app)
    logs.init_app(app)
    caching.init_app(app)
    markdown.init_app(app)
    snippets.init_app(app)
    security.init_app(app)
    portability.init_app(app)
    copydb.init_app(app)
    admin.init_app(app)

    app.register_blueprint(auth.bp)
    app.register_blueprint(blog.bp)
    app.register_blueprint(comments.bp)
    app.register_blueprint(likes.bp)
    app.register_blueprint(uploads.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(search.bp)
    app.register_blueprint(feeds.bp)
    app.register_blueprint(discovery.bp)
    app.register_blueprint(help.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(admin.bp)
    app.add_url_rule("/", endpoint="index")

    proxies = app.config["PROXY_FIX"]
    if proxies:
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_prefix=proxies
        )
    return app
