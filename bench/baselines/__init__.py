"""Minimal Litestar apps doing only the irreducible work of a notifygw path (issue 7 section 1)."""
