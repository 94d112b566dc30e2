"""notifygw: the Litestar app, the notify pipeline, webhooks, workers, config and the CLI."""
