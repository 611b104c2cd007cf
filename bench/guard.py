"""Precision and recall of the grounding guard on the hand-written test set.

    python bench/guard.py [--cases tests/assembly/guard_cases.yaml] [--min-similarity 0.55]

"Positive" means the guard rejects the rewrite. Recall: rejected unfaithful / all unfaithful.
Precision: rejected unfaithful / all rejected. Also prints the acceptance rate of faithful rewrites
and every case the guard gets wrong, with its reasons.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import yaml

from offerloop.assembly.guard import guard

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=ROOT / "tests" / "assembly" / "guard_cases.yaml")
    parser.add_argument("--min-similarity", type=float, default=0.55)
    args = parser.parse_args(argv)
    cases = yaml.safe_load(args.cases.read_text(encoding="utf-8"))["cases"]
    tally: Counter[str] = Counter()
    by_kind: Counter[tuple[str, bool]] = Counter()
    wrong = []
    for case in cases:
        result = guard(case["source"], case["rewrite"], min_similarity=args.min_similarity,
                       allowed_domains=case.get("allowed_domains", ()))  # fmt: skip
        unfaithful, rejected = case["verdict"] == "unfaithful", not result.ok
        tally[("t" if rejected == unfaithful else "f") + ("p" if rejected else "n")] += 1
        if unfaithful:
            by_kind[(case["kind"], rejected)] += 1
        if rejected != unfaithful:
            wrong.append((case["id"], case["verdict"], result.reasons))
    tp, fp, fn, tn = tally["tp"], tally["fp"], tally["fn"], tally["tn"]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(
        f"cases: {len(cases)} ({tp + fn} unfaithful, {tn + fp} faithful), min_similarity {args.min_similarity}"
    )
    print(
        f"rejected unfaithful (TP) {tp} | rejected faithful (FP) {fp} | passed unfaithful (FN) {fn} | passed faithful (TN) {tn}"
    )
    print(f"precision {precision:.3f}  recall {recall:.3f}  faithful accepted {tn / max(1, tn + fp):.3f}")
    kinds = sorted({k for k, _ in by_kind})
    print("recall by kind: " + ", ".join(
        f"{k} {by_kind[(k, True)]}/{by_kind[(k, True)] + by_kind[(k, False)]}" for k in kinds))  # fmt: skip
    for case_id, verdict, reasons in wrong:
        print(f"  wrong: {case_id} (expected {verdict}) reasons={list(reasons)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
