"""Personalized assembly: select + compose + render a ~30-page PDF workbook per buyer (Typst, and the same
documents through WeasyPrint in the same run), the 202-with-preview answer over HTTP, and full artifacts
per minute with 2 render workers.

    python bench/assembly.py                       # 20 buyers in-process, 200 artifacts over HTTP
    python bench/assembly.py --buyers 10 --artifacts 60

Targets (issue 4): select+compose+render p50 <= 0.6 s (and the ratio to WeasyPrint); 202 + preview p95
<= 100 ms; >= 100 full artifacts a minute with 2 workers. Each "full artifact" is rendered as PDF, web
HTML, email HTML and Markdown, and stored.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import weasyprint
from _common import create_workspace, machine, percentile
from pypdf import PdfReader

from offerloop.assembly.composer import compose
from offerloop.assembly.inputs import BuyerInputs
from offerloop.assembly.policy import parse_policy
from offerloop.assembly.render import RENDER_ENGINE, render_html, render_pdf
from offerloop.assembly.selector import CorpusIndex
from offerloop.cli.process import ServerProcess
from offerloop.content.atoms import load_corpus
from offerloop.content.quizzes import parse_quiz, scores

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"
PERSONAS = ("early_adopter_superfan", "weekend_collector", "subscription_loyalist", "gifting_guest",
            "lurker_researcher", "deal_seeker", None)  # fmt: skip
GOALS = ("sell my first template pack", "launch a course to my newsletter", "find out what people would pay for",
         "raise my price without losing buyers", "get ten paying customers this month")  # fmt: skip


def answers(rng: random.Random) -> dict[str, object]:
    return {"stage": rng.choice(["idea", "building", "launching", "selling"]),
            "pricing_confidence": rng.randint(1, 5), "goal": rng.choice(GOALS)}  # fmt: skip


def in_process(n: int, seed: int) -> None:
    atoms, problems = load_corpus(DEMO / "content")
    assert not problems, problems
    quiz = parse_quiz((DEMO / "quizzes" / "intake.yaml").read_text())
    policy = parse_policy((DEMO / "policies" / "launch-workbook.yaml").read_text())
    index = CorpusIndex(atoms)
    rng = random.Random(seed)
    buyers = []
    for i in range(n):
        a = answers(rng)
        buyers.append(BuyerInputs(today=date(2026, 11, 22), name=f"Buyer {i} Example", first_name=f"Buyer{i}",
                                  persona=PERSONAS[i % len(PERSONAS)], answers=a, scores=scores(quiz, a),
                                  goal_text=str(a["goal"])))  # fmt: skip
    # warm-up: Typst's fonts and the parser, untimed
    render_pdf(compose(policy, index, buyers[0], quiz).document)
    typst_s, compose_s, weasy_s, pages, weasy_pages = [], [], [], [], []
    documents = []
    for inputs in buyers:
        t0 = time.perf_counter()
        doc = compose(policy, index, inputs, quiz).document
        t1 = time.perf_counter()
        pdf = render_pdf(doc)
        t2 = time.perf_counter()
        compose_s.append(t1 - t0)
        typst_s.append(t2 - t0)
        pages.append(len(PdfReader(io.BytesIO(pdf)).pages))
        documents.append(doc)
    weasyprint.HTML(string=render_html(documents[0])).write_pdf()  # warm-up
    for doc in documents:
        t0 = time.perf_counter()
        pdf = weasyprint.HTML(string=render_html(doc)).write_pdf()
        weasy_s.append(time.perf_counter() - t0)
        weasy_pages.append(len(PdfReader(io.BytesIO(pdf)).pages))
    p50, w50 = percentile(typst_s, 50), percentile(weasy_s, 50)
    print(f"select+compose+render, {n} different buyers, demo corpus of {len(atoms)} atoms, {RENDER_ENGINE}:")
    print(
        f"  pages per workbook: {min(pages)}-{max(pages)} (WeasyPrint: {min(weasy_pages)}-{max(weasy_pages)})"
    )
    print(f"  select+compose only: p50 {percentile(compose_s, 50) * 1000:.1f} ms")
    print(f"  select+compose+Typst PDF: p50 {p50:.3f} s, p95 {percentile(typst_s, 95):.3f} s")
    print(
        f"  WeasyPrint on the same documents (HTML -> PDF): p50 {w50:.3f} s, p95 {percentile(weasy_s, 95):.3f} s"
    )
    print(f"  ratio WeasyPrint / offerloop (p50): {w50 / p50:.1f}x")


def over_http(n: int, seed: int) -> None:
    tmp = tempfile.mkdtemp(prefix="offerloop-bench-")
    url = f"sqlite:///{Path(tmp) / 'assembly.db'}"
    os.environ["OFFERLOOP_WORKER_THREADS"] = "0"  # the server only answers; the workers below render
    ws = create_workspace(url, "assembly-bench")
    server = ServerProcess(url, log_path=Path(tmp) / "server.log")
    server.start()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        secret = {"Authorization": f"Bearer {ws['secret_key']}"}
        atoms = [{"text": f.read_text(), "path": f.name} for f in sorted((DEMO / "content").rglob("*.md"))
                 if f.name.lower() != "readme.md"]  # fmt: skip
        rng = random.Random(seed)
        with httpx.Client(base_url=server.url, headers=secret, timeout=60) as http:
            http.post("/v1/content/sync", json={"atoms": atoms}).raise_for_status()
            http.put(
                "/v1/quizzes", json={"text": (DEMO / "quizzes" / "intake.yaml").read_text()}
            ).raise_for_status()
            policy = (DEMO / "policies" / "launch-workbook.yaml").read_text()
            http.put("/v1/policies", json={"text": policy}).raise_for_status()
            batch = []
            for i in range(n):
                batch.append({"type": "identify", "userId": f"b{i}", "messageId": f"id-{i}",
                              "traits": {"name": f"Buyer {i} Example"}})  # fmt: skip
                batch.append({"type": "track", "userId": f"b{i}", "event": "Quiz Completed", "messageId": f"quiz-{i}",
                              "properties": {"quiz_id": "intake", "answers": answers(rng)}})  # fmt: skip
            for start in range(0, len(batch), 100):
                r = httpx.post(
                    f"{server.url}/v1/batch",
                    auth=(ws["write_key"], ""),
                    json={"batch": batch[start : start + 100]},
                )
                r.raise_for_status()
            latencies = []
            ids = []
            for i in range(n):
                t0 = time.perf_counter()
                r = http.post("/v1/artifacts", json={"user_id": f"b{i}", "policy": "launch-workbook"})
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 202, r.text + (Path(tmp) / "server.log").read_text()[-3000:]
                ids.append(r.json()["id"])
            print(
                f"POST /v1/artifacts (202 with outline + first section as HTML), {n} buyers, 1 server process:"
            )
            print(f"  p50 {percentile(latencies, 50) * 1000:.1f} ms, p95 {percentile(latencies, 95) * 1000:.1f} ms, "
                  f"p99 {percentile(latencies, 99) * 1000:.1f} ms")  # fmt: skip

            env = {**os.environ, "OFFERLOOP_DATABASE_URL": url, "OFFERLOOP_LOG_LEVEL": "WARNING"}
            started = time.perf_counter()
            workers = [subprocess.Popen([sys.executable, "-m", "offerloop.cli.main", "worker", "--threads", "1"], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]  # fmt: skip
            pending = set(ids)
            while pending:
                time.sleep(0.25)  # polling the API, as a client would
                pending = {
                    a
                    for a in pending
                    if http.get(f"/v1/artifacts/{a}").json()["status"] in ("queued", "rendering")
                }
            elapsed = time.perf_counter() - started
            statuses = {http.get(f"/v1/artifacts/{a}").json()["status"] for a in ids}
            print(f"full render (pdf + html + email + markdown, stored), 2 worker processes: {n} artifacts in "
                  f"{elapsed:.1f} s = {n / elapsed * 60:,.0f} artifacts/minute; statuses {sorted(statuses)}")  # fmt: skip
    finally:
        for w in workers:
            w.terminate()
            w.wait(timeout=30)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=20, help="in-process buyers (Typst vs WeasyPrint)")
    parser.add_argument("--artifacts", type=int, default=200, help="artifacts over HTTP")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    in_process(args.buyers, args.seed)
    over_http(args.artifacts, args.seed)


if __name__ == "__main__":
    main()
