"""Block Markdown → syntax tree (parsed once) → HTML or Typst markup, with every piece of text escaped.

The dialect is CommonMark plus GitHub pipe tables, strikethrough and task list items (``- [ ] x``, read
from the token stream here, no plugin). Raw HTML in the Markdown is never passed through: it is text.
Images are never fetched: they degrade to their alt text. Any node type this module does not know
degrades to its escaped text, so a conversion never raises on odd input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from html import escape as _html_escape

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = [
    "css_color",
    "css_font_stack",
    "escape_html",
    "escape_typst",
    "heading_levels",
    "parse",
    "plain_text",
    "safe_url",
    "shift_markdown_headings",
    "to_html",
    "to_typst",
    "typst_color",
    "typst_string",
]

_MD = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

_TASK = re.compile(r"^\[([ xX])\](?=\s|$)\s?")
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
_FONT_NAME = re.compile(r"^[A-Za-z0-9 _\-]{1,64}$")
_LANG = re.compile(r"^[A-Za-z0-9_+\-.#]{1,32}$")

# Characters with a meaning somewhere in Typst markup. A backslash before any non-space character is an
# escape in Typst, so escaping a few harmless ones too ("'" and '"' are left for smart quotes) costs nothing.
_TYPST_SPECIAL = frozenset("\\#$*_`<>@=-+/[]~;")

CHECK_OPEN = "\u2610"  # ☐
CHECK_DONE = "\u2611"  # ☑


# ----------------------------------------------------------------------------------------------- parsing
@lru_cache(maxsize=2048)
def parse(markdown: str) -> SyntaxTreeNode:
    """Parse Block Markdown once; the tree is shared between renderers and must not be mutated."""
    return SyntaxTreeNode(_MD.parse(markdown or ""))


def _tree(source: str | SyntaxTreeNode) -> SyntaxTreeNode:
    return parse(source) if isinstance(source, str) else source


def _task(item: SyntaxTreeNode) -> tuple[bool, int] | None:
    """None if the list item is not a task, else (ticked, length of the "[ ] " prefix to drop)."""
    first = _first_text(item)
    m = _TASK.match(first.content) if first is not None else None
    return None if m is None else (m.group(1) in "xX", len(m.group(0)))


def _first_text(item: SyntaxTreeNode) -> SyntaxTreeNode | None:
    """The first text node of a list item's leading paragraph, if the item starts with one."""
    if not item.children or item.children[0].type != "paragraph":
        return None
    para = item.children[0]
    if not para.children or para.children[0].type != "inline":
        return None
    inline = para.children[0]
    if not inline.children or inline.children[0].type != "text":
        return None
    return inline.children[0]


def _list_start(lst: SyntaxTreeNode) -> int | None:
    """An ordered list's start number when it is not 1."""
    start = lst.attrs.get("start")
    return int(start) if isinstance(start, int | str) and str(start).isdigit() else None


def _is_tight(lst: SyntaxTreeNode) -> bool:
    for item in lst.children:
        for child in item.children:
            if child.type == "paragraph":
                return bool(child.hidden)
    return True


def heading_levels(levels: list[int], base: int) -> list[int]:
    """The level each heading of a block takes, in document order, nested under a ``base`` level.

    Distinct source levels are ranked (an atom using ``#`` and ``###`` has two levels, not three), the
    first heading is ``base + 1``, no heading is more than one level deeper than the one before it, and
    none is deeper than 6. So an atom's ``#`` always sits right under its section or block title.
    """
    ranks = {level: rank for rank, level in enumerate(sorted(set(levels)))}
    out: list[int] = []
    previous = base
    for level in levels:
        previous = max(1, min(base + 1 + ranks[level], previous + 1, 6))
        out.append(previous)
    return out


def _heading_map(tree: SyntaxTreeNode, base: int) -> dict[int, int]:
    """id(heading node) -> its normalised level (see :func:`heading_levels`)."""
    nodes = [n for n in tree.walk() if n.type == "heading"]
    levels = heading_levels([int(n.tag[1:] or 1) for n in nodes], base)
    return {id(n): level for n, level in zip(nodes, levels, strict=True)}


# Tables with at most this many body rows are kept on one page (a worksheet's rows are tall).
TABLE_ROWS_KEPT = 14
WORKSHEET_ROWS_KEPT = 8
# The invisible first column of a longer table: an empty cell, and one spanning two rows it keeps together.
_SPACER = "table.cell(stroke: none, inset: 0pt)[]"
_SPANNER = "table.cell(rowspan: 2, breakable: false, stroke: none, inset: 0pt)[]"


def _is_blank(cell: SyntaxTreeNode) -> bool:
    return not plain_text(cell).strip()


def is_worksheet(table: SyntaxTreeNode) -> bool:
    """A table with at least one empty body cell: the buyer is meant to write in it."""
    return any(
        _is_blank(cell)
        for section in table.children
        if section.type != "thead"
        for row in section.children
        for cell in row.children
    )


def plain_text(source: str | SyntaxTreeNode) -> str:
    """The text of a tree with all markup dropped (soft breaks become spaces)."""
    node = _tree(source)
    parts: list[str] = []
    for n in node.walk():
        if n.type in ("text", "code_inline", "code_block", "fence", "html_inline", "html_block"):
            parts.append(n.content)
        elif n.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)


def safe_url(url: str) -> str | None:
    """The URL if it is absolute http(s) or mailto, else None (such links render as their text)."""
    u = url.strip()
    return u if u.lower().startswith(_SAFE_SCHEMES) else None


def css_color(value: str, default: str) -> str:
    """A theme colour if it is a plain hex colour, else the default (theme values are not trusted as CSS)."""
    return value if isinstance(value, str) and _HEX_COLOR.fullmatch(value) else default


def typst_color(value: str, default: str) -> str:
    return f'rgb("{css_color(value, default)}")'


def css_font_stack(name: str, fallback: str) -> str:
    """A CSS font-family list: the theme font (if its name is plain) and generic fallbacks."""
    return f'"{name}", {fallback}' if _FONT_NAME.match(name or "") else fallback


# ---------------------------------------------------------------------------------------------- escaping
def escape_html(text: str) -> str:
    return _html_escape(text, quote=True)


def escape_typst(text: str) -> str:
    """Escape text for Typst markup so it can only ever be literal text.

    Newlines become spaces (a line start is where markup like ``=``, ``-``, ``+`` and ``1.`` means
    something); a ``.`` right after a digit or at the start is escaped too, so "1. x" is never a list.
    """
    out: list[str] = []
    prev = ""
    for ch in text.replace("\r\n", " ").replace("\r", " ").replace("\n", " "):
        if ch in _TYPST_SPECIAL or (ch == "." and (prev == "" or prev.isdigit())):
            out.append("\\" + ch)
        else:
            out.append(ch)
        prev = ch
    return "".join(out)


def typst_string(text: str) -> str:
    """A Typst string literal (code mode) holding exactly ``text``."""
    body = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{body}"'


# -------------------------------------------------------------------------------------------------- HTML
def _attr(tag: str, styles: Mapping[str, str] | None, extra: str = "") -> str:
    style = ";".join(s for s in ((styles or {}).get(tag, ""), extra) if s)
    return f' style="{escape_html(style)}"' if style else ""


def to_html(
    source: str | SyntaxTreeNode,
    *,
    heading_offset: int = 0,
    styles: Mapping[str, str] | None = None,
    checkbox_glyphs: bool = False,
) -> str:
    """HTML for Block Markdown. Headings nest under ``heading_offset`` (see :func:`heading_levels`);
    ``styles`` maps a tag (or ``task``/``check``) to an inline style (email); ``checkbox_glyphs`` draws
    task boxes as ☐/☑ instead of disabled checkboxes."""
    tree = _tree(source)
    r = _HtmlRenderer(_heading_map(tree, heading_offset), styles, checkbox_glyphs)
    return r.blocks(tree.children)


class _HtmlRenderer:
    def __init__(self, levels: dict[int, int], styles: Mapping[str, str] | None, glyphs: bool) -> None:
        self.levels = levels
        self.styles = styles
        self.glyphs = glyphs

    def a(self, tag: str, extra: str = "") -> str:
        return _attr(tag, self.styles, extra)

    def style(self, key: str) -> str:
        return (self.styles or {}).get(key, "")

    def blocks(self, nodes: list[SyntaxTreeNode]) -> str:
        return "".join(self.block(n) for n in nodes)

    def block(self, n: SyntaxTreeNode) -> str:
        t = n.type
        if t == "paragraph":
            body = self.inlines(n)
            return body + "\n" if n.hidden else f"<p{self.a('p')}>{body}</p>\n"
        if t == "heading":
            tag = f"h{self.levels.get(id(n), 6)}"
            return f"<{tag}{self.a(tag)}>{self.inlines(n)}</{tag}>\n"
        if t in ("bullet_list", "ordered_list"):
            return self.list_block(n)
        if t == "blockquote":
            return f"<blockquote{self.a('blockquote')}>\n{self.blocks(n.children)}</blockquote>\n"
        if t in ("fence", "code_block"):
            lang = (n.info or "").strip().split(" ")[0]
            cls = f' class="language-{escape_html(lang)}"' if lang and _LANG.match(lang) else ""
            code = escape_html(n.content)
            return f"<pre{self.a('pre')}><code{cls}{self.a('pre code')}>{code}</code></pre>\n"
        if t == "hr":
            return f"<hr{self.a('hr')}>\n"
        if t == "table":
            return self.table(n)
        if t == "inline":
            return self.inline_children(n.children)
        if n.children:
            return self.blocks(n.children)
        return f"<p{self.a('p')}>{escape_html(n.content)}</p>\n" if n.content.strip() else ""

    def list_block(self, n: SyntaxTreeNode) -> str:
        tag = "ol" if n.type == "ordered_list" else "ul"
        tight = _is_tight(n)
        tasks = [_task(item) for item in n.children]
        has_tasks = any(t is not None for t in tasks)
        start = _list_start(n) if tag == "ol" else None
        start_attr = f' start="{start}"' if start is not None else ""
        cls = ' class="task-list"' if has_tasks else ""
        out = [f"<{tag}{cls}{start_attr}{self.a('task-list' if has_tasks else tag)}>\n"]
        for item, task in zip(n.children, tasks, strict=True):
            if task is None:
                out.append(f"<li{self.a('li')}>{self.item(item, tight, strip=0)}</li>\n")
                continue
            state, strip = task
            if self.glyphs:
                box = f"<span{self.a('check')}>{CHECK_DONE if state else CHECK_OPEN}</span> "
            else:
                box = f'<input type="checkbox" disabled{" checked" if state else ""}> '
            li = f'<li class="task-list-item"{self.a("task")}>'
            out.append(f"{li}{box}{self.item(item, tight, strip=strip)}</li>\n")
        out.append(f"</{tag}>\n")
        return "".join(out)

    def item(self, item: SyntaxTreeNode, tight: bool, *, strip: int) -> str:
        parts: list[str] = []
        last = len(item.children) - 1
        for i, child in enumerate(item.children):
            if child.type == "paragraph" and (tight or child.hidden):
                body = self.inlines(child) if not (i == 0 and strip) else self.para_stripped(child, strip)
                parts.append(body + ("\n" if i < last else ""))
            elif i == 0 and strip and child.type == "paragraph":
                parts.append(f"<p{self.a('p')}>{self.para_stripped(child, strip)}</p>\n")
            else:
                parts.append(("\n" if i == 0 else "") + self.block(child))
        return "".join(parts)

    def para_stripped(self, para: SyntaxTreeNode, strip: int) -> str:
        return self.inline_children(para.children[0].children, strip=strip)

    def table(self, n: SyntaxTreeNode) -> str:
        """A worksheet table (one with empty cells to fill in) is marked ``class="worksheet"`` and its
        empty cells ``class="blank"`` (styled with writing space; ``worksheet``/``blank`` in ``styles``)."""
        worksheet = is_worksheet(n)
        cls = ' class="worksheet"' if worksheet else ""
        out = [f"<table{cls}{self.a('table', self.style('worksheet') if worksheet else '')}>\n"]
        for section in n.children:
            stag = section.type if section.type in ("thead", "tbody") else "tbody"
            out.append(f"<{stag}>\n")
            for row in section.children:
                out.append(f"<tr{self.a('tr')}>\n")
                for cell in row.children:
                    ctag = "th" if cell.type == "th" else "td"
                    align = str(cell.attrs.get("style", ""))
                    align = align if re.fullmatch(r"text-align:(left|right|center)", align) else ""
                    if worksheet and ctag == "td" and _is_blank(cell):
                        extra = ";".join(x for x in (align, self.style("blank")) if x)
                        out.append(f'<td class="blank"{self.a("td", extra)}></td>\n')
                        continue
                    out.append(f"<{ctag}{self.a(ctag, align)}>{self.inlines(cell)}</{ctag}>\n")
                out.append("</tr>\n")
            out.append(f"</{stag}>\n")
        out.append("</table>\n")
        return "".join(out)

    def inlines(self, n: SyntaxTreeNode) -> str:
        return "".join(
            self.inline_children(c.children) if c.type == "inline" else self.inline(c) for c in n.children
        )

    def inline_children(self, nodes: list[SyntaxTreeNode], *, strip: int = 0) -> str:
        parts: list[str] = []
        for i, c in enumerate(nodes):
            if i == 0 and strip and c.type == "text":
                parts.append(escape_html(c.content[strip:]))
            else:
                parts.append(self.inline(c))
        return "".join(parts)

    def inline(self, n: SyntaxTreeNode) -> str:
        t = n.type
        if t == "text":
            return escape_html(n.content)
        if t == "softbreak":
            return "\n"
        if t == "hardbreak":
            return "<br>\n"
        if t == "code_inline":
            return f"<code{self.a('code')}>{escape_html(n.content)}</code>"
        if t in ("strong", "em", "s"):
            return f"<{t}{self.a(t)}>{self.inline_children(n.children)}</{t}>"
        if t == "link":
            href = safe_url(str(n.attrs.get("href", "")))
            inner = self.inline_children(n.children)
            if href is None:
                return inner
            title = n.attrs.get("title")
            title_attr = f' title="{escape_html(str(title))}"' if title else ""
            return f'<a href="{escape_html(href)}"{title_attr}{self.a("a")}>{inner}</a>'
        if t == "image":
            return escape_html(plain_text(n))
        if n.children:
            return self.inline_children(n.children)
        return escape_html(n.content)


# ------------------------------------------------------------------------------------------------- Typst
def to_typst(source: str | SyntaxTreeNode, *, heading_offset: int = 2) -> str:
    """Typst markup for Block Markdown. Every function call this emits ends with ``;`` so the text after
    it can never extend the expression, and all text goes through :func:`escape_typst`.

    Headings nest under ``heading_offset`` (see :func:`heading_levels`). Relies on an ``ol-check(done)``
    function (the task box) defined by the caller's preamble.
    """
    tree = _tree(source)
    return _TypstRenderer(_heading_map(tree, heading_offset)).blocks(tree.children)


class _TypstRenderer:
    def __init__(self, levels: dict[int, int]) -> None:
        self.levels = levels

    def blocks(self, nodes: list[SyntaxTreeNode]) -> str:
        parts = [self.block(n) for n in nodes]
        return "\n\n".join(p for p in parts if p) + ("\n" if parts else "")

    def content(self, nodes: list[SyntaxTreeNode]) -> str:
        """Nodes as a Typst content block ``[...]``."""
        return "[" + self.blocks(nodes).strip() + "]"

    def block(self, n: SyntaxTreeNode) -> str:
        t = n.type
        if t == "paragraph":
            return self.inlines(n)
        if t == "heading":
            level = self.levels.get(id(n), 6)
            return f"#heading(level: {level}, outlined: false)[{self.inlines(n)}];"
        if t in ("bullet_list", "ordered_list"):
            return self.list_block(n)
        if t == "blockquote":
            return f"#quote(block: true){self.content(n.children)};"
        if t in ("fence", "code_block"):
            lang = (n.info or "").strip().split(" ")[0]
            lang_arg = f", lang: {typst_string(lang)}" if lang and _LANG.match(lang) else ""
            return f"#raw(block: true{lang_arg}, {typst_string(n.content.rstrip(chr(10)))});"
        if t == "hr":
            return "#line(length: 100%, stroke: 0.5pt + luma(160));"
        if t == "table":
            return self.table(n)
        if t == "inline":
            return self.inline_children(n.children)
        if n.children:
            return self.blocks(n.children).strip()
        return escape_typst(n.content.strip())

    def list_block(self, n: SyntaxTreeNode) -> str:
        tight = "true" if _is_tight(n) else "false"
        tasks = [_task(item) for item in n.children]
        if any(t is not None for t in tasks):
            return self.task_list(n, tasks, tight == "true")
        items = ", ".join(
            "[" + self.join([self.block(c) for c in item.children], tight == "true") + "]"
            for item in n.children
        )
        if n.type == "ordered_list":
            start = _list_start(n)
            start_arg = f"start: {start}, " if start is not None else ""
            return f"#enum({start_arg}tight: {tight}, {items});"
        return f"#list(tight: {tight}, {items});"

    @staticmethod
    def join(parts: list[str], tight: bool) -> str:
        """Join an item's blocks: a tight item's blocks are one flow, a loose item's are paragraphs."""
        return ("\n" if tight else "\n\n").join(p.strip() for p in parts if p.strip())

    def task_list(self, n: SyntaxTreeNode, tasks: list[tuple[bool, int] | None], tight: bool) -> str:
        """A list with task items: a two-column grid of boxes (or the usual markers) and contents."""
        cells: list[str] = []
        for idx, (item, task) in enumerate(zip(n.children, tasks, strict=True)):
            strip = 0
            if task is not None:
                marker, strip = f"ol-check({'true' if task[0] else 'false'})", task[1]
            elif n.type == "ordered_list":
                marker = f"[{(_list_start(n) or 1) + idx}\\.]"
            else:
                marker = "[•]"
            parts: list[str] = []
            for i, child in enumerate(item.children):
                if i == 0 and strip and child.type == "paragraph":
                    parts.append(self.inline_children(child.children[0].children, strip=strip))
                else:
                    parts.append(self.block(child))
            cells.append(f"{marker}, [{self.join(parts, tight)}]")
        body = ", ".join(cells)
        return f"#grid(columns: (1.2em, 1fr), row-gutter: 0.65em, align: (left + top, left + top), {body});"

    def table(self, n: SyntaxTreeNode) -> str:
        """A table across the full text width. A worksheet (a table with empty cells to fill in) gets
        equal columns and ``ol-blank`` writing space in every empty cell. A table short enough to fit a
        page is never split; a longer one repeats its header row and keeps its first two and last two
        rows together (an unbreakable cell spanning them in an invisible first column), so a break
        never leaves a lone row at the bottom of a page or at the top of the next."""
        aligns: list[str] = []
        head: list[str] = []
        rows: list[list[str]] = []
        worksheet = is_worksheet(n)
        for section in n.children:
            for row in section.children:
                if section.type == "thead":
                    head.extend(f"[{self.inlines(cell)}]" for cell in row.children)
                    for cell in row.children:
                        m = re.fullmatch(r"text-align:(left|right|center)", str(cell.attrs.get("style", "")))
                        aligns.append(m.group(1) if m else "auto")
                else:
                    rows.append([
                        "[#ol-blank;]" if worksheet and _is_blank(cell) else f"[{self.inlines(cell)}]"
                        for cell in row.children
                    ])  # fmt: skip
        columns = len(aligns) or max(
            1, max((len(r.children) for s in n.children for r in s.children), default=1)
        )
        widths = ["1fr"] * columns if worksheet else ["auto"] * (columns - 1) + ["1fr"]
        kept = len(rows) <= (WORKSHEET_ROWS_KEPT if worksheet else TABLE_ROWS_KEPT)
        if not kept:
            widths, aligns = ["0pt", *widths], ["auto", *aligns] if aligns else aligns
            head = [_SPACER, *head] if head else head
            last = len(rows) - 2
            for i, cells in enumerate(rows):
                if i in (0, last):
                    cells.insert(0, _SPANNER)
                elif i not in (1, last + 1):
                    cells.insert(0, _SPACER)
        args = [f"columns: ({', '.join(widths)},)"]
        if any(a != "auto" for a in aligns):
            args.append(f"align: ({', '.join(aligns)},)")
        if head:
            args.append(f"table.header(repeat: true, {', '.join(head)})")
        args.extend(cell for cells in rows for cell in cells)
        table = f"table({', '.join(args)})"
        if kept:
            return f"#block(breakable: false, width: 100%, {table});"
        return f"#{table};"

    def inlines(self, n: SyntaxTreeNode) -> str:
        return "".join(
            self.inline_children(c.children) if c.type == "inline" else self.inline(c) for c in n.children
        )

    def inline_children(self, nodes: list[SyntaxTreeNode], *, strip: int = 0) -> str:
        parts: list[str] = []
        for i, c in enumerate(nodes):
            if i == 0 and strip and c.type == "text":
                parts.append(escape_typst(c.content[strip:]))
            else:
                parts.append(self.inline(c))
        return "".join(parts)

    def inline(self, n: SyntaxTreeNode) -> str:
        t = n.type
        if t == "text":
            return escape_typst(n.content)
        if t == "softbreak":
            return " "
        if t == "hardbreak":
            return "#linebreak();"
        if t == "code_inline":
            return f"#raw({typst_string(n.content)});"
        if t in ("strong", "em", "s"):
            fn = {"strong": "strong", "em": "emph", "s": "strike"}[t]
            return f"#{fn}[{self.inline_children(n.children)}];"
        if t == "link":
            href = safe_url(str(n.attrs.get("href", "")))
            inner = self.inline_children(n.children)
            return f"#link({typst_string(href)})[{inner}];" if href else inner
        if t == "image":
            return escape_typst(plain_text(n))
        if n.children:
            return self.inline_children(n.children)
        return escape_typst(n.content)


# ---------------------------------------------------------------------------------------------- Markdown
def shift_markdown_headings(markdown: str, by: int) -> str:
    """Nest the top-level headings of Block Markdown under level ``by`` (setext ones become ATX), with
    the levels normalised by :func:`heading_levels`, so a block's ``# Heading`` sits right under the
    document's own section and block headings and no level is skipped."""
    if by <= 0 or not markdown:
        return markdown
    lines = markdown.splitlines()
    tokens = _MD.parse(markdown)
    found = [
        (i, tok)
        for i, tok in enumerate(tokens)
        if tok.type == "heading_open" and tok.level == 0 and tok.map is not None
    ]
    levels = heading_levels([int(tok.tag[1:]) for _, tok in found], by)
    replace: dict[int, tuple[int, str]] = {}  # first line → (end line, new text)
    for (i, tok), level in zip(found, levels, strict=True):
        assert tok.map is not None
        start, end = tok.map
        text = tokens[i + 1].content if i + 1 < len(tokens) else ""
        replace[start] = (end, f"{'#' * level} {text}".rstrip())
    if not replace:
        return markdown
    out: list[str] = []
    i = 0
    while i < len(lines):
        if i in replace:
            end, text = replace[i]
            out.append(text)
            i = max(end, i + 1)
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out) + ("\n" if markdown.endswith("\n") else "")
