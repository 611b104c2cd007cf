"""Block Markdown → HTML and Typst: exact output for small inputs, and that no text can become code."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from offerloop.assembly.render.markup import (
    css_color,
    css_font_stack,
    escape_typst,
    parse,
    plain_text,
    shift_markdown_headings,
    to_html,
    to_typst,
    typst_string,
)
from offerloop.assembly.render.pdf import compile_typst

INJECTION = '#import "x" $x$ <script>alert(1)</script> @ref *not bold*'
CHECK_DEF = "#let ol-check(done) = box(width: 0.8em, height: 0.8em, stroke: 0.5pt)\n"


# ---------------------------------------------------------------------------------------------- escaping
def test_escape_typst_escapes_every_markup_character() -> None:
    assert escape_typst("#$*_`<>@=-+/[]~;\\") == "\\#\\$\\*\\_\\`\\<\\>\\@\\=\\-\\+\\/\\[\\]\\~\\;\\\\"
    assert escape_typst("a.b 1. x") == "a.b 1\\. x"
    assert escape_typst(". lead") == "\\. lead"
    assert escape_typst("line\n= heading\r\n- item") == "line \\= heading \\- item"
    assert escape_typst("plain words, 'quotes' and \"more\"") == "plain words, 'quotes' and \"more\""


def test_typst_string_literal() -> None:
    assert typst_string('a"b\\c\nd\te') == '"a\\"b\\\\c\\nd\\te"'


def test_injection_is_text_in_typst() -> None:
    assert to_typst(INJECTION) == (
        '\\#import "x" \\$x\\$ \\<script\\>alert(1)\\<\\/script\\> \\@ref #emph[not bold];\n'
    )


def test_injection_is_text_in_html() -> None:
    assert to_html(INJECTION) == (
        "<p>#import &quot;x&quot; $x$ &lt;script&gt;alert(1)&lt;/script&gt; @ref <em>not bold</em></p>\n"
    )


def test_raw_html_blocks_are_text() -> None:
    assert to_html("<div onclick=x>hi</div>") == "<p>&lt;div onclick=x&gt;hi&lt;/div&gt;</p>\n"


def test_backslash_escaped_asterisks_stay_literal() -> None:
    assert to_typst("\\*not bold\\*") == "\\*not bold\\*\n"
    assert to_html("\\*not bold\\*") == "<p>*not bold*</p>\n"


def test_unsafe_links_render_as_text_and_images_as_alt_text() -> None:
    md = '[click](javascript:alert(1)) [ok](https://e.com/a?b=1&c="2") ![a chart](https://cdn.x/y.png)'
    assert to_html(md) == (
        '<p>[click](javascript:alert(1)) <a href="https://e.com/a?b=1&amp;c=%222%22">ok</a> a chart</p>\n'
    )
    assert to_typst(md) == (
        '\\[click\\](javascript:alert(1)) #link("https://e.com/a?b=1&c=%222%22")[ok]; a chart\n'
    )


def test_theme_values_are_validated() -> None:
    assert css_color("#abc", "#000") == "#abc"
    assert css_color("red;}</style><script>", "#000") == "#000"
    assert css_font_stack('x"; } body { color: red', "serif") == "serif"
    assert css_font_stack("DejaVu Sans Mono", "monospace") == '"DejaVu Sans Mono", monospace'


# ----------------------------------------------------------------------------------------- exact outputs
def test_inline_markup() -> None:
    md = "Hello **bold**, _em_, `a#b`, ~~gone~~ and [link](https://example.com).  \nNext"
    assert to_html(md) == (
        "<p>Hello <strong>bold</strong>, <em>em</em>, <code>a#b</code>, <s>gone</s> and "
        '<a href="https://example.com">link</a>.<br>\nNext</p>\n'
    )
    assert to_typst(md) == (
        'Hello #strong[bold];, #emph[em];, #raw("a#b");, #strike[gone]; and '
        '#link("https://example.com")[link];\\.#linebreak();Next\n'
    )


def test_headings_are_offset() -> None:
    assert to_html("# Top\n\n## Sub", heading_offset=3) == "<h4>Top</h4>\n<h5>Sub</h5>\n"
    # an atom's first heading sits right under its block, whatever level it was written at
    assert to_html("#### Deep", heading_offset=3) == "<h4>Deep</h4>\n"
    assert to_typst("# Top") == "#heading(level: 3, outlined: false)[Top];\n"


def test_nested_lists() -> None:
    md = "1. one\n2. two\n   - a\n   - b\n\nbreak\n\n5. five\n6. six\n"
    assert to_html(md) == (
        "<ol>\n<li>one</li>\n<li>two\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n</li>\n</ol>\n"
        "<p>break</p>\n"
        '<ol start="5">\n<li>five</li>\n<li>six</li>\n</ol>\n'
    )
    assert to_typst(md) == (
        "#enum(tight: true, [one], [two\n#list(tight: true, [a], [b]);]);\n\n"
        "break\n\n"
        "#enum(start: 5, tight: true, [five], [six]);\n"
    )


def test_loose_list() -> None:
    md = "- first\n\n  more\n- second\n"
    assert to_html(md) == "<ul>\n<li>\n<p>first</p>\n<p>more</p>\n</li>\n<li>\n<p>second</p>\n</li>\n</ul>\n"
    assert to_typst(md) == "#list(tight: false, [first\n\nmore], [second]);\n"


def test_task_list() -> None:
    md = "- [ ] Write the *offer*\n- [x] Pick a price\n- plain\n"
    assert to_html(md) == (
        '<ul class="task-list">\n'
        '<li class="task-list-item"><input type="checkbox" disabled> Write the <em>offer</em></li>\n'
        '<li class="task-list-item"><input type="checkbox" disabled checked> Pick a price</li>\n'
        "<li>plain</li>\n"
        "</ul>\n"
    )
    assert to_html("- [X] done", checkbox_glyphs=True, styles={"check": "color:red"}) == (
        '<ul class="task-list">\n<li class="task-list-item"><span style="color:red">\u2611</span> done</li>\n</ul>\n'
    )
    assert to_typst(md) == (
        "#grid(columns: (1.2em, 1fr), row-gutter: 0.65em, align: (left + top, left + top), "
        "ol-check(false), [Write the #emph[offer];], ol-check(true), [Pick a price], [•], [plain]);\n"
    )


def test_brackets_that_are_not_tasks() -> None:
    assert to_typst("- [y] maybe") == "#list(tight: true, [\\[y\\] maybe]);\n"
    assert to_html("- [ ]no space") == "<ul>\n<li>[ ]no space</li>\n</ul>\n"


def test_table() -> None:
    md = "| Plan | Price | Note |\n|:--|--:|---|\n| Basic | 10 | *ok* |\n| Pro | 20 | a\\|b |\n"
    assert to_html(md) == (
        "<table>\n<thead>\n<tr>\n"
        '<th style="text-align:left">Plan</th>\n<th style="text-align:right">Price</th>\n<th>Note</th>\n'
        "</tr>\n</thead>\n<tbody>\n<tr>\n"
        '<td style="text-align:left">Basic</td>\n<td style="text-align:right">10</td>\n<td><em>ok</em></td>\n'
        "</tr>\n<tr>\n"
        '<td style="text-align:left">Pro</td>\n<td style="text-align:right">20</td>\n<td>a|b</td>\n'
        "</tr>\n</tbody>\n</table>\n"
    )
    assert to_typst(md) == (
        "#block(breakable: false, width: 100%, table(columns: (auto, auto, 1fr,), align: (left, right, auto,), "
        "table.header(repeat: true, [Plan], [Price], [Note]), [Basic], [10], [#emph[ok];], [Pro], [20], [a|b]));\n"
    )


def test_email_styles_are_inlined() -> None:
    assert to_html("| a |\n|---|\n| b |", styles={"table": "border:0", "td": "padding:2px"}) == (
        '<table style="border:0">\n<thead>\n<tr>\n<th>a</th>\n</tr>\n</thead>\n'
        '<tbody>\n<tr>\n<td style="padding:2px">b</td>\n</tr>\n</tbody>\n</table>\n'
    )


def test_code_blocks_quotes_and_rules() -> None:
    md = '> quoted *x*\n\n```python\nprint("#hi")\n```\n\n---\n\n    indented\n'
    assert to_html(md) == (
        "<blockquote>\n<p>quoted <em>x</em></p>\n</blockquote>\n"
        '<pre><code class="language-python">print(&quot;#hi&quot;)\n</code></pre>\n'
        "<hr>\n<pre><code>indented\n</code></pre>\n"
    )
    assert to_typst(md) == (
        "#quote(block: true)[quoted #emph[x];];\n\n"
        '#raw(block: true, lang: "python", "print(\\"#hi\\")");\n\n'
        "#line(length: 100%, stroke: 0.5pt + luma(160));\n\n"
        '#raw(block: true, "indented");\n'
    )


def test_unknown_tokens_degrade_to_escaped_text() -> None:
    odd = SyntaxTreeNode([Token("mystery", "", 0, content="a#b <i>")])
    assert to_typst(odd) == "a\\#b \\<i\\>\n"
    assert to_html(odd) == "<p>a#b &lt;i&gt;</p>\n"
    assert plain_text("*a* `b`") == "a b"


def test_parse_once() -> None:
    assert parse("same *text*") is parse("same *text*")


def test_shift_markdown_headings() -> None:
    md = "# Top\n\ntext\n\nSetext\n======\n\n> # quoted\n\n```\n# not a heading\n```\n"
    assert shift_markdown_headings(md, 2) == (
        "### Top\n\ntext\n\n### Setext\n\n> # quoted\n\n```\n# not a heading\n```\n"
    )
    # normalised: the first heading sits right under the block, no level is skipped
    assert shift_markdown_headings("##### five", 3) == "#### five"
    assert shift_markdown_headings("## a\n\n#### b\n\n# c", 3) == "#### a\n\n##### b\n\n#### c"


# ---------------------------------------------------------------------------------- no text becomes code
_ALPHABET = st.sampled_from([*"#$*_`<>@=-+/\\[]~;:.()\"'{}|!?&%^ \n\tab1", "- [ ] ", "1. ", "| a |", "```"])


@settings(max_examples=150, deadline=None)
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_any_markdown_compiles_as_typst(text: str) -> None:
    body = to_typst(text)
    compile_typst(CHECK_DEF + body)  # raises TypstError if any input escaped into code
