"""The /schema viewer, served from an installed package so that it works offline.

Litestar's render plugins load their JavaScript, CSS and favicon from public CDNs: behind a firewall,
or offline, `/schema` was a blank page. Swagger UI's own build ships inside the `swagger-ui-py`
wheel; its files are served here, below the OpenAPI router, and the page names only them.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS = "/static"  # below the OpenAPI router's own path (/schema)


def asset_dir() -> Path:
    """swagger-ui-py's copy of the Swagger UI distribution (found, not imported: its package imports
    adapters for other web frameworks, which we do not need)."""
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed (pyproject.toml lists it)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class OfflineSwaggerPlugin(SwaggerRenderPlugin):
    def __init__(self, schema_path: str = "/schema", **kwargs: Any) -> None:
        url = schema_path.rstrip("/") + ASSETS
        super().__init__(
            js_url=f"{url}/swagger-ui-bundle.js",
            css_url=f"{url}/swagger-ui.css",
            standalone_preset_js_url=f"{url}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{url}/favicon-32x32.png'>",
            **kwargs,
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            create_static_files_router(
                path=ASSETS, directories=[asset_dir()], include_in_schema=False, name="openapi-viewer-assets"
            )
        )
