"""Minimal Litestar apps doing only the irreducible work of a notifygw path (issue 7 section 1, issue 13).

They import nothing from app/, tenants/ or channels/: a change to the product must not move the
yardstick it is measured against.
"""
