"""Theme fonts (issue 9, item 8): the shipped families are honoured in the PDF and HTML, any other name
is refused with a 422 that lists the supported ones, over the HTTP API."""

from __future__ import annotations

import io

import pypdf
import pytest
from tests.assembly.test_artifacts_api import buyer, setup_workspace

from offerloop.assembly import service as assembly_service
from offerloop.assembly.document import Block, Document, Section, Theme
from offerloop.assembly.render.html import render_html
from offerloop.assembly.render.pdf import render_pdf

SUPPORTED = ["DejaVu Sans Mono", "Libertinus Serif", "New Computer Modern", "Open Sans"]


def pdf_fonts(pdf: bytes) -> set[str]:
    out: set[str] = set()
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        fonts = page.get("/Resources", {}).get("/Font", {})
        out.update(str(f.get_object()["/BaseFont"]).split("+", 1)[-1] for f in fonts.values())
    return out


DOC = Document(
    title="Fonts",
    created_on="2026-12-05",
    sections=(Section("s", "Section", (Block(markdown="Body *text* and `code`.", title="Block"),)),),
)


@pytest.mark.parametrize(
    ("theme", "expected"),
    [
        (Theme(body_font="Open Sans"), {"OpenSans", "OpenSans-Italic"}),
        (Theme(heading_font="Open Sans"), {"OpenSans-Bold"}),
        (Theme(body_font="New Computer Modern"), {"NewCM10-Regular-Identity-H"}),
    ],
)
def test_each_shipped_font_is_embedded_in_the_pdf(theme: Theme, expected: set[str]) -> None:
    assert expected <= pdf_fonts(render_pdf(DOC, theme))


def test_the_html_names_the_theme_font_first() -> None:
    html = render_html(DOC, Theme(body_font="Open Sans"))
    assert 'font-family: "Open Sans", "Helvetica Neue", Arial, ' in html


def test_put_theme_refuses_unknown_fonts_and_lists_the_supported_ones(client, secret_headers) -> None:
    for field in ("body_font", "heading_font", "mono_font"):
        r = client.put("/v1/theme", headers=secret_headers, json={field: "Comic Sans MS"})
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "unsupported_font"
        assert error["details"] == {"field": field, "font": "Comic Sans MS", "supported": SUPPORTED}
        assert "Open Sans" in error["message"] and "Comic Sans MS" in error["message"]
    r = client.put("/v1/theme", headers=secret_headers, json={"body_font": "x" * 100_000})
    assert (
        r.status_code == 422 and r.json()["error"]["details"]["font"] == "x" * 100 and len(r.content) < 1000
    )
    r = client.put("/v1/theme", headers=secret_headers, json={"body_font": ["Open Sans"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_theme"


def test_a_supported_font_set_over_http_reaches_the_rendered_pdf(
    client, db, write_headers, secret_headers
) -> None:
    setup_workspace(client, secret_headers)
    r = client.put(
        "/v1/theme", headers=secret_headers, json={"body_font": "  open   SANS ", "primary": "#123456"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["body_font"] == "Open Sans"  # stored under its canonical name
    buyer(client, write_headers, "ana", "Ana Lima", "idea", 1, "sell my first template")
    made = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "ana", "policy": "starter-workbook"}
    )
    assert made.status_code == 202, made.text
    assert [s for _, _, s in assembly_service.run_pending(db=db)] == ["ready"]
    link = client.get(f"/v1/artifacts/{made.json()['id']}/download", headers=secret_headers).json()
    fonts = pdf_fonts(client.get(link["url"]).content)
    assert "OpenSans" in fonts and not any(f.startswith("LibertinusSerif") for f in fonts)


def test_a_font_stored_before_fonts_were_checked_falls_back_to_the_default_family() -> None:
    fonts = pdf_fonts(render_pdf(DOC, Theme(body_font="Comic Sans MS", heading_font="Papyrus")))
    assert "LibertinusSerif-Regular-Identity-H" in fonts and "NewCM10-Bold-Identity-H" in fonts
    assert '"Libertinus Serif", Georgia' in render_html(DOC, Theme(body_font="Comic Sans MS"))


def test_every_shipped_font_file_and_licence_is_package_data() -> None:
    import fnmatch
    import tomllib
    from pathlib import Path

    from offerloop.assembly.render.fonts import FONT_DIR

    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "offerloop"
    ]
    files = sorted(p.relative_to(FONT_DIR.parents[2]).as_posix() for p in FONT_DIR.iterdir())
    assert {"assembly/render/fonts/OFL-NotoEmoji.txt", "assembly/render/fonts/LICENSE-OpenSans.txt"} <= set(
        files
    )
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"primary": "red; } body { display:none } x {"}, "primary"),
        ({"accent": "url(https://evil.example/x)"}, "accent"),
        ({"text": "#12345"}, "text"),
        ({"logo_svg": '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'}, "logo_svg"),
        ({"logo_svg": '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'}, "logo_svg"),
        (
            {
                "logo_svg": '<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink">'
                '<image x:href="https://evil.example/t.png"/></svg>'
            },
            "logo_svg",
        ),
        ({"logo_svg": '<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg>&a;</svg>'}, "logo_svg"),
        ({"logo_svg": "<html><body/></html>"}, "logo_svg"),
        ({"logo_svg": "<svg"}, "logo_svg"),
        ({"primary": "#1f3a5f\n"}, "primary"),
        (
            {
                "logo_svg": '<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/svg+xml;base64,PHN2Zz4="/></svg>'
            },
            "logo_svg",
        ),
        (
            {
                "logo_svg": '<svg xmlns="http://www.w3.org/2000/svg"><a><animate attributeName="href" values="javascript:alert(1)"/></a></svg>'
            },
            "logo_svg",
        ),
        (
            {
                "logo_svg": '<svg xmlns="http://www.w3.org/2000/svg"><style>@import url("https://evil.example/x.css")</style></svg>'
            },
            "logo_svg",
        ),
        (
            {
                "logo_svg": '<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(https://evil.example/p)"/></svg>'
            },
            "logo_svg",
        ),
        (
            {
                "logo_svg": '<?xml-stylesheet href="https://evil.example/x.css"?><svg xmlns="http://www.w3.org/2000/svg"/>'
            },
            "logo_svg",
        ),
        ({"logo_svg": "<svg>" + " " * 200_001 + "</svg>"}, "logo_svg"),
    ],
)
def test_theme_colours_and_logo_are_refused_not_ignored(client, secret_headers, body, field) -> None:
    r = client.put("/v1/theme", headers=secret_headers, json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("invalid_theme", field)


def test_a_plain_svg_logo_and_hex_colours_are_taken(client, secret_headers) -> None:
    logo = (
        '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        '<defs><linearGradient id="g"/></defs><rect width="10" height="10" fill="url(#g)"/></svg>'
    )
    r = client.put(
        "/v1/theme", headers=secret_headers, json={"primary": "#123456", "accent": "#abc", "logo_svg": logo}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["primary"], r.json()["accent"], r.json()["logo_svg"]) == ("#123456", "#abc", logo)
