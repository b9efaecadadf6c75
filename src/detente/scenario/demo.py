"""`detente demo`: play the coalition story, narrate it, and write the HTML report."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from detente.scenario.report import Report, Series, key_values, line_chart
from detente.scenario.story import DEMO_OPERATOR, DEMO_PASSWORD, NAMES, Outcome, play

__all__ = ["run_demo"]


def _report(outcome: Outcome, lines: list[str], seconds: float) -> Report:
    r = Report("detente — the coalition scenario")
    r.add_text("What happened", lines)
    steps = [s for s, _, _ in outcome.ru_trust]
    r.add("Trust over time: Russia as the U.S. sees it", line_chart(
        "Russia's tier and reliability at the U.S. node",
        "Tier (0-4) and reliability mean (scaled to 0-4) after each step of the story",
        steps, [Series("tier", [float(t) for _, t, _ in outcome.ru_trust]),
                Series("reliability × 4", [round(m * 4, 2) for _, _, m in outcome.ru_trust])],
        y_max=4, y_label="tier"))
    rounds = [f"round {i + 1}" for i in range(len(outcome.received))]
    series = [Series(n, [float(sum(g[n].values())) for g in outcome.received]) for n in NAMES]
    r.add("Sharing volume", line_chart(
        "Objects each node received per round", "New or updated objects pulled from partners",
        rounds, series, y_label="objects"))
    r.add("Opinions: the deceptive report refuted", key_values({
        "the U.S. opinion went to": ", ".join(outcome.refutation_to) or "nobody",
        "received by": ", ".join(outcome.refutation_reached) or "nobody",
        "Russia's node shows": "; ".join(outcome.ru_sees) or "nothing",
        "France's relayed copy": "withdrawn" if outcome.relayed_copy_withdrawn
        else "NOT withdrawn"}))
    r.add_table("Private deconfliction", ["partner", "contact for the conflict"],
                [(c["partner"], c["contact"]) for c in outcome.conflicts] or [("-", "none")],
                caption="Pointer mode: only a handle and a contact channel per conflict")
    r.add("Leak attribution", key_values({
        "trace verdict": outcome.leak_message, "accused": ", ".join(outcome.leak_suspects)
        or "nobody"}))
    r.add_table("Coalition deconfliction (threshold 3, no centre)",
                ["node", "learned: held by all three"],
                [(n, ", ".join(items) or "nothing")
                 for n, items in outcome.coalition_learned.items()] or [("-", "not run")],
                caption="Each node learns only which of its own items at least 3 hold; "
                        f"the reconstructor, "
                        f"{outcome.coalition_reconstructor.get('reconstructor', '-')}, holds "
                        f"no items and learned only that "
                        f"{outcome.coalition_reconstructor.get('groups', 0)} passed")
    r.add_table("Credit (as the U.S. sees it)", ["partner", "first reports", "corroborated",
                                                  "confirmed", "value"],
                [(p, c["first_reports"], c["corroborated"], c["confirmed"], c["value"])
                 for p, c in outcome.credit.items()])
    r.add_table("Ledgers verified", ["verifier → log", "result"],
                [(k, "verified" if ok else "FAILED") for k, ok in outcome.ledgers.items()])
    r.add("Run", key_values({"seconds": f"{seconds:.1f}",
                             "problems": "; ".join(outcome.ledger_problems) or "none"}))
    return r


def run_demo(out: Path, say: Callable[[str], None]) -> Outcome:
    """Play the story into ``out`` (replacing it), write report.html and outcome.json."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lines: list[str] = []

    def narrate(text: str) -> None:
        lines.append(text)
        say(text)

    started = time.perf_counter()
    outcome = play(out, narrate)
    seconds = time.perf_counter() - started
    _report(outcome, lines, seconds).write(out / "report.html")
    (out / "outcome.json").write_bytes(orjson.dumps(outcome, option=orjson.OPT_INDENT_2))
    say(f"Report: {out / 'report.html'}. The nodes' homes are in {out}: "
        f"`detente serve --home {out / 'us'}` opens the analyst UI "
        f"(log in as {DEMO_OPERATOR} / {DEMO_PASSWORD}).")
    return outcome
