"""What the loaded detectors can know: object words, their detector classes, and detector vocabularies.

A question or a claim names things in a person's words ("people", "a woman", "animals", "the ball");
a detector knows class names ("person", "sports ball"). `classes_for` maps the first to the second;
`knows` says whether a detector that applies to the image (its `detector` evidence record: classes,
training domain, whether it applies) knows any of them. Only such a detector may answer an object
question or vouch for an absence ("there is no dog"); otherwise the assistant abstains and says how to
load one (`unknown_reason`).
"""

from __future__ import annotations

from assistant.text import singular  # noqa: F401  (objects.singular: used by regions, verify)
from tools.evidence import Evidence

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

PERSON_WORDS = {
    "people", "persons", "man", "men", "woman", "women", "child", "children", "kid", "kids", "boy", "girl",
    "player", "players", "pedestrian", "anyone", "someone", "somebody", "anybody", "astronaut", "human",
    "receptionist", "rider", "lady", "guy",
}  # fmt: skip

# Words people use for a class, or for a group of classes.
ALIASES = {
    **{w: ("person",) for w in PERSON_WORDS},
    "animal": ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"),
    "vehicle": ("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
    "bike": ("bicycle", "motorcycle"),
    "motorbike": ("motorcycle",),
    "plane": ("airplane",),
    "ball": ("sports ball",),
    "phone": ("cell phone",),
    "table": ("dining table",),
    "plant": ("potted plant",),
    "sofa": ("couch",),
    "television": ("tv",),
    "puppy": ("dog",),
    "kitten": ("cat",),
    "eagle": ("bird",),
    "pickup": ("truck",),
}

# Things no common detector knows: a claim that names one needs evidence of it all the same.
OTHER_OBJECTS = {
    "dress", "shirt", "jacket", "coat", "hat", "cap", "shoe", "boot", "suit", "helmet", "glove", "scarf",
    "feet", "foot", "hand", "hair", "eye", "tree", "flower", "building", "house", "window", "door", "flag",
    "shuttle", "rocket", "tank", "frame", "wheel", "saucer", "mug", "glass", "desk", "lamp", "mountain",
    "river", "lake", "beach", "fence", "bridge", "road", "street", "box", "bag",
}  # fmt: skip

# Object words that are where text is (their place is the text's place): never an object to detect.
TEXT_WORDS = {"sign", "text", "letter", "writing", "plate", "label", "word", "font", "board", "banner", "note"}  # fmt: skip


def classes_for(word: str) -> set[str]:
    """Detector class names a word can mean ("people" -> {"person"}, "animals" -> the COCO animals)."""
    w = word.lower().strip()
    if not w:
        return set()
    last = w.split()[-1]
    # "hors": a plural whose "es" was cut whole ("horses"); "horse" is meant
    for cand in (w, singular(w), last, singular(last), last + "e", singular(last) + "e"):
        if cand in ALIASES:
            return set(ALIASES[cand])
        if cand in COCO_CLASSES:
            return {cand}
    return {singular(w)}


def is_object_word(word: str, labels: set[str] = frozenset()) -> bool:
    """A word that names a thing a detector could find (or that a detection here is labelled with)."""
    w = singular(word.lower())
    if w in TEXT_WORDS or word.lower() in TEXT_WORDS:
        return False
    return (
        w in COCO_CLASSES
        or word.lower() in ALIASES
        or w in ALIASES
        or w in OTHER_OBJECTS
        or word.lower() in OTHER_OBJECTS
        or w in labels
    )


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
        "COCO-pretrained weights know it: `--detector-weights yolo11n.pt` (downloaded once where the model "
        "hub is reachable)"
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
