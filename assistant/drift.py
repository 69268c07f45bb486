"""Drift per modality: are the images and questions arriving now like those of a reference window?

Each turn's features (`assistant/drift_features.py`: image size and light, the vision tower's pooled
features, OCR, detector, question, abstention) join a sliding window per feature: the last
`DriftConfig.window` observations. The reference is the first `reference_turns` turns' observations,
or a file saved earlier (`--drift-reference FILE`: read when it exists, else written once the first
turns are in). Each feature is scored with the population stability index (PSI) over the reference's
quantile bins (categories for a categorical feature; the vocabulary feature by the share of each
question's words that the reference questions used), and the KS statistic is reported beside it for
numeric ones. A feature alarms when its window is full and its PSI reaches `DriftConfig.threshold`;
the threshold is data, with what `python launch.py bench drift` measured at it. The monitor keeps no
text: question words are hashed.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from assistant.drift_features import FEATURES, turn_features
from tools.errors import BadInputError

REFERENCE_FORMAT = 1


@dataclass
class DriftConfig:
    """How drift is measured; the threshold comes with its measurement (`bench drift`)."""

    reference_turns: int = field(
        default=100, metadata={"help": "turns whose features form the reference (when no reference file)"}
    )
    window: int = field(default=50, metadata={"help": "recent observations per feature compared with it"})
    bins: int = field(default=5, metadata={"help": "quantile bins of the reference for a numeric feature"})
    # Measured by `python launch.py bench drift` (reference 100 turns, window 50, 5 bins; 100 seeded
    # streams of real turns' features): at 1.0 no false alarm in 200 unshifted turns of any stream (the
    # highest PSI any feature reached there: median 0.44, max 0.89), and every stream caught each shift
    # within 33 turns (blurred: median 28; darkened: 25; receipts after signs: 12). At 0.8: 2% of streams
    # had a false alarm, at 0.5: 30%.
    threshold: float = field(
        default=1.0, metadata={"help": "PSI at or above which a feature alarms (measured: bench drift)"}
    )
    min_reference: int = field(
        default=20, metadata={"help": "a feature with fewer reference observations is not scored"}
    )
    reference: str | None = field(
        default=None,
        metadata={"help": "drift reference file: read when it exists, else written from the first turns"},
    )


class DriftMonitor:
    """A turn observer: features into windows, PSI per feature, alarms when a feature moves."""

    name = "drift"

    def __init__(self, config: DriftConfig | None = None, on_alarm=None):
        self.config = cfg = config or DriftConfig()
        self.on_alarm = on_alarm  # called with (feature, psi, turn) when a feature starts alarming
        self._lock = threading.Lock()
        self.turns = 0
        self.reference: dict[str, list] = {}
        self.current: dict[str, deque] = {}
        self.frozen = False
        self.source = f"the first {cfg.reference_turns} turns"
        self.alarms: list[dict] = []  # every time a feature started alarming: feature, turn, psi
        self._scores: dict[str, dict] = {}
        if cfg.reference and Path(cfg.reference).is_file():
            self.load_reference(cfg.reference)

    # ---- observing -------------------------------------------------------------------------------
    def __call__(self, line) -> None:
        self.add(turn_features(line))

    def add(self, values: list[tuple[str, object]]) -> None:
        """One turn's (feature, value) pairs."""
        with self._lock:
            self.turns += 1
            if not self.frozen:
                for name, v in values:
                    self.reference.setdefault(name, []).append(v)
                if self.turns >= self.config.reference_turns:
                    self.frozen = True
                    if self.config.reference and not Path(self.config.reference).exists():
                        self.save_reference(self.config.reference)
                return
            for name, v in values:
                self.current.setdefault(name, deque(maxlen=self.config.window)).append(v)
            self._rescore({name for name, _ in values})

    def _rescore(self, names: set[str]) -> None:
        for name in names:
            old = self._scores.get(name, {}).get("alert", False)
            score = self._score(name)
            if score is None:
                continue
            self._scores[name] = score
            if score["alert"] and not old:
                event = {"feature": name, "turn": self.turns, "psi": score["psi"]}
                self.alarms.append(event)
                if self.on_alarm is not None:
                    self.on_alarm(name, score["psi"], self.turns)

    def _score(self, name: str) -> dict | None:
        cfg, ref, cur = self.config, self.reference.get(name, []), list(self.current.get(name, ()))
        feature = FEATURES.get(name)
        if feature is None or len(ref) < cfg.min_reference or not cur:
            return None
        out: dict = {"modality": feature.modality, "reference": len(ref), "current": len(cur)}
        if feature.kind == "numeric":
            out |= numeric_summary(ref, cur, cfg.bins)
        elif feature.kind == "categorical":
            out |= categorical_summary(ref, cur)
        else:
            out |= vocabulary_summary(ref, cur, cfg.bins)
        out["alert"] = len(cur) >= cfg.window and out["psi"] >= cfg.threshold
        return out

    def fork(self) -> DriftMonitor:
        """An independent copy of the monitor in its present state (the drift bench runs each shifted
        stream from the same point)."""
        other = DriftMonitor(self.config, self.on_alarm)
        with self._lock:
            other.turns, other.frozen, other.source = self.turns, self.frozen, self.source
            other.reference = {k: list(v) for k, v in self.reference.items()}
            other.current = {k: deque(v, maxlen=self.config.window) for k, v in self.current.items()}
            other.alarms = list(self.alarms)
            other._scores = {k: dict(v) for k, v in self._scores.items()}
        return other

    # ---- reading ---------------------------------------------------------------------------------
    def scores(self) -> dict[str, dict]:
        """Feature -> {modality, psi, ks (numeric), alert, reference, current, summary of both}."""
        with self._lock:
            return {k: dict(v) for k, v in self._scores.items()}

    def health(self) -> dict:
        """The `drift` section of /health: what the reference is, what moved, every feature's score."""
        scores = self.scores()
        moved = [f"{name}: {s['moved']} (PSI {s['psi']:.2f})" for name, s in scores.items() if s["alert"]]
        with self._lock:
            state = {
                "reference": self.source,
                "reference_ready": self.frozen,
                "turns": self.turns,
                "window": self.config.window,
                "threshold": self.config.threshold,
                "alarms": self.alarms[-20:],
            }
        modalities = sorted({s["modality"] for s in scores.values() if s["alert"]})
        return state | {"moved": moved, "modalities_moved": modalities, "features": scores}

    # ---- the reference file ----------------------------------------------------------------------
    def save_reference(self, path: str | Path) -> Path:
        path = Path(path)
        body = {
            "format": REFERENCE_FORMAT,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "turns": self.turns,
            "config": asdict(self.config) | {"reference": None},
            "features": self.reference,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f)
        os.replace(tmp, path)  # whole or not at all
        self.source = f"file {path.name} ({self.turns} turns)"
        return path

    def load_reference(self, path: str | Path) -> None:
        path = Path(path)
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            features = body["features"]
            if body.get("format") != REFERENCE_FORMAT or not isinstance(features, dict):
                raise ValueError(f"format {body.get('format')!r}, expected {REFERENCE_FORMAT}")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BadInputError(f"drift reference {path} is not usable: {e}") from None
        self.reference = {k: list(v) for k, v in features.items() if k in FEATURES}
        self.frozen = True
        self.source = f"file {path.name} ({body.get('turns', '?')} turns)"


# ---- the statistics ------------------------------------------------------------------------------
def psi_counts(ref_counts, cur_counts) -> float:
    """PSI of two histograms over the same bins; bins empty in both are left out, and half a count is
    added to each other bin (a bin one side lacks gives a large term, not an infinite one)."""
    import numpy as np

    r, c = np.asarray(ref_counts, dtype=float), np.asarray(cur_counts, dtype=float)
    used = (r + c) > 0
    r, c = r[used] + 0.5, c[used] + 0.5
    p, q = r / r.sum(), c / c.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def psi_numeric(ref: list[float], cur: list[float], bins: int) -> float:
    """PSI over the reference's quantile bins (ties merged)."""
    import numpy as np

    ref_a, cur_a = np.asarray(ref, dtype=float), np.asarray(cur, dtype=float)
    edges = np.unique(np.quantile(ref_a, np.linspace(0, 1, bins + 1)[1:-1]))
    n = len(edges) + 1
    r = np.bincount(np.searchsorted(edges, ref_a, side="right"), minlength=n)
    c = np.bincount(np.searchsorted(edges, cur_a, side="right"), minlength=n)
    return psi_counts(r, c)


def ks_statistic(ref: list[float], cur: list[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two ECDFs."""
    import numpy as np

    a, b = np.sort(np.asarray(ref, dtype=float)), np.sort(np.asarray(cur, dtype=float))
    grid = np.concatenate([a, b])
    gap = np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(gap)))


def numeric_summary(ref: list, cur: list, bins: int) -> dict:
    r, c = sum(ref) / len(ref), sum(cur) / len(cur)
    return {
        "psi": round(psi_numeric(ref, cur, bins), 4),
        "ks": round(ks_statistic(ref, cur), 4),
        "reference_mean": _round(r),
        "current_mean": _round(c),
        "moved": f"mean {_round(r)} -> {_round(c)}",
    }


def categorical_summary(ref: list, cur: list) -> dict:
    rc, cc = Counter(map(str, ref)), Counter(map(str, cur))
    cats = sorted(set(rc) | set(cc))
    psi = psi_counts([rc[k] for k in cats], [cc[k] for k in cats])
    share = lambda counts, n: {k: round(v / n, 3) for k, v in counts.most_common(3)}  # noqa: E731
    r, c = share(rc, len(ref)), share(cc, len(cur))
    return {"psi": round(psi, 4), "reference_top": r, "current_top": c, "moved": f"mix {r} -> {c}"}


def vocabulary_summary(ref: list[list[str]], cur: list[list[str]], bins: int) -> dict:
    """The share of each question's words the reference questions used: each reference question
    against the others (leave one out, so it is not its own vocabulary), each recent one against all."""
    vocab = Counter(w for words in ref for w in set(words))
    own = lambda words: Counter(set(words))  # noqa: E731
    ref_cov = [_coverage(words, vocab, own(words)) for words in ref if words]
    cur_cov = [_coverage(words, vocab, Counter()) for words in cur if words]
    if len(ref_cov) < 2 or not cur_cov:
        return {"psi": 0.0, "moved": "too few questions"}
    summary = numeric_summary(ref_cov, cur_cov, bins)
    summary["moved"] = f"vocabulary coverage {summary['reference_mean']} -> {summary['current_mean']}"
    return summary


def _coverage(words: list[str], vocab: Counter, minus: Counter) -> float:
    return sum(1 for w in words if vocab[w] - minus[w] > 0) / len(words)


def _round(v: float) -> float:
    return round(v, 4) if abs(v) < 100 else round(v, 1)
