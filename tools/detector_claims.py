"""What a detector's boxes may claim, as measured: score thresholds with their precision and recall.

A detection is a claim that a thing is there; its score alone does not say how often such claims are
right. `ClaimConfig` holds, per back end, the two score cut-offs the assistant speaks by and what they
were measured at (`bench/detector_eval.py` on photos labelled by hand):
- **sure**: boxes at or above it are stated as present and counted;
- **maybe**: boxes between `maybe` and `sure` are mentioned as uncertain ("3 people, maybe 4");
- **trace**: boxes between `trace` and `maybe` are never shown; they only keep an absence from being
  stated ("a faint person box scored 0.21");
- **presence**: "yes, there is one" is stated from a box scoring less than `sure` only where a group's
  photo-level precision at that score (photos in which a box of the class scored so much that show the
  class) was measured high: the lower end of its 95% Wilson interval at least `PRESENCE_LOWER_BOUND`;
- **absence**: "there is none" is stated as fact only for the class groups whose measured recall at the
  photo level (in photos showing the group, a box of its class at or above `trace` anywhere) reached
  `absence_recall_min` over at least `absence_photos_min` photos; elsewhere it is "the detector found
  none; small or hidden ones can be missed".
The `detector` evidence record carries `record()` so every answer is checked against the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Class groups the measurement reports on (every other COCO class is "other").
GROUPS = {
    "person": ("person",),
    "vehicles": ("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
    "animals": (
        "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
    ),
}  # fmt: skip
OTHER = "other"
SIZES = ("small", "medium", "large")


# "Yes, there is a person" from a less certain box: its score's photo-level precision must be at least this
# with 95% confidence (Wilson's lower bound: 20 right of 20 photos gives 0.84; 11 of 12, 0.65).
PRESENCE_LOWER_BOUND = 0.8


def wilson_lower(right: int, n: int, z: float = 1.96) -> float:
    """The lower end of the Wilson score interval of a proportion `right`/`n` (0 for n = 0)."""
    if not n:
        return 0.0
    p = right / n
    centre = p + z * z / (2 * n)
    spread = z * ((p * (1 - p) + z * z / (4 * n)) / n) ** 0.5
    return (centre - spread) / (1 + z * z / n)


def presence_threshold(by_threshold: dict) -> tuple[float, float, int] | None:
    """(threshold, precision, photos) of the lowest score at which a group's photo-level precision is
    measured high enough to state a presence (`PRESENCE_LOWER_BOUND`); None where no score is.
    `by_threshold`: score -> (precision, photos claimed)."""
    for t in sorted(by_threshold, key=float):
        precision, n = by_threshold[t]
        if precision is not None and n and wilson_lower(round(precision * n), n) >= PRESENCE_LOWER_BOUND:
            return (float(t), precision, n)
    return None


def group_of(name: str) -> str:
    return next((g for g, names in GROUPS.items() if name in names), OTHER)


@dataclass(frozen=True)
class SizeBands:
    """An object's size as the share of the image its box covers (the detector sees a resized image, so
    the share, not the pixel count, says how many input pixels the object gets)."""

    small: float = 0.01  # a box covering less than 1% of the image is small
    large: float = 0.10  # one covering 10% or more is large; between the two, medium

    def of(self, box, width: float, height: float) -> str:
        share = max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]) / max(width * height, 1.0)
        return "small" if share < self.small else "large" if share >= self.large else "medium"


@dataclass(frozen=True)
class ClaimConfig:
    """Score thresholds of one back end and the precision/recall they were measured at."""

    sure: float  # presence and counts: boxes scoring at least this
    maybe: float  # uncertain mentions: boxes scoring at least this
    trace: float | None = None  # the absence test: no box of the class scoring this much (None: no test)
    # a group whose boxes at `sure` were right less often than the others: its own, higher sure threshold
    group_sure: dict = field(default_factory=dict)
    sizes: SizeBands = field(default_factory=SizeBands)  # what small, medium and large mean
    absence_recall_min: float = 0.9  # photo-level recall at `trace` a group needs before absence is a fact
    absence_photos_min: int = 10  # ... measured over at least this many photos showing the group
    measured_on: str | None = None  # the labelled set (None: not measured here; absence is never claimed)
    images: int = 0  # images in that set
    boxes: int = 0  # labelled objects in it
    iou: float = 0.5  # a box matches a labelled object at this IoU or more, with the same class
    # what a presence threshold applies to: the box's "score", or (the SSD with tiles) its "whole_score",
    # the score the whole-image pass gave the object, as `bench/detector_eval.py` measures it
    presence_score: str = "score"
    # group -> {"sure": (precision, recall), "maybe": (precision, recall),
    #           "recall_by_size": {size: (recall at maybe, labelled objects of that size)},
    #           "photos": (photo-level recall at trace, photos showing the group),
    #           "presence": (score from which a box says the photo shows the class, its photo-level precision,
    #                        photos claimed) where `presence_threshold` finds one}
    groups: dict = field(default_factory=dict)

    def absence(self) -> dict[str, dict]:
        """The groups whose absence may be stated as fact, with the photo-level recall that allows it."""
        out = {}
        for g, m in self.groups.items():
            recall, n = m.get("photos", (None, 0))
            measured = self.trace is not None and recall is not None and n >= self.absence_photos_min
            if measured and recall >= self.absence_recall_min:
                out[g] = {"recall": recall, "photos": n}
        return out

    def record(self) -> dict:
        """The `detector` evidence record's part about claims (JSON-ready)."""
        measured = None
        if self.measured_on:
            measured = {
                "on": self.measured_on,
                "images": self.images,
                "boxes": self.boxes,
                "iou": self.iou,
                "groups": {
                    g: {
                        "sure": dict(zip(("precision", "recall"), m["sure"], strict=True)),
                        "maybe": dict(zip(("precision", "recall"), m["maybe"], strict=True)),
                        "recall_by_size": {
                            s: {"recall": r, "objects": n}
                            for s, (r, n) in m.get("recall_by_size", {}).items()
                        },
                        "photos": dict(zip(("recall", "photos"), m.get("photos", (None, 0)), strict=True)),
                        "presence": dict(
                            zip(
                                ("threshold", "precision", "photos"),
                                m.get("presence") or (None, None, 0),
                                strict=True,
                            )
                        ),
                    }
                    for g, m in self.groups.items()
                },
            }
        return {
            "thresholds": {
                "sure": self.sure,
                "maybe": self.maybe,
                "trace": self.trace,
                "by_group": self.group_sure,
                # group -> the score from which a box says the photo shows its class (see `presence`)
                "presence": {g: m["presence"][0] for g, m in self.groups.items() if m.get("presence")},
                "presence_score": self.presence_score,
            },
            "measured": measured,
            "absence": self.absence() if self.measured_on else None,
            "sizes": {"small_below": self.sizes.small, "large_from": self.sizes.large},
            "group_classes": {g: list(names) for g, names in GROUPS.items()},
        }


# Back ends not measured here (YOLO weights: the COCO default or a user's): ultralytics' usual cut-off as
# "maybe", and no absence stated as fact from them.
UNMEASURED = ClaimConfig(sure=0.5, maybe=0.25)

# The COCO SSD (tools/detector_ssd.py), on the whole image and its 2 x 2 tiles, measured by
# `python -m bench.detector_eval` on 49 photos with 139 labelled objects (real-dev 24, real-dev-2 19,
# ultralytics 2, matplotlib 1, scikit-image 3), 2026-12-04. Its scores come in steps (0.27, 0.34, 0.42,
# 0.5, 0.58, ...): 0.3 and 0.5 sit between steps. At 0.5 precision is 0.84 and recall 0.66 (all groups;
# the whole image alone: 0.88 and 0.53); at 0.6, 0.88 and 0.55. Large objects (>= 10% of the image) are
# found 0.89 of the time at 0.3, small ones 0.58. Whether a photo shows a class at all is what "is there a
# dog?" asks: at 0.3 a box of the class appears somewhere in 22 of the 22 photos showing a person, 13 of 13
# showing an animal, 11 of 12 showing a vehicle (the same photos as at 0.2 and 0.15) and 15 of 24 showing
# anything else: absence is a fact for people, animals and vehicles, with the figure in the answer. The
# trace is 0.3, not 0.2: with tiles, the 8 boxes of those groups scoring 0.2 to 0.3 were all in photos
# without the class (a 0.21 "person" on a pickup's door), and none was the only box of a class present.
# The other way round, "is anyone there?" is answered yes from a person box under 0.5 only where the
# whole-image pass scored it 0.4 or more: the 21 photos with such a box all showed a person (Wilson low
# 0.85); on the merged scores, 22 of 23 at 0.4 (Wilson low 0.79, under the bar).
SSD_CLAIMS = ClaimConfig(
    sure=0.5,  # precision 0.84, recall 0.66 over all 139 objects
    maybe=0.3,  # precision 0.72, recall 0.73
    trace=0.3,  # photo-level recall: person 1.00 (22 photos), animals 1.00 (13), vehicles 0.92 (12)
    # the 61 classes outside person/vehicles/animals: at 0.5 only 19 of 28 boxes right (0.68), at 0.6 13 of 16
    group_sure={"other": 0.6},
    presence_score="whole_score",
    measured_on="bench/data/detector_labels.jsonl: real-dev, real-dev-2, ultralytics, matplotlib, skimage",
    images=49,
    boxes=139,
    groups={
        # group: (precision, recall) at its sure threshold and at maybe; recall at maybe by size,
        # (recall, objects); photo-level recall at trace, (recall, photos)
        "person": {
            "sure": (0.88, 0.688),
            "maybe": (0.831, 0.766),
            "recall_by_size": {"small": (0.6, 20), "medium": (0.778, 27), "large": (0.941, 17)},
            "photos": (1.0, 22),
            "presence": (0.4, 1.0, 21),  # on the whole-image pass's scores (`presence_score`)
        },
        "vehicles": {
            "sure": (0.923, 0.8),
            "maybe": (0.722, 0.867),
            "recall_by_size": {"small": (0.0, 1), "medium": (0.833, 6), "large": (1.0, 8)},
            "photos": (0.917, 12),
        },
        "animals": {
            "sure": (0.941, 0.842),
            "maybe": (0.842, 0.842),
            "recall_by_size": {"small": (None, 0), "medium": (0.714, 7), "large": (0.917, 12)},
            "photos": (1.0, 13),
        },
        "other": {
            "sure": (0.812, 0.317),
            "maybe": (0.523, 0.561),
            "recall_by_size": {"small": (0.579, 19), "medium": (0.533, 15), "large": (0.571, 7)},
            "photos": (0.625, 24),
        },
    },
)
