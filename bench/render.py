"""PDF rendering speed: a ~30-page workbook through Typst, and the same document through WeasyPrint.

    python bench/render.py [--iterations 10] [--engines typst]

Typst: render_pdf (Typst source generation + in-memory compile). WeasyPrint: render_html, then
weasyprint.HTML(string=...).write_pdf(). Both start from a cold Markdown parse cache every iteration,
after one untimed warm-up each. WeasyPrint is a bench-only dependency (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import io
import random
import time

from _common import machine, percentile
from pypdf import PdfReader

from offerloop.assembly.document import Block, Document, Section, Theme
from offerloop.assembly.render import RENDER_ENGINE
from offerloop.assembly.render.html import render_html
from offerloop.assembly.render.markup import parse
from offerloop.assembly.render.pdf import render_pdf

# fmt: off
WORDS = (
    "offer", "buyer", "launch", "price", "value", "promise", "audience", "email", "list", "course",
    "module", "lesson", "template", "workbook", "community", "member", "result", "week", "month", "plan",
    "goal", "habit", "content", "creator", "story", "proof", "testimonial", "call", "page", "funnel",
    "upsell", "bundle", "discount", "deadline", "outcome", "problem", "solution", "step", "review",
    "draft", "publish", "measure", "revenue", "retention", "churn", "onboarding", "welcome", "sequence",
    "segment", "persona", "feedback", "survey",
)
# fmt: on
KINDS = ("lesson", "checklist", "template", "exercise")


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
    if rng.random() < 0.2:
        i = rng.randrange(len(words))
        words[i] = f"**{words[i]}**"
    if rng.random() < 0.15:
        i = rng.randrange(len(words))
        words[i] = f"_{words[i]}_"
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(sentence(rng) for _ in range(sentences))


def block_markdown(rng: random.Random, index: int) -> str:
    """About 400 words: prose, a subheading, a list, a table and a checklist, in a varying order."""
    parts = [paragraph(rng, 6), f"## Part {index + 1}", paragraph(rng, 5)]
    parts.append("\n".join(f"{n}. {sentence(rng)}" for n in range(1, 5)))
    rows = [f"| {rng.choice(WORDS).title()} | {rng.randint(5, 500)} | {sentence(rng)} |" for _ in range(4)]
    parts.append("| Item | Amount | Note |\n|:--|--:|:--|\n" + "\n".join(rows))
    parts.append(paragraph(rng, 4))
    parts.append("\n".join(f"- [{'x' if rng.random() < 0.3 else ' '}] {sentence(rng)}" for _ in range(5)))
    parts.append(paragraph(rng, 3))
    return "\n\n".join(parts)


def workbook(blocks: int = 22, per_section: int = 3) -> Document:
    rng = random.Random(7)
    made = [
        Block(
            markdown=block_markdown(rng, i),
            title=f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i + 1}",
            kind=KINDS[i % len(KINDS)],
            minutes=10 + i % 4 * 5,
            ai_assisted=i % 5 == 0,
        )
        for i in range(blocks)
    ]
    sections = tuple(
        Section(
            key=f"s{n}",
            title=f"Stage {n + 1}: {rng.choice(WORDS).title()}",
            intro=paragraph(rng, 2),
            blocks=tuple(made[n * per_section : (n + 1) * per_section]),
        )
        for n in range((blocks + per_section - 1) // per_section)
    )
    return Document(
        title="Launch Workbook",
        subtitle="Thirty days from idea to first sale",
        buyer_name="Ada Lovelace",
        created_on="2026-09-01",
        sections=sections,
    )


def pages(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def words(doc: Document) -> int:
    return sum(len(b.markdown.split()) for b in doc.blocks())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--engines", default="typst,weasyprint", help="comma-separated: typst, weasyprint")
    args = ap.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if "weasyprint" in engines:
        import weasyprint  # bench-only dependency

    doc = workbook()
    theme = Theme(creator_name="Grace Hopper")

    def typst_run() -> bytes:
        parse.cache_clear()
        return render_pdf(doc, theme)

    def weasy_run() -> bytes:
        parse.cache_clear()
        out: bytes | None = weasyprint.HTML(string=render_html(doc, theme)).write_pdf()
        assert out is not None
        return out

    results: dict[str, tuple[int, list[float]]] = {}
    for name, run in (("typst", typst_run), ("weasyprint", weasy_run)):
        if name not in engines:
            continue
        n_pages = pages(run())  # warm-up, untimed
        times = []
        for _ in range(args.iterations):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        results[name] = (n_pages, times)

    print(f"machine: {machine()}")
    print(
        f"engine: {RENDER_ENGINE}"
        + (f", weasyprint {weasyprint.__version__}" if "weasyprint" in engines else "")
    )
    print(
        f"document: {len(doc.sections)} sections, {len(doc.blocks())} blocks, {words(doc):,} words of Markdown"
    )
    print(f"iterations: {args.iterations} each (after one warm-up)")
    for name, (n_pages, times) in results.items():
        p50, p95 = percentile(times, 50), percentile(times, 95)
        print(f"{name:>10}: {n_pages} pages, p50 {p50:.3f} s, p95 {p95:.3f} s")
    if {"typst", "weasyprint"} <= set(results):
        t50, w50 = percentile(results["typst"][1], 50), percentile(results["weasyprint"][1], 50)
        t95, w95 = percentile(results["typst"][1], 95), percentile(results["weasyprint"][1], 95)
        print(f"ratio weasyprint/typst: p50 {w50 / t50:.1f}x, p95 {w95 / t95:.1f}x")


if __name__ == "__main__":
    main()
