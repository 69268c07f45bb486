"""What the loaded detectors can know: object words, their detector classes, and detector vocabularies.

A question or a claim names things in a person's words ("people", "a woman", "animals", "the ball");
a detector knows class names ("person", "sports ball"). `classes_for` maps the first to the second;
`knows` says whether a detector that applies to the image (its `detector` evidence record: classes,
training domain, whether it applies) knows any of them. Only such a detector may answer an object
question or vouch for an absence ("there is no dog"); otherwise the assistant abstains and says how to
load one (`unknown_reason`).
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.text import singular  # noqa: F401  (objects.singular: used by regions, verify)
from tools.evidence import Evidence
from tools.imagenet_coco import label_to_coco

# The 80 COCO classes: what a COCO-pretrained YOLO (yolo11n.pt) detects.
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Words for people; "a man", "two hikers" and "anyone" all mean the detector class `person`.
PERSON_WORDS = {
    "people", "persons", "man", "men", "woman", "women", "child", "children", "kid", "kids", "boy", "girl",
    "player", "players", "pedestrian", "anyone", "someone", "somebody", "anybody", "astronaut", "human",
    "receptionist", "rider", "lady", "guy", "everyone", "everybody", "nobody", "baby", "toddler", "adult",
    "teenager", "gentleman", "hiker", "skier", "surfer", "runner", "walker", "worker", "passenger",
    "commuter", "tourist", "spectator", "crowd", "driver", "cyclist", "biker", "athlete", "footballer",
    "batter", "catcher", "umpire", "officer", "policeman", "soldier", "student", "customer", "shopper",
    "traveller", "traveler", "visitor",
}  # fmt: skip

# Road vehicles: "vehicles" in a question means these (a plane or a boat is named as such).
VEHICLES = ("car", "bus", "truck", "motorcycle")

# Words people use for a class, or for a group of classes (singular; plurals are reduced first).
ALIASES = {
    **{w: ("person",) for w in PERSON_WORDS},
    "animal": ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"),
    "pet": ("cat", "dog"),
    "vehicle": VEHICLES,
    "automobile": ("car",), "taxi": ("car",), "cab": ("car",), "sedan": ("car",), "suv": ("car",),
    "jeep": ("car",), "van": ("car", "truck"),
    # a pickup is a "truck" to COCO's annotators and often a "car" to its detectors
    "pickup": ("truck", "car"), "pickup truck": ("truck", "car"), "lorry": ("truck",),
    "minibus": ("bus",), "bike": ("bicycle", "motorcycle"), "motorbike": ("motorcycle",),
    "scooter": ("motorcycle",), "moped": ("motorcycle",), "plane": ("airplane",), "aeroplane": ("airplane",),
    "aircraft": ("airplane",), "jet": ("airplane",), "airliner": ("airplane",), "ship": ("boat",),
    "sailboat": ("boat",), "yacht": ("boat",), "canoe": ("boat",), "kayak": ("boat",), "tram": ("train",),
    "streetcar": ("train",), "locomotive": ("train",),
    "puppy": ("dog",), "doggy": ("dog",), "hound": ("dog",), "kitten": ("cat",), "kitty": ("cat",),
    "pony": ("horse",), "foal": ("horse",), "stallion": ("horse",), "mare": ("horse",), "cattle": ("cow",),
    "calf": ("cow",), "bull": ("cow",), "ox": ("cow",), "lamb": ("sheep",),
    "eagle": ("bird",), "duck": ("bird",), "pigeon": ("bird",), "gull": ("bird",), "seagull": ("bird",),
    "parrot": ("bird",), "owl": ("bird",), "chicken": ("bird",), "hen": ("bird",), "goose": ("bird",),
    "swan": ("bird",), "sparrow": ("bird",), "crow": ("bird",),
    "ball": ("sports ball",), "football": ("sports ball",), "basketball": ("sports ball",),
    "baseball": ("sports ball",), "bat": ("baseball bat",), "mitt": ("baseball glove",),
    "racket": ("tennis racket",), "racquet": ("tennis racket",), "ski": ("skis",),
    "phone": ("cell phone",), "cellphone": ("cell phone",), "smartphone": ("cell phone",),
    "table": ("dining table",),
    "plant": ("potted plant",), "houseplant": ("potted plant",), "flowerpot": ("potted plant",),
    "sofa": ("couch",), "television": ("tv",), "monitor": ("tv",),
    "fridge": ("refrigerator",), "microwave oven": ("microwave",), "hydrant": ("fire hydrant",),
    "stoplight": ("traffic light",), "traffic signal": ("traffic light",),
    "parasol": ("umbrella",), "necktie": ("tie",), "luggage": ("suitcase",), "rucksack": ("backpack",),
    "purse": ("handbag",), "bag": ("handbag", "backpack", "suitcase"), "mug": ("cup",),
    "glass": ("wine glass", "cup"), "doughnut": ("donut",), "hotdog": ("hot dog",), "burger": ("sandwich",),
    "teddy": ("teddy bear",), "hair dryer": ("hair drier",), "hairdryer": ("hair drier",),
    "fruit": ("banana", "apple", "orange"), "vegetable": ("broccoli", "carrot"),
    "food": ("banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"),
    "furniture": ("chair", "couch", "bed", "dining table", "bench"),
    "cutlery": ("fork", "knife", "spoon"), "utensil": ("fork", "knife", "spoon"),
}  # fmt: skip

# Things no common detector knows: a claim that names one needs evidence of it all the same.
OTHER_OBJECTS = {
    "dress", "shirt", "jacket", "coat", "hat", "cap", "shoe", "boot", "suit", "helmet", "glove", "scarf",
    "feet", "foot", "hand", "hair", "eye", "tree", "flower", "building", "house", "window", "door", "flag",
    "shuttle", "rocket", "tank", "frame", "wheel", "saucer", "desk", "lamp", "mountain", "river", "lake",
    "beach", "fence", "bridge", "road", "street", "box", "computer",
}  # fmt: skip

# Object words that are where text is (their place is the text's place): never an object to detect.
TEXT_WORDS = {"sign", "text", "letter", "writing", "plate", "label", "word", "font", "board", "banner", "note"}  # fmt: skip


# ImageNet labels that nest under a COCO class but in a question usually mean something else.
NOT_IMAGENET = {
    "pirate", "notebook", "pot", "robin", "jay", "sorrel", "liner", "racer", "drake", "cock", "gondola",
    "submarine", "throne", "ski", "orange", "cup", "pickup", "monitor", "ram", "ox", "hen",
}  # fmt: skip


def classes_for(word: str) -> set[str]:
    """Detector class names a word can mean ("people" -> {"person"}, "animals" -> the COCO animals, "golden
    retrievers" -> {"dog"}: an ImageNet label nests under the COCO class it is a kind of)."""
    w = " ".join(word.lower().split())
    if not w:
        return set()
    last = w.split()[-1]
    # "hors": a plural whose "es" was cut whole ("horses"); "horse" is meant
    for cand in (w, singular(w), last, singular(last), last + "e", singular(last) + "e"):
        if cand in ALIASES:
            return set(ALIASES[cand])
        if cand in COCO_CLASSES:
            return {cand}
    nested = imagenet_class(w) or imagenet_class(singular(w))
    return {nested} if nested else {singular(w)}


def imagenet_class(word: str) -> str | None:
    """The COCO class an ImageNet label ("German shepherd", "tabby", "minibus") nests under, if any; not
    for labels whose everyday sense is another thing ("pirate" is a ship there, "notebook" a laptop)."""
    if word in OTHER_OBJECTS or word in TEXT_WORDS or word in NOT_IMAGENET or len(word) < 3:
        return None
    return label_to_coco().get(word)


def is_object_word(word: str, labels: set[str] = frozenset()) -> bool:
    """A word that names a thing a detector could find (or that a detection here is labelled with)."""
    low = " ".join(word.lower().split())
    w = singular(low)
    if w in TEXT_WORDS or low in TEXT_WORDS:
        return False
    if w in labels or w in OTHER_OBJECTS or low in OTHER_OBJECTS:
        return True
    return bool(classes_for(low) & set(COCO_CLASSES))


def matching(word: str, evidence: list[Evidence]) -> list[Evidence]:
    """Detections whose label is a class the word means."""
    want = classes_for(word)
    return [
        e
        for e in evidence
        if e.kind == "detection" and (e.text.lower() in want or singular(e.text.lower()) in want)
    ]


def detectors(evidence: list[Evidence], image: str | None = None) -> list[Evidence]:
    """The `detector` records (vocabulary, domain, applies) of the evidence, of one image if given."""
    return [e for e in evidence if e.kind == "detector" and (image is None or e.image == image)]


def knows(evidence: list[Evidence], word: str, image: str | None = None) -> bool:
    """Whether a detector that applies to the image knows a class the word means."""
    want = classes_for(word)
    return any(
        e.extra.get("applies", True) and want & {c.lower() for c in e.extra.get("classes", [])}
        for e in detectors(evidence, image)
    )


def unknown_reason(word: str, evidence: list[Evidence]) -> str:
    """Why an object question about `word` cannot be answered, and how to get a detector that can."""
    recs = detectors(evidence)
    loaded = ""
    if recs:
        r = recs[0]
        classes = ", ".join(r.extra.get("classes", [])[:12])
        loaded = f" (the loaded detector knows {classes}, trained on {r.extra.get('domain', 'its own data')}"
        loaded += "; it does not apply to this image)" if not r.extra.get("applies", True) else ")"
    coco = bool(classes_for(word) & set(COCO_CLASSES))
    how = (
        "a COCO detector knows it: `bash scripts/setup.sh` installs the offline one (the COCO SSD), or "
        "`--detector-weights yolo11n.pt` (downloaded once where the model hub is reachable)"
        if coco
        else "no COCO class covers it"
    )
    named = classes_for(word)
    if len(named) == 1 and named <= set(
        COCO_CLASSES
    ):  # "anyone", "two people": a detector's word is "person"
        word = next(iter(named))
    elif len(named) > 1:  # "animals": the detector classes it means
        word = word.split()[-1]
    return (
        f"no detector for {word!r} is loaded{loaded}; {how}, or train one with "
        "`python launch.py detector train DATA.yaml`."
    )


# A detector record without thresholds (an older trace, an unmeasured back end): ultralytics' usual cut-off.
DEFAULT_SURE, DEFAULT_MAYBE = 0.5, 0.25


def record_for(evidence: list[Evidence], image: str) -> Evidence | None:
    """The `detector` record of an image from a detector that applies to it."""
    found = [e for e in detectors(evidence, image) if e.extra.get("applies", True)]
    return found[0] if found else None


def thresholds(record: Evidence | None, cls: str = "", presence: bool = False) -> tuple[float, float]:
    """(sure, maybe) score thresholds of a detector record (`tools/detector_claims.py`), for a class when
    given (a group measured less precise has its own sure threshold). `presence`: for "is there one?",
    the lower score from which the class's group was measured to be in the photo, where there is one."""
    t = (record.extra.get("thresholds") or {}) if record is not None else {}
    sure = float(t.get("sure", DEFAULT_SURE))
    by_group = t.get("by_group") or {}
    if cls and record is not None and (by_group or presence):
        groups = record.extra.get("group_classes") or {}
        group = next((g for g, names in groups.items() if cls.lower() in names), "other")
        sure = float(by_group.get(group, sure))
        if presence and group in (t.get("presence") or {}):
            sure = min(sure, float(t["presence"][group]))
    return sure, float(t.get("maybe", DEFAULT_MAYBE))


def split(
    dets: list[Evidence], evidence: list[Evidence], presence: bool = False
) -> tuple[list[Evidence], list[Evidence]]:
    """(sure boxes, less certain boxes) of detections, by each image's detector thresholds (for a
    presence question, its presence thresholds)."""
    sure, maybe = [], []
    for d in dets:
        record = record_for(evidence, d.image)
        s, m = thresholds(record, d.text)
        p, _ = thresholds(record, d.text, presence) if presence else (s, m)
        if d.confidence >= s or (p < s and presence_score(record, d) >= p):
            sure.append(d)
        elif d.confidence >= m:
            maybe.append(d)
    return sure, maybe


def presence_score(record: Evidence | None, d: Evidence) -> float:
    """The score a presence from a less certain box is measured on: the box's own, or (the SSD with
    tiles) the score its whole-image pass gave the object, 0 where only a tile saw it."""
    key = ((record.extra.get("thresholds") or {}) if record is not None else {}).get("presence_score")
    return float(d.extra.get("whole_score", 0.0)) if key == "whole_score" else d.confidence


@dataclass
class Absence:
    """Whether the evidence vouches that an image shows no `word`, and why (for the answer's wording)."""

    vouched: bool
    ids: list[str]  # the detector record, and a classifier label that speaks against it
    why: str  # vouched: the measured figure; else what keeps it uncertain
    group: str = ""  # the class group measured ("person", "animals")


# The classifier's labels nesting under the class must have this probability together to speak against an
# absence (ImageNet splits a dog over 120 breeds: each breed's share understates "a dog").
LABEL_SEES = 0.10


def absence(evidence: list[Evidence], word: str) -> Absence:
    """Whether "there is no `word`" may be stated as fact (the question "is there a dog?" answered at
    the photo level): a detector that applies knows the class, no box of it scored even its `trace`
    threshold anywhere, the class's group was measured to show such a box in at least 90% of the photos
    that show it (`tools/detector_claims.py`), and no classifier label nesting under the class says
    otherwise ("mountain bike" against "no bicycle")."""
    want = classes_for(word)
    records = [r for r in detectors(evidence) if r.extra.get("applies", True)]
    record = next((r for r in records if want & {c.lower() for c in r.extra.get("classes", [])}), None)
    if record is None:
        return Absence(False, [], f"no loaded detector knows {word!r}")
    ids = [record.id]
    if matching(word, evidence):
        return Absence(False, ids, f"a {word} was detected")
    groups = record.extra.get("group_classes") or {}
    cls = sorted(want & {c.lower() for c in record.extra.get("classes", [])})[0]
    group = next((g for g, names in groups.items() if cls in names), "other")
    faint = {c: v[0] for c, v in faint_boxes(record).items() if c.lower() in want}
    seen = sorted(
        (e for e in evidence if e.kind == "label" and e.extra.get("coco") in want),
        key=lambda e: -e.confidence,
    )
    seen_p = sum(e.confidence for e in seen)
    vouch = (record.extra.get("absence") or {}).get(group)
    if faint:
        c, s = max(faint.items(), key=lambda kv: kv[1])
        return Absence(False, ids, f"a faint {c} box scored {s:.2f}, too low to show", group)
    if seen_p >= LABEL_SEES:
        named = ", ".join(f"{e.text!r} ({e.confidence:.2f})" for e in seen[:3])
        why = f"the image classifier sees {named}, {'which is' if len(seen) == 1 else 'each'} a {cls}"
        return Absence(False, ids + [e.id for e in seen[:3]], why, group)
    if not isinstance(vouch, dict):
        figures = ((record.extra.get("measured") or {}).get("groups") or {}).get(group) or {}
        photos = figures.get("photos") or {}
        rate = (
            f" (in photos that show {_group_noun(group)} it finds one {photos['recall']:.0%} of the time)"
            if photos.get("recall") is not None
            else ""
        )
        return Absence(False, ids, f"the detector misses many such objects{rate}", group)
    why = (
        f"in photos that show {_group_noun(group)} it finds one {vouch['recall']:.0%} of the time, measured on "
        f"{vouch['photos']}, so a small or mostly hidden one could still be missed"
    )
    return Absence(True, ids, why, group)


def _group_noun(group: str) -> str:
    return {"person": "a person", "vehicles": "a vehicle", "animals": "an animal"}.get(group, "such a thing")


def faint_boxes(record: Evidence | None) -> dict[str, tuple[float, float]]:
    """A detector record's classes seen only faintly: class -> (best score, largest share of the image)."""
    out = {}
    for c, v in ((record.extra.get("faint") or {}) if record is not None else {}).items():
        out[c] = (float(v), 0.0) if isinstance(v, (int, float)) else (float(v[0]), float(v[1]))
    return out
