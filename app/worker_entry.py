"""Imported by the `dramatiq` CLI that `notifygw worker` runs: declares every actor on the broker."""

from app.worker import boot

broker = boot()
