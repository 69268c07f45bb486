"""Ranking: which candidate answers the question, and whether it is sure enough to be shown as fact.

The third step of the answer pipeline (role -> candidates -> ranking -> check -> compose). A candidate's
score is how strongly the way it was found points at the answer (`SUPPORT`: a value at the question's
label, the only value of its type, a sign's prominent text, or closeness in meaning to the question);
how sure the reading itself is stays apart (`reading.doubt`: an unsure reading is shown marked). Closeness in
meaning comes from sentence embeddings (`assistant.meaning`), so "what does the notice ask drivers to
do" finds "please reduce speed" with no rule for that verb; it also breaks ties between candidates found
the same way. A candidate whose type contradicts the role (a web address for a name) scores 0.

Only a candidate scoring `RankingConfig.show` or more is shown as fact. The threshold, and the support
of each basis, are data measured on the two development sets (`bench/grounding_calibration.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant import meaning, reading, roles, verify
from assistant.candidates import Candidate
from tools.evidence import Evidence


@dataclass(frozen=True)
class RankingConfig:
    """Scores and the threshold of showing, measured with `python -m evaluation.calibration` on the traces
    of a `launch.py eval` run over real-dev (35 photos, 83 questions) and real-dev-2 (30, 75), 2026-12-03:
    at 0.70 the extractions shown were right 31 of 32 times on real-dev (0.97) and 25 of 26 on real-dev-2
    (0.96), answering 76% and 78% of their reading questions. Any threshold from 0.65 to 0.80 gives the
    same; at 0.60 real-dev-2's precision falls to 0.90, at 0.50 to 0.81; at 0.85 a few right answers go."""

    show: float = 0.70  # a candidate scoring this much is shown as fact; below it the answer abstains
    meaning_floor: float = 0.45  # a line this close in meaning (cosine) to the question may answer it
    meaning_margin: float = 0.12  # ... when no other line is nearly as close: a clear best, not a guess


CONFIG = RankingConfig()

# How strongly each way of finding a candidate points at the answer (before the reading's certainty).
SUPPORT = {
    "counted": 0.92,  # a number counted with the question's noun ("32 tracks" for "how many tracks")
    "counted-several": 0.60,  # one of several different numbers counted with it
    "label-lead": 0.91,  # a line that begins with the label (a heading, a field), over prose that names it
    "label": 0.90,  # at a label the question names ("Invoice No", "CHANGE", "Theatre"): most of its words
    "label-weak": 0.60,  # at one label word of several the question names
    "form": 0.90,  # under a form's header the question names ("TO")
    "type": 0.85,  # the only value of the role's type in the image (one e-mail address)
    "heading": 0.88,  # the name heading a receipt (over its prominent text: a receipt's lines are one size)
    "prominent": 0.85,  # a sign's own large text, for the words or the name of what the image shows
    "qualified": 0.80,  # the few lines (3 at most) the question's position, size or ink words single out
    "first-line": 0.80,  # a page's first line, for its title where nothing else marks one
    "qualified-many": 0.55,  # more lines than that: the qualifiers do not single the answer out
    "type-several": 0.55,  # the most prominent of several values of the type
    "guess": 0.50,  # prominent text where the question points elsewhere (see `_spread`)
    # the line clearly closest in meaning to the question, found by nothing else: on the dev sets such a
    # line was the answer too rarely to be shown alone (see RankingConfig); it ranks, it is not shown
    "meaning-clear": 0.65,
}


@dataclass
class Ranked:
    """The chosen candidate and its score (None when there was none)."""

    best: Candidate | None
    score: float
    sure: bool
    why: str = ""  # why the best is not sure, or why none was chosen


def rank(question: str, role: roles.Role, candidates: list[Candidate], evidence: list[Evidence]) -> Ranked:
    """Score every candidate (`Candidate.notes`), and return the best."""
    if not candidates:
        return Ranked(None, 0.0, False, "no candidate")
    sims = _meaning(question, candidates)
    lines = reading.text_lines(evidence)
    spread = _spread(question, lines)
    by_line = sorted((s for c, s in zip(candidates, sims, strict=True) if c.basis == "meaning"), reverse=True)
    scored = []
    for order, (c, sim) in enumerate(zip(candidates, sims, strict=True)):
        c.notes["meaning"] = round(sim, 3)
        support = _support(c, role, sim, by_line, spread, len(lines))
        score = support  # an unsure reading is not discounted here: it is shown marked (`extract.hedge`)
        why = roles.conflict(role, c.key)
        if why:
            score, c.notes["conflict"] = 0.0, why
        c.notes["score"] = round(score, 3)
        # ties: closeness in meaning parts texts; values of a type (numbers) are parted by how they were
        # found, most prominent first: "T 03-2093 7358 F 03-2093 7359" means nothing to an embedding
        scored.append((score, sim if not role.typed else -order, -order, c))
    score, sim, _, best = max(scored, key=lambda t: t[:3])
    if score <= 0:
        return Ranked(None, 0.0, False, best.notes.get("conflict", "no candidate fits"))
    rivals = [
        c
        for s, m, _, c in scored
        if s == score
        and c is not best
        and _differs(c, best)
        and sim - m < CONFIG.meaning_margin
        and not role.typed
    ]
    sure = score >= CONFIG.show and not rivals
    why = (
        "" if sure else f"the best reading found ({best.key!r}) is not sure to answer it (score {score:.2f})"
    )
    if rivals and score >= CONFIG.show:  # two readings as well supported, and meaning does not part them
        why = f"two readings answer it equally well ({best.key!r}, {rivals[0].key!r})"
    return Ranked(best, score, sure, why)


# A sign, a label or a banner holds a few lines; a page holds many, and its prominent text (a paragraph's
# lines) is no more the answer than any other.
SIGN_LINES = 12


def _support(
    c: Candidate, role: roles.Role, sim: float, by_line: list[float], spread: bool, n_lines: int
) -> float:
    if c.basis in ("meaning", "meaning-next"):
        others = [s for s in by_line if s != sim]
        margin = sim - (others[0] if others else 0.0)
        clear = sim >= CONFIG.meaning_floor and margin >= CONFIG.meaning_margin
        return SUPPORT["meaning-clear"] if clear else min(0.6, max(sim, 0.0))
    if c.basis == "prominent" and (spread or role.kind == "phrase" or role.typed or n_lines > SIGN_LINES):
        return SUPPORT["guess"]
    return SUPPORT[c.basis]


def _differs(a: Candidate, b: Candidate) -> bool:
    """Two candidates that say different things (neither's words hold the other's)."""
    x, y = verify.norm(a.key), verify.norm(b.key)
    return x not in y and y not in x


def _meaning(question: str, candidates: list[Candidate]) -> list[float]:
    if not meaning.available():
        return [0.0] * len(candidates)
    return meaning.similarities(question, [c.key for c in candidates])


def _spread(question: str, lines: list[Evidence]) -> bool:
    """The question places its text on something the text does not mention ("on the vending box", "on the
    catcher's jersey") while the image holds several blocks of text: its prominent text may be another's."""
    asked = [w for w in reading.label_words(question) if w.isascii() and w not in roles.ORGS | roles.PLACES]
    read = {w for e in lines for w in verify.norm(e.text).split()}
    unmet = [w for w in asked if not any(verify.similarity(w, r) >= 0.8 for r in read)]
    if not unmet:
        return False
    tallest = max((reading.height(e) for e in lines), default=0.0)
    big = [b for b in reading.blocks(lines) if any(reading.height(e) >= 0.3 * tallest for e in b)]
    return len(big) >= 2
