"""Image index and search: structured filters read from queries, an index of rendered images searched by
text, money and meaning, incremental by content hash and tool version, and resumed after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.search import query
from assistant.search.indexer import IndexConfig, index_folder
from assistant.search.records import ImageDoc, parse_date, parse_number
from assistant.search.retrieve import SearchConfig, Searcher
from assistant.search.store import IndexStore
from synthetic.render import render_receipt, render_sign
from tools.evidence import Evidence

ROOT = Path(__file__).resolve().parents[1]
FAST_TOOLS = ["ocr", "classify", "color", "metadata"]  # the detector's render model trains on first use


def test_queries_are_read_as_words_and_filters():
    q = query.parse("photos with two people and a dog")
    assert [(o.classes, o.count) for o in q.objects] == [({"person"}, 2), ({"dog"}, None)]
    q = query.parse("the receipt from the bakery over 20 euros")
    assert q.money == (">", 20.0) and "bakery" in q.words and "receipt" in q.words
    assert query.parse("receipt under $5.50").money == ("<", 5.5)
    assert query.parse("a total of 31.00").money == ("==", 31.0)
    q = query.parse("a green sign from 2014")
    assert q.colours == ["green"] and q.date == ("in", "2014-01-01", "2014-12-31") and "sign" in q.words
    assert query.parse("photos before March 2015").date == ("before", "2015-03-01", "2015-03-31")
    assert query.parse('the sign that says "EXIT"').phrases == ["EXIT"]
    assert query.colour_family("light grey") == "gray" and query.colour_family("dark green") == "green"
    assert query.date_ok(("after", "2013-01-01", "2013-12-31"), "2014-02-02")
    assert not query.money_ok((">", 20.0), 20.0) and query.money_ok((">=", 20.0), 20.0)


def test_documents_read_money_dates_and_counts():
    assert parse_number("1,234.50") == 1234.5 and parse_number("12,50") == 12.5
    assert parse_number("1.234,00") == 1234.0
    assert parse_date("Date 09/01/2019 8:01") == "2019-01-09" and parse_date("31Jul2018") == "2018-07-31"
    assert parse_date("12 Mar 2018") == "2018-03-12" and parse_date("2014:09:19 16:08:30") == "2014-09-19"
    ev = [
        Evidence("ocr:1", "ocr", "img", "line", "TOTAL RM 25.50", 0.9, (0, 0, 10, 10)),
        Evidence("ocr:2", "ocr", "img", "line", "Bread 3.20", 0.9, (0, 20, 10, 30)),
        Evidence("det:1", "detect", "img", "detection", "person", 0.9, (0, 0, 5, 5)),
        Evidence("det:2", "detect", "img", "detection", "person", 0.4, (5, 0, 9, 5)),
        Evidence("det:3", "detect", "img", "detection", "dog", 0.2, (5, 0, 9, 5)),
        Evidence("meta:1", "metadata", "img", "metadata", "timestamp: 2014:09:19 16:08:30", 1.0),
    ]
    doc = ImageDoc("sha", "/x.png", 10, 10, ev)
    assert [(a["value"], a["total"], a["id"]) for a in doc.amounts()] == [
        (25.5, True, "ocr:1"),
        (3.2, False, "ocr:2"),
    ]
    assert doc.objects() == {"person": {"sure": 1, "maybe": 1, "ids": ["det:1", "det:2"], "best": 0.9}}
    assert doc.dates() == [{"date": "2014-09-19", "id": "meta:1", "source": "exif"}]
    assert doc.caption().startswith("one person")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    render_sign(seed=1, text="EMERGENCY EXIT").image.save(root / "exit.png")
    render_sign(seed=2, text="FRESH BREAD DAILY").image.save(root / "bakery.png")
    render_receipt(seed=0).image.save(root / "receipt_76.png")  # TOTAL 76.44
    render_receipt(seed=2).image.save(root / "receipt_41.png")  # TOTAL 41.30
    return root


@pytest.fixture(scope="module")
def indexed(folder, tmp_path_factory):
    path = tmp_path_factory.mktemp("index") / "images.sqlite"
    store = IndexStore(path)
    summary = index_folder(folder, store, IndexConfig(tools=FAST_TOOLS), progress=False)
    assert summary.indexed == 4 and summary.images == 4 and not summary.errors
    yield store
    store.close()


def test_search_finds_by_text_money_and_meaning_with_evidence_ids(indexed):
    searcher = Searcher(indexed)
    hit = searcher.search("the sign that says exit").hits[0]
    assert hit.path.endswith("exit.png") and hit.ranks["text"] == 1
    reason = next(r for r in hit.reasons if r.modality == "text")
    assert "EXIT" in reason.text.upper() and reason.ids and reason.ids[0].startswith("ocr:")
    doc = indexed.doc(hit.sha256)
    assert {e.id for e in doc.evidence} >= set(reason.ids)  # the ids are the evidence the index holds

    result = searcher.search("receipt over 50")
    assert result.query.money == (">", 50.0)
    first = result.hits[0]
    assert first.path.endswith("receipt_76.png") and first.scores["filters"] == 1.0
    assert any(r.modality == "filters" and "76.44" in r.text for r in first.reasons)
    assert not any(h.path.endswith("receipt_41.png") and "filters" in h.scores for h in result.hits)

    hit = searcher.search("a bakery selling bread").hits[0]
    assert hit.path.endswith("bakery.png") and "embed" in hit.scores
    out = json.loads(json.dumps(result.to_dict()))
    assert out["hits"][0]["scores"]["filters"] == 1.0 and out["parsed"]["money"] == [">", 50.0]

    only_text = Searcher(indexed, SearchConfig(modalities=("text",))).search("exit")
    assert all(set(h.scores) == {"text"} for h in only_text.hits)


def test_index_is_incremental_by_content_and_tool_version(folder, tmp_path, monkeypatch):
    import shutil

    from tools.classify import ClassifyTool
    from tools.ocr import OCRTool

    for name in ("exit.png", "bakery.png"):
        shutil.copy(folder / name, tmp_path / name)
    store = IndexStore(tmp_path / "index.sqlite")
    cfg = IndexConfig(tools=["ocr", "classify", "metadata"])
    assert index_folder(tmp_path, store, cfg, progress=False).indexed == 2
    before = {e.id: e.text for e in store.doc(next(iter(store.tools_of()))).evidence if e.tool == "ocr"}

    shutil.copy(tmp_path / "exit.png", tmp_path / "exit_copy.png")
    again = index_folder(tmp_path, store, cfg, progress=False)
    assert (again.indexed, again.unchanged, again.copies, again.files) == (0, 2, 1, 3)

    # a new classifier version re-runs the classifier only: the OCR would fail if it ran
    monkeypatch.setattr(ClassifyTool, "version", "2:test")
    monkeypatch.setattr(OCRTool, "forward", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("OCR ran")))
    changed = index_folder(tmp_path, store, cfg, progress=False)
    assert changed.indexed == 2 and not changed.errors
    for tools in store.tools_of().values():
        assert '"v": "2:test"' in tools["classify"]
    after = {e.id: e.text for e in store.doc(next(iter(store.tools_of()))).evidence if e.tool == "ocr"}
    assert after == before

    (tmp_path / "bakery.png").unlink()
    gone = index_folder(tmp_path, store, cfg, progress=False)
    assert (gone.removed, gone.images, gone.files) == (1, 1, 2)
    store.close()


def _counts(path: Path) -> dict:
    db = sqlite3.connect(path)
    try:
        return {
            "images": db.execute("select count(*) from images").fetchone()[0],
            "files": db.execute("select count(*) from files").fetchone()[0],
            "paths": db.execute("select count(distinct path) from files").fetchone()[0],
            "fts": db.execute("select count(*) from fts_docsize").fetchone()[0],
            "doubled_vectors": db.execute(
                "select count(*) from (select image_id, source from vectors group by 1, 2 having count(*) > 1)"
            ).fetchone()[0],
            "vectors": db.execute("select count(*) from vectors").fetchone()[0],
            "vec": db.execute("select count(*) from vec_rowids").fetchone()[0],
        }
    finally:
        db.close()


def _indexed(path: Path) -> int:
    """Images indexed so far, 0 while the indexer has created the file but not yet its tables (or holds
    the database locked): polling a running indexer sees both."""
    try:
        return _counts(path)["images"] if path.exists() else 0
    except sqlite3.OperationalError:
        return 0


def test_index_killed_with_sigkill_resumes_with_nothing_lost_or_doubled(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    texts = ["NO PARKING", "OPEN DAILY", "HOTEL", "TAXI RANK"]
    for i, t in enumerate(texts):
        render_sign(seed=10 + i, text=t).image.save(images / f"s{i}.png")
    index = tmp_path / "index.sqlite"
    cmd = [
        sys.executable,
        "launch.py",
        "index",
        str(images),
        "--index",
        str(index),
        "--no-progress",
        "--json",
    ]
    cmd += ["--tools", "ocr", "metadata", "--no-tool-cache-disk"]  # real OCR work, so the kill lands mid-run
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while _indexed(index) < 1:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no image indexed in time"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    done = _counts(index)["images"]
    assert 1 <= done < len(texts), done

    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout)
    assert summary["indexed"] == len(texts) - done and summary["images"] == len(texts)
    c = _counts(index)
    assert c["images"] == c["files"] == c["paths"] == c["fts"] == len(texts)
    assert c["doubled_vectors"] == 0 and c["vectors"] == c["vec"] > 0
    store = IndexStore(index, readonly=True)
    hit = Searcher(store).search("taxi rank").hits[0]
    assert hit.path.endswith("s3.png")
    store.close()
