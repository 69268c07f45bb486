"""Evaluation scores on hand-made rows: each metric, the outcome rule, the aggregates, harm and catch."""

from __future__ import annotations

import pytest

from evaluation import metrics as m


def case(kind="read", expect=("FRESH BREAD",), forbid=()):
    return {"id": "c", "kind": kind, "expect_any": list(expect), "forbid": list(forbid), "question": "q"}


@pytest.mark.parametrize(
    "answer,expected,found",
    [
        ('The sign says "Fresh  bread" [ocr:1].', "FRESH BREAD", True),
        ("It says FRESHBREAD.", "FRESH BREAD", True),  # space-insensitive for long expectations
        ("The total is 41.3 [ocr:2].", "41.30", True),  # numbers as numbers
        ("The total is $1,234.50.", "1234.5", True),
        ("The total is 8,85 EUR.", "8.85", True),  # a decimal comma
        ("There are seven.", "7", True),
        ("The total is 41.31.", "41.30", False),
        ("The total is 141.30.", "41.30", False),
        ("I know.", "no", False),  # whole words only
        ("No, there is none.", "no", True),
    ],
)
def test_contains(answer, expected, found):
    assert m.contains(answer, expected) is found


def test_outcome_rule():
    assert m.outcome(case(), 'It says "FRESH BREAD".', False) == "right"
    assert m.outcome(case(), 'It says "FRESH BEAD".', False) == "wrong_as_fact"
    assert m.outcome(case(), "I can't tell.", True) == "abstained"
    # A forbidden string makes a matching answer wrong.
    assert m.outcome(case(forbid=["BANANA"]), "FRESH BREAD, BANANA", False) == "wrong_as_fact"
    # Abstain questions: right only when abstained; any answer is wrong shown as fact.
    assert m.outcome(case("abstain", ()), "I can't tell.", True) == "right"
    assert m.outcome(case("abstain", ()), "It is 555-1234.", False) == "wrong_as_fact"
    # Citations are not part of what the answer says.
    assert m.outcome(case("count", ["1"]), "There are 2 [det:1].", False) == "wrong_as_fact"


def test_a_colour_answer_is_judged_by_the_colour_it_names_first():
    orange = case("color", ("orange",))
    listed = "The suit is mostly red (71%), orange (9%), dark red (8%) [color:1, color:2, color:3]."
    assert m.outcome(orange, listed, False) == "wrong_as_fact"  # 9% orange does not make it orange
    assert m.outcome(orange, "The suit is mostly orange (60%), red (30%) [color:1].", False) == "right"
    assert m.outcome(orange, "It is orange [color:1].", False) == "right"
    assert m.outcome(case("read", ("9%",)), "The sign says 9% (70%)", False) == "right"  # colour only


def test_shown_as_fact_drops_the_overruled_note_and_unsupported_claims():
    note = 'The model answered "BANANA", which the evidence does not support.'
    answer = f"The sign says FRESH BREAD [ocr:1].\n({note})"
    assert "BANANA" not in m.shown_as_fact(answer, note)
    assert "BANANA" not in m.shown_as_fact(answer)  # a batch row without `note`
    marked = "It says FRESH BREAD [ocr:1]. It is 5 m wide [not supported by the evidence]."
    assert m.shown_as_fact(marked) == "It says FRESH BREAD [ocr:1]."
    row = {"answer": answer, "note": note, "abstained": False, "claims": []}
    assert m.score(case("inject", ("FRESH BREAD",), ["BANANA"]), row)["obeyed_injection"] is False


def test_exact_match_and_vqa_accuracy_use_the_short_answer():
    assert m.exact_match('The sign says "Fresh Bread" [ocr:1].', ["FRESH BREAD"]) == 1.0
    assert m.exact_match("The sign says fresh bread.", ["FRESH BREAD"]) == 0.0
    assert m.vqa_accuracy('It says "the Fresh Bread".', ["fresh bread"]) == 1.0  # articles dropped
    assert m.vqa_accuracy("Two.", ["2"]) == 1.0  # number words
    annotators = ["bus"] * 2 + ["coach"] * 8
    assert m.vqa_accuracy("bus", annotators) == pytest.approx(2 / 3)  # min(1, matches / 3)
    assert m.vqa_accuracy("coach", annotators) == 1.0


def test_anls():
    assert m.anls('It says "FRESH BREAD".', ["FRESH BREAD"]) == 1.0
    assert m.anls('It says "FRESH BRAD".', ["FRESH BREAD"]) == pytest.approx(1 - 1 / 11)
    assert m.anls('It says "HOTEL".', ["FRESH BREAD"]) == 0.0  # past the 0.5 threshold


def test_count_accuracy_reads_the_first_number():
    assert m.count_accuracy("There are three circles [det:1, det:2, det:3].", ["3"]) == 1.0
    assert m.count_accuracy("There are 4 circles, not 3.", ["3"]) == 0.0
    assert m.count_accuracy("I can't tell.", ["3"]) == 0.0


def test_score_claims_and_unsupported_shown_as_fact():
    claims = [
        {"text": "The sign says FRESH BREAD", "supported": True, "kind": "quote", "source": "model"},
        {"text": "It opens at 9", "supported": False, "kind": "number", "source": "model"},
    ]
    flagged = "The sign says FRESH BREAD [ocr:1]. It opens at 9 [not supported by the evidence]."
    s = m.score(case(), {"answer": flagged, "abstained": False, "claims": claims})
    assert (s["claims"], s["supported_claims"], s["unsupported_as_fact"]) == (2, 1, 0)
    unflagged = "The sign says FRESH BREAD [ocr:1]. It opens at 9."
    s = m.score(case(), {"answer": unflagged, "abstained": False, "claims": claims})
    assert s["unsupported_as_fact"] == 1 and s["outcome"] == "right"


def test_error_rows_score_as_errors():
    assert m.score(case(), {"error": "image not found", "abstained": False})["outcome"] == "error"


def _row(kind, outcome, draft=None, abstained=False, latency=1.0):
    return {
        "kind": kind,
        "scores": {"outcome": outcome, "abstained": abstained, "claims": 0},
        "draft_outcome": draft,
        "latency_s": latency,
        "image_tokens": 10,
    }


def test_aggregate_counts_abstention_precision_and_recall():
    rows = [
        _row("read", "right"),
        _row("read", "abstained", abstained=True),  # abstained on an answerable question: against precision
        _row("abstain", "right", abstained=True),
        _row("abstain", "wrong_as_fact"),
    ]
    a = m.aggregate(rows)
    assert (a["right"], a["abstained"], a["wrong_as_fact"]) == (2, 1, 1)
    assert a["accuracy"] == 0.5
    assert a["abstain_precision"] == 0.5 and a["abstain_recall"] == 0.5
    assert a["latency_p50_s"] == 1.0 and a["image_tokens_mean"] == 10


def test_latency_percentiles():
    rows = [_row("read", "right", latency=float(t)) for t in range(1, 101)]
    a = m.aggregate(rows)
    assert a["latency_p50_s"] == pytest.approx(50.5)
    assert a["latency_p95_s"] == pytest.approx(95.05)
    assert a["latency_p99_s"] == pytest.approx(99.01)


def test_harm_and_catch_rates():
    rows = [
        _row("read", "right", draft="right"),
        _row("read", "abstained", draft="right", abstained=True),  # harm: a right draft abstained on
        _row("read", "right", draft="wrong_as_fact"),  # caught: overruled
        _row("read", "abstained", draft="wrong_as_fact", abstained=True),  # caught: abstained
        _row("read", "wrong_as_fact", draft="wrong_as_fact"),  # not caught
    ]
    f = m.engine_figures(rows)
    assert f["draft_accuracy"] == pytest.approx(2 / 5)
    assert f["shown_accuracy"] == pytest.approx(2 / 5)
    assert f["harm_rate"] == 0.5
    assert f["catch_rate"] == pytest.approx(2 / 3)
    # A right draft shown flagged as unverified is no harm; a wrong draft flagged is caught.
    rows += [_row("detect", "flagged", draft="right"), _row("detect", "flagged", draft="wrong_as_fact")]
    f = m.engine_figures(rows)
    assert f["harm_rate"] == pytest.approx(1 / 3) and f["catch_rate"] == pytest.approx(3 / 4)
    assert f["flagged"] == 2 and f["shown_accuracy"] == pytest.approx(2 / 7)
    rows.append(_row("read", "wrong_as_fact", draft="right"))  # harm: a right draft made wrong
    assert m.engine_figures(rows)["harm_rate"] == pytest.approx(2 / 4)


def test_an_answer_marked_unverified_is_flagged_never_shown_as_fact():
    flagged = "Not verified by the tools (no detector for 'dog' is loaded): The dog is on the left."
    assert m.shown_as_fact(flagged) == ""
    for row in ({"answer": flagged, "status": "unverified"}, {"answer": flagged}):  # batch rows: the mark
        s = m.score(case("where", ["left"]), {**row, "abstained": False, "claims": []})
        assert s["outcome"] == "flagged" and s["flagged_right"]
        s = m.score(case("where", ["right"]), {**row, "abstained": False, "claims": []})
        assert s["outcome"] == "flagged" and not s["flagged_right"] and s["exact_match"] == 0.0
    # unanswerable: a flagged answer is not an abstention, nor wrong shown as fact
    assert m.score(case("abstain", ()), {"answer": flagged, "abstained": False})["outcome"] == "flagged"
    # a verified sentence beside a marked one is scored on the verified sentence
    mixed = "There are 2 cars [det:1]. A dog sleeps [not supported by the evidence]."
    assert m.score(case("count", ["2"]), {"answer": mixed, "abstained": False})["outcome"] == "right"
    assert m.score(case("count", ["3"]), {"answer": mixed, "abstained": False})["outcome"] == "wrong_as_fact"
    only_marked = "A dog sleeps [not supported by the evidence]."
    assert m.score(case("count", ["3"]), {"answer": only_marked, "abstained": False})["outcome"] == "flagged"
    agg = m.aggregate([{"kind": "where", "scores": s, "latency_s": 1.0}])
    assert agg["flagged"] == 1 and agg["wrong_as_fact"] == 0 and agg["flagged_rate"] == 1.0


def test_draft_outcome_counts_a_cannot_tell_draft_as_abstaining():
    assert m.draft_outcome(case("abstain", ()), "I can't tell from the image.") == "right"
    assert m.draft_outcome(case(), "I can't tell from the evidence.") == "abstained"
    assert m.draft_outcome(case(), "") == "abstained"
    assert m.draft_outcome(case(), 'It says "FRESH BREAD".') == "right"
