"""HTML renderings: a self-contained web page, an email-safe page and the instant-preview fragment.

Templates live in this module (no package data). Jinja2 autoescapes every document value; the only
strings marked safe are the block HTML from :mod:`markup` (which escapes all text itself), the CSS built
here from validated theme values, and the logo as a base64 data URI. Nothing refers to an outside asset.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape
from markupsafe import Markup

from offerloop.assembly.document import Block, Document, Section, Theme
from offerloop.assembly.render.fonts import css_stack
from offerloop.assembly.render.markup import css_color, parse, plain_text, to_html

__all__ = [
    "AI_LABEL",
    "EMAIL_MAX_BYTES",
    "FULL_VERSION_LINK",
    "page_css",
    "render_email",
    "render_html",
    "render_preview",
]

AI_LABEL = "AI-assisted"
_DEFAULT = Theme()
# h1 document title, h2 section, h3 block title, then the block's own headings (h3 when it has no title)
_SECTION_LEVEL = 2


@dataclass(frozen=True, slots=True)
class _Palette:
    primary: str
    accent: str
    text: str
    body: str
    heading: str
    mono: str


def _palette(theme: Theme, *, email: bool = False) -> _Palette:
    """Colours and font stacks. The e-mail repeats its stacks inline on every heading, so only its body
    stack (which everything inherits) names the emoji fonts: bytes count against Gmail's clipping."""
    return _Palette(
        primary=css_color(theme.primary, _DEFAULT.primary),
        accent=css_color(theme.accent, _DEFAULT.accent),
        text=css_color(theme.text, _DEFAULT.text),
        body=css_stack(theme.body_font, _DEFAULT.body_font),
        heading=css_stack(theme.heading_font, _DEFAULT.heading_font, emoji=not email),
        mono=css_stack(theme.mono_font, _DEFAULT.mono_font, emoji=not email),
    )


# Heading sizes in em of the body text: strictly decreasing with the level, the smallest the body size,
# so a block's own heading is never smaller than the paragraph under it (browsers' h5/h6 are).
HEADING_EM: tuple[float, ...] = (2.0, 1.6, 1.3, 1.15, 1.07, 1.0)
# The same for e-mail, in px over a 16px body (mail clients ignore <style>, so they are inline).
EMAIL_BODY_PX = 16
EMAIL_HEADING_PX: tuple[int, ...] = (28, 22, 19, 18, 17, 16)
BLANK_EM = 4.5  # writing space in an empty worksheet cell: three lines and some air


def _heading_sizes_css() -> str:
    return "\n".join(f"h{level} {{ font-size: {size}em; }}" for level, size in enumerate(HEADING_EM, start=1))


def page_css(theme: Theme = _DEFAULT) -> str:
    """The web page's stylesheet for a theme (also usable around :func:`render_preview`)."""
    p = _palette(theme)
    return f"""
body {{ margin: 0; background: #f5f5f2; color: {p.text}; font-family: {p.body}; font-size: 17px; line-height: 1.6; }}
.page {{ max-width: 48rem; margin: 0 auto; background: #fff; padding: 0 2.5rem 3rem; }}
.cover {{ background: {p.primary}; color: #fff; margin: 0 -2.5rem 2rem; padding: 5rem 2.5rem 2.5rem; }}
.cover h1 {{ color: #fff; font-family: {p.heading}; font-size: 2.4rem; line-height: 1.15; margin: 0; }}
.cover .subtitle {{ font-size: 1.25rem; margin: .75rem 0 0; opacity: .9; }}
.cover .facts {{ margin: 1.5rem 0 0; font-size: .95rem; }}
.cover .logo {{ max-height: 3.5rem; margin-bottom: 1.5rem; }}
h1, h2, h3, h4, h5, h6 {{ font-family: {p.heading}; color: {p.primary}; line-height: 1.25; }}
{_heading_sizes_css()}
.toc, .outline {{ border-left: 3px solid {p.accent}; padding: .25rem 0 .25rem 1rem; margin: 0 0 2.5rem; }}
.toc h2 {{ margin-top: 0; font-size: 1.2rem; }}
.toc ol, .outline ol {{ margin: .2rem 0; padding-left: 1.25rem; }}
.toc a {{ color: inherit; text-decoration: none; }}
.toc a:hover {{ text-decoration: underline; }}
.section-title {{ border-bottom: 2px solid {p.accent}; padding-bottom: .3rem; margin-top: 3rem; }}
.block {{ margin: 1.75rem 0; }}
.block-title {{ margin-bottom: .3rem; }}
.block-meta {{ margin: 0 0 .75rem; font-size: .8rem; color: #6b6b6b; }}
.ai-tag {{ display: inline-block; font-family: system-ui, sans-serif; font-size: .72rem; font-weight: 700;
  color: {p.accent}; border: 1px solid {p.accent}; border-radius: 3px; padding: 0 .45em; margin-right: .5em; }}
a {{ color: {p.primary}; }}
code, pre {{ font-family: {p.mono}; font-size: .88em; }}
code {{ background: #f3f3f0; padding: .1em .3em; border-radius: 3px; }}
pre {{ background: #f3f3f0; padding: .8rem 1rem; border-radius: 4px; overflow-x: auto; }}
pre code {{ background: none; padding: 0; }}
blockquote {{ margin: 1rem 0; padding: .2rem 1rem; border-left: 3px solid {p.accent}; color: #444; font-style: italic; }}
table {{ border-collapse: collapse; margin: 1rem 0; width: 100%; }}
table.worksheet {{ table-layout: fixed; }}
th, td {{ border: 1px solid #cfcfcf; padding: .35rem .7rem; vertical-align: top; }}
th {{ background: #f3f3f0; text-align: left; }}
td.blank {{ height: {BLANK_EM}em; }}
thead {{ display: table-header-group; }}
tr, .block-meta {{ break-inside: avoid; }}
h1, h2, h3, h4, h5, h6, .block-meta {{ break-after: avoid; }}
ul.task-list {{ list-style: none; padding-left: .25rem; }}
.task-list-item input {{ accent-color: {p.accent}; margin-right: .4em; }}
hr {{ border: 0; border-top: 1px solid #ddd; margin: 2rem 0; }}
@page {{ size: A4; margin: 2.6cm 2.2cm 2.4cm; }}
@media print {{
  body {{ background: #fff; font-size: 11pt; line-height: 1.45; orphans: 3; widows: 3; }}
  table {{ break-inside: avoid; }}  /* a table longer than a page still breaks, repeating its thead */
  .page {{ max-width: none; padding: 0; }}
  .cover {{ margin: 0 0 2rem; padding: 3rem 2rem 2rem; }}
  .section {{ break-before: page; }}
}}
""".strip()


def _email_styles(p: _Palette) -> dict[str, str]:
    """Inline styles for the block HTML in email (clients drop or ignore <style>)."""
    heading = f"font-family:{p.heading};color:{p.primary};line-height:1.3;margin:18px 0 8px 0"
    return {
        "p": "margin:0 0 12px 0",
        **{
            f"h{i}": f"{heading};font-size:{size}px"
            for i, size in zip(range(1, 7), EMAIL_HEADING_PX, strict=True)
        },
        "ul": "margin:0 0 12px 0;padding-left:22px",
        "ol": "margin:0 0 12px 0;padding-left:22px",
        "li": "margin:0 0 4px 0",
        "task-list": "margin:0 0 12px 0;padding-left:0;list-style:none",
        "task": "margin:0 0 4px 0;list-style:none",
        "check": f"color:{p.accent};font-size:16px",
        "blockquote": f"margin:0 0 12px 0;padding:4px 12px;border-left:3px solid {p.accent};color:#444444",
        "pre": "margin:0 0 12px 0;padding:10px 12px;background:#f3f3f0;white-space:pre-wrap;word-break:break-word",
        "pre code": f"font-family:{p.mono};font-size:13px",
        "code": f"font-family:{p.mono};font-size:13px;background:#f3f3f0;padding:1px 3px",
        "table": "border-collapse:collapse;margin:0 0 12px 0;width:100%",
        "worksheet": "table-layout:fixed",
        "blank": f"height:{round(EMAIL_BODY_PX * 1.55 * 3) + 4}px",
        "th": "border:1px solid #cfcfcf;padding:6px 8px;background:#f3f3f0;text-align:left",
        "td": "border:1px solid #cfcfcf;padding:6px 8px",
        "a": f"color:{p.primary}",
        "hr": "border:0;border-top:1px solid #dddddd;margin:18px 0",
    }


_MACROS = """
{%- macro ai_tag(style="") -%}
<span class="ai-tag"{% if style %} style="{{ style }}"{% endif %}>{{ ai_label }}</span>
{%- endmacro -%}
{%- macro section_html(s) -%}
<section class="section" id="{{ s.id }}">
<h2 class="section-title">{{ s.title }}</h2>
{% if s.intro %}<div class="section-intro">
{{ s.intro }}</div>
{% endif %}
{% for b in s.blocks %}
<article class="block block-{{ b.kind }}"{% if b.id %} id="{{ b.id }}"{% endif %}>
{% if b.title %}<h3 class="block-title">{{ b.title }}</h3>
{% endif %}
{% if b.ai or b.minutes is not none %}<p class="block-meta">{% if b.ai %}{{ ai_tag() }}{% endif %}
{%- if b.minutes is not none %}<span class="minutes">{{ b.minutes }} min</span>{% endif %}</p>
{% endif %}
<div class="block-body">
{{ b.html }}</div>
</article>
{% endfor %}
</section>
{%- endmacro -%}
{%- macro outline(sections, links) -%}
<ol>
{% for s in sections %}
<li>{% if links %}<a href="#{{ s.id }}">{{ s.title }}</a>{% else %}{{ s.title }}{% endif %}
{% if s.titled %}<ol>
{% for b in s.titled %}<li>{% if links %}<a href="#{{ b.id }}">{{ b.title }}</a>{% else %}{{ b.title }}{% endif %}</li>
{% endfor %}</ol>
{% endif %}</li>
{% endfor %}
</ol>
{%- endmacro -%}
"""

_WEB = """{% from "macros.html" import section_html, outline, ai_tag %}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ doc.title }}</title>
<style>
{{ css }}
</style>
</head>
<body>
<div class="page">
<header class="cover">
{% if logo %}<img class="logo" src="{{ logo }}" alt="">
{% endif %}
<h1>{{ doc.title }}</h1>
{% if doc.subtitle %}<p class="subtitle">{{ doc.subtitle }}</p>
{% endif %}
<p class="facts">
{% if doc.buyer_name %}<span class="buyer">Prepared for <strong>{{ doc.buyer_name }}</strong></span><br>
{% endif %}
{% if creator %}<span class="creator">By {{ creator }}</span><br>
{% endif %}
{% if doc.created_on %}<time datetime="{{ doc.created_on }}">{{ doc.created_on }}</time>
{% endif %}
</p>
</header>
<nav class="toc" aria-label="Contents">
<h2>Contents</h2>
{{ outline(sections, true) }}
</nav>
<main>
{% for s in sections %}
{{ section_html(s) }}
{% endfor %}
</main>
</div>
</body>
</html>
"""

_PREVIEW = """{% from "macros.html" import section_html, outline %}<div class="offerloop-preview">
<nav class="outline" aria-label="Outline">
{{ outline(sections, false) }}
</nav>
{% if first %}{{ section_html(first) }}
{% endif %}
</div>
"""

_EMAIL = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="x-apple-disable-message-reformatting">
<title>{{ doc.title }}</title>
</head>
<body style="margin:0;padding:0;background:#f4f4f2;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f4f4f2;">
<tr><td align="center" style="padding:24px 8px;">
<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="width:100%;max-width:600px;background:#ffffff;border-collapse:collapse;font-family:{{ p.body }};font-size:{{ body_px }}px;line-height:1.55;color:{{ p.text }};">
<tr><td style="background:{{ p.primary }};color:#ffffff;padding:36px 28px 28px 28px;font-family:{{ p.heading }};">
<h1 style="margin:0;font-size:28px;line-height:1.2;color:#ffffff;font-family:{{ p.heading }};">{{ doc.title }}</h1>
{% if doc.subtitle %}<p style="margin:10px 0 0 0;font-size:17px;color:#ffffff;">{{ doc.subtitle }}</p>
{% endif %}
{% if doc.buyer_name %}<p style="margin:18px 0 0 0;font-size:14px;color:#ffffff;">Prepared for <strong>{{ doc.buyer_name }}</strong></p>
{% endif %}
{% if creator %}<p style="margin:4px 0 0 0;font-size:14px;color:#ffffff;">By {{ creator }}</p>
{% endif %}
{% if doc.created_on %}<p style="margin:4px 0 0 0;font-size:14px;color:#ffffff;">{{ doc.created_on }}</p>
{% endif %}
</td></tr>
{% if summary is not none %}
{% include "email_summary.html" %}
{% else %}
<tr><td style="padding:24px 28px 8px 28px;">
<p style="margin:0 0 8px 0;font-family:{{ p.heading }};font-size:18px;font-weight:bold;color:{{ p.primary }};">Contents</p>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
{% for s in sections %}
<tr><td style="padding:3px 0;font-size:15px;border-left:3px solid {{ p.accent }};padding-left:10px;"><a href="#{{ s.id }}" style="color:{{ p.text }};text-decoration:none;font-weight:bold;">{{ s.title }}</a>
{% for b in s.titled %}<br><a href="#{{ b.id }}" style="color:{{ p.text }};text-decoration:none;font-size:14px;padding-left:12px;">{{ b.title }}</a>
{% endfor %}</td></tr>
{% endfor %}
</table>
</td></tr>
{% for s in sections %}
<tr><td id="{{ s.id }}" style="padding:20px 28px 4px 28px;">
<h2 style="margin:0 0 12px 0;padding-bottom:6px;border-bottom:2px solid {{ p.accent }};font-family:{{ p.heading }};font-size:{{ sizes[1] }}px;color:{{ p.primary }};">{{ s.title }}</h2>
{% if s.intro %}{{ s.intro }}{% endif %}
{% for b in s.blocks %}
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="margin:0 0 14px 0;"><tr><td style="padding:0;"{% if b.id %} id="{{ b.id }}"{% endif %}>
{% if b.title %}<h3 style="margin:14px 0 6px 0;font-family:{{ p.heading }};font-size:{{ sizes[2] }}px;color:{{ p.primary }};">{{ b.title }}</h3>
{% endif %}
{% if b.ai or b.minutes is not none %}<p style="margin:0 0 10px 0;font-size:12px;color:#6b6b6b;">{% if b.ai %}<span style="display:inline-block;border:1px solid {{ p.accent }};color:{{ p.accent }};border-radius:3px;padding:0 5px;font-family:Arial,Helvetica,sans-serif;font-size:11px;font-weight:bold;">{{ ai_label }}</span> {% endif %}
{%- if b.minutes is not none %}{{ b.minutes }} min{% endif %}</p>
{% endif %}
{{ b.html }}</td></tr></table>
{% endfor %}
</td></tr>
{% endfor %}
{% endif %}
<tr><td style="padding:16px 28px 28px 28px;font-size:12px;color:#8a8a8a;">{% if creator %}{{ creator }} &middot; {% endif %}{{ doc.title }}</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""

# The e-mail when the whole document would be clipped: what is inside, and a link to all of it.
_EMAIL_SUMMARY = """{% macro button() -%}
<tr><td style="padding:8px 28px 16px 28px;"><a href="{{ summary.url }}" style="display:inline-block;background:{{ p.accent }};color:#ffffff;font-family:Arial,Helvetica,sans-serif;font-size:16px;font-weight:bold;text-decoration:none;padding:12px 22px;border-radius:4px;">Open the full {{ summary.noun }}</a></td></tr>
{%- endmacro %}
<tr><td style="padding:24px 28px 8px 28px;">
<p style="margin:0;">Your {{ summary.noun }} is ready: {{ sections | length }} section{{ "s" if sections | length != 1 }}{% if summary.minutes %}, about {{ summary.minutes }} minutes of work{% endif %}. Here is what is inside; the full version opens in your browser, where you can also print it.</p>
</td></tr>
{{ button() }}
{% for s in sections %}
<tr><td style="padding:12px 28px 4px 28px;">
<h2 style="margin:0 0 8px 0;padding-bottom:6px;border-bottom:2px solid {{ p.accent }};font-family:{{ p.heading }};font-size:{{ sizes[1] }}px;color:{{ p.primary }};">{{ s.title }}</h2>
{% if s.intro and summary.detail > 1 %}{{ s.intro }}{% endif %}
{% if summary.detail > 0 %}
{% for b in s.blocks %}
<p style="margin:0 0 10px 0;">{% if b.title %}<strong>{{ b.title }}</strong>{% if b.minutes is not none %} <span style="font-size:13px;color:#6b6b6b;">&middot; {{ b.minutes }} min</span>{% endif %}{% endif %}
{% if summary.detail > 1 and b.teaser %}{% if b.title %}<br>{% endif %}<span style="color:#444444;">{{ b.teaser }}</span>{% endif %}</p>
{% endfor %}
{% endif %}
</td></tr>
{% endfor %}
{{ button() }}
"""

_ENV = Environment(
    loader=DictLoader(
        {
            "macros.html": _MACROS,
            "web.html": _WEB,
            "email.html": _EMAIL,
            "email_summary.html": _EMAIL_SUMMARY,
            "preview.html": _PREVIEW,
        }
    ),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.globals["ai_label"] = AI_LABEL
_ENV.globals["sizes"] = EMAIL_HEADING_PX
_ENV.globals["body_px"] = EMAIL_BODY_PX


@dataclass(frozen=True, slots=True)
class _BlockView:
    id: str | None
    title: str | None
    html: Markup
    ai: bool
    minutes: int | None
    kind: str
    teaser: str = ""


@dataclass(frozen=True, slots=True)
class _SectionView:
    id: str
    title: str
    intro: Markup | None
    blocks: tuple[_BlockView, ...]

    @property
    def titled(self) -> tuple[_BlockView, ...]:
        return tuple(b for b in self.blocks if b.title and b.id)


def _kind(kind: str) -> str:
    return "".join(c for c in kind.lower() if c.isalnum() or c in "-_") or "snippet"


def _md_html(markdown: str, styles: Mapping[str, str] | None, *, under: int = _SECTION_LEVEL + 1) -> Markup:
    """Block Markdown as HTML, its headings nested under level ``under``; safe to mark so because
    markup.to_html escapes all text itself."""
    glyphs = styles is not None  # email clients show form controls badly: draw ☐/☑ instead
    return Markup(to_html(markdown, heading_offset=under, styles=styles, checkbox_glyphs=glyphs))


def _block_view(
    b: Block, sid: str, index: int, styles: Mapping[str, str] | None, *, teasers: bool = False
) -> _BlockView:
    """A block to render; with ``teasers`` (the e-mail summary) its first lines instead of its body."""
    under = _SECTION_LEVEL + (1 if b.title else 0)
    return _BlockView(
        id=f"{sid}-block-{index}" if b.title else None,
        title=b.title,
        html=Markup("") if teasers else _md_html(b.markdown, styles, under=under),
        ai=b.ai_assisted,
        minutes=b.minutes if b.minutes is not None and b.minutes >= 0 else None,
        kind=_kind(b.kind),
        teaser=_teaser(b.markdown) if teasers else "",
    )


def _section_view(
    s: Section, sid: str, styles: Mapping[str, str] | None, *, teasers: bool = False
) -> _SectionView:
    intro = _md_html(s.intro, styles, under=_SECTION_LEVEL) if s.intro else None
    blocks = tuple(_block_view(b, sid, j, styles, teasers=teasers) for j, b in enumerate(s.blocks, start=1))
    return _SectionView(id=sid, title=s.title, intro=intro, blocks=blocks)


def _views(
    doc: Document, styles: Mapping[str, str] | None = None, *, teasers: bool = False
) -> list[_SectionView]:
    return [
        _section_view(s, f"section-{i}", styles, teasers=teasers) for i, s in enumerate(doc.sections, start=1)
    ]


def _logo_uri(theme: Theme) -> str | None:
    if not theme.logo_svg:
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(theme.logo_svg.encode("utf-8")).decode("ascii")


def render_html(document: Document, theme: Theme = _DEFAULT) -> str:
    """A complete, self-contained web page: cover, table of contents, sections."""
    return _ENV.get_template("web.html").render(
        doc=document,
        creator=theme.creator_name,
        css=Markup(page_css(theme)),  # built from validated theme values only
        logo=_logo_uri(theme),
        sections=_views(document),
    )


# Gmail clips a message whose HTML is over ~102 KB; past this the e-mail is a summary with a link.
EMAIL_MAX_BYTES = 100_000
# Stands for the link to the full version until a download fills it in (the stored file cannot hold a
# signed link: it would expire, and the server's public address is only known when it is served).
FULL_VERSION_LINK = "offerloop:full-version"
_NOUNS = {"workbook": "workbook", "audit_report": "audit report", "course_pathway": "course pathway"}
_TEASER_CHARS = 180


class _Summary(NamedTuple):
    url: str
    noun: str
    minutes: int
    detail: int  # 2: intros and a teaser per block, 1: block titles, 0: section titles only


def _teaser(markdown: str) -> str:
    """The first paragraph of a block as plain text, cut at a word near ``_TEASER_CHARS``."""
    para = next((n for n in parse(markdown).children if n.type == "paragraph"), None)
    text = " ".join(plain_text(para).split()) if para is not None else ""
    if len(text) <= _TEASER_CHARS:
        return text
    return text[:_TEASER_CHARS].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def render_email(
    document: Document, theme: Theme = _DEFAULT, *, full_url: str = FULL_VERSION_LINK,
    max_bytes: int = EMAIL_MAX_BYTES,
) -> str:  # fmt: skip
    """An email-safe page: nested tables, inline styles only, at most 600px wide, no images.

    When the whole document would be over ``max_bytes`` (Gmail clips long messages), the e-mail is a
    summary instead: each section with its intro and each block's title, time and first lines, and a
    button to ``full_url`` (the full web version); less detail if even that would be too long.
    """
    p = _palette(theme, email=True)
    styles = _email_styles(p)
    template = _ENV.get_template("email.html")
    common = {"doc": document, "creator": theme.creator_name, "p": p}  # p: autoescaped like everything else
    whole = template.render(**common, sections=_views(document, styles), summary=None)
    if len(whole.encode("utf-8")) <= max_bytes:
        return whole
    views = _views(document, styles, teasers=True)
    minutes = sum(b.minutes for b in document.blocks() if b.minutes is not None and b.minutes > 0)
    noun = _NOUNS.get(document.deliverable, "document")
    out = whole
    for detail in (2, 1, 0):
        out = template.render(**common, sections=views, summary=_Summary(full_url, noun, minutes, detail))
        if len(out.encode("utf-8")) <= max_bytes:
            break
    return out


def render_preview(document: Document, theme: Theme = _DEFAULT) -> str:
    """An HTML fragment for the instant preview: the outline and the first section only. It carries no
    styles (``theme`` is accepted for symmetry): it uses the web page's class names, so
    ``page_css(theme)`` styles it."""
    first = _section_view(document.sections[0], "section-1", None) if document.sections else None
    return _ENV.get_template("preview.html").render(sections=_outline_views(document), first=first)


def _outline_views(doc: Document) -> list[_SectionView]:
    """Section and block titles only (no block is rendered)."""
    empty = Markup("")
    return [
        _SectionView(
            id=f"section-{i}",
            title=s.title,
            intro=None,
            blocks=tuple(
                _BlockView(f"section-{i}-block-{j}", b.title, empty, b.ai_assisted, None, _kind(b.kind))
                for j, b in enumerate(s.blocks, start=1)
                if b.title
            ),
        )
        for i, s in enumerate(doc.sections, start=1)
    ]
