"""app/people names every table outside tenants/ that holds a contact's rows, so a merge moves them all.

A contact merge (an inbound WhatsApp message proving two contacts are one person) deletes the
contact merged away, and the foreign keys to it cascade: a table nobody names would lose its rows.
"""

from __future__ import annotations

import importlib
import pkgutil

import app
import tenants
from app.core.db import Base
from app.people.service import CONTACT_OWNED
from tenants.contacts import service as contacts


def _import_every_models_module() -> None:
    for root in (app, tenants):
        for info in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + "."):
            if info.name.endswith(".models"):
                importlib.import_module(info.name)


def test_every_table_that_refers_to_a_contact_is_moved_on_a_merge():
    _import_every_models_module()
    referring = {
        table.name
        for table in Base.metadata.tables.values()
        for fk in table.foreign_keys
        if fk.column.table.name == "contacts"
    }
    moved = {model.__table__.name for model in (*contacts.OWNED, *CONTACT_OWNED)}
    assert referring, "no table refers to contacts: the walk over the models found none"
    assert referring == moved, f"refer to a contact but not moved on a merge: {referring - moved}"
