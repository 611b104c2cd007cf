"""/docs renders from Swagger UI files shipped in the package: every asset it names is local and served."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_reference_only_local_assets_and_they_are_served(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert sorted(urls) == [
        "/console/static/swagger/favicon-32x32.png",
        "/console/static/swagger/swagger-ui-bundle.js",
        "/console/static/swagger/swagger-ui.css",
        "/openapi.json",
    ]
    assert "http://" not in page.text and "https://" not in page.text
    for url, kind in (("/console/static/swagger/swagger-ui-bundle.js", "javascript"),
                      ("/console/static/swagger/swagger-ui.css", "text/css"),
                      ("/console/static/swagger/favicon-32x32.png", "image/png")):  # fmt: skip
        asset = client.get(url)
        assert asset.status_code == 200 and kind in asset.headers["content-type"], url
        assert len(asset.content) > 500
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/redoc").status_code == 404


def test_console_assets_ship_with_their_licences(client: TestClient) -> None:
    htmx = client.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200 and "javascript" in htmx.headers["content-type"]
    assert "Zero-Clause BSD" in client.get("/console/static/htmx.LICENSE.txt").text
    assert "Apache License" in client.get("/console/static/swagger/LICENSE.txt").text
    assert client.get("/console/static/console.css").status_code == 200
    assert client.get("/console/static/../../config.py").status_code == 404
