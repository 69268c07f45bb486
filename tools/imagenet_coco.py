"""Which COCO class an ImageNet-1k label nests under, in one table (the classify tool's `coco` field).

An ImageNet label is narrower than a COCO class: 118 dog breeds are all a `dog`, "minibus" is a `bus`,
"Granny Smith" an `apple`. A label that names no COCO thing ("seashore", "espresso" is a drink, not a
`cup`) nests under nothing. Indices are torchvision's `_IMAGENET_CATEGORIES` order (the classifier's
output order); names are checked against that list by the tests.
"""

from __future__ import annotations

import functools

# Contiguous index ranges of one kind of animal.
RANGES = {
    "bird": (
        range(7, 25),
        range(80, 101),
        range(127, 147),
    ),  # cock .. great grey owl, grouse .. swan, stork .. albatross
    "dog": (
        range(151, 269),
    ),  # Chihuahua .. Mexican hairless: the dog breeds (wolves and foxes are not dogs here)
    "cat": (
        range(281, 286),
    ),  # tabby, tiger cat, Persian, Siamese, Egyptian cat (cougar, lynx.. are not COCO cats)
    "bear": (range(294, 298),),  # brown, American black, ice, sloth bear
}

# COCO class -> the ImageNet labels nested under it, by name.
NAMES = {
    "horse": ("sorrel",),
    "zebra": ("zebra",),
    "cow": ("ox", "water buffalo", "bison"),
    "sheep": ("ram", "bighorn"),
    "elephant": ("tusker", "Indian elephant", "African elephant"),
    "car": (
        "cab", "beach wagon", "convertible", "jeep", "limousine", "minivan", "Model T", "racer", "sports car",
        "police van", "ambulance",
    ),
    "bus": ("school bus", "trolleybus", "minibus"),
    "truck": ("garbage truck", "tow truck", "trailer truck", "moving van", "pickup", "fire engine"),
    "train": (
        "bullet train", "electric locomotive", "freight car", "passenger car", "steam locomotive", "streetcar",
    ),
    "motorcycle": ("moped", "motor scooter"),
    "bicycle": ("bicycle-built-for-two", "mountain bike"),
    "airplane": ("airliner", "warplane"),
    "boat": (
        "canoe", "catamaran", "container ship", "fireboat", "gondola", "lifeboat", "liner", "pirate", "schooner",
        "speedboat", "trimaran", "yawl", "aircraft carrier", "submarine",
    ),
    "traffic light": ("traffic light",),
    "parking meter": ("parking meter",),
    "bench": ("park bench",),
    "umbrella": ("umbrella",),
    "backpack": ("backpack",),
    "handbag": ("purse",),
    "tie": ("Windsor tie", "bow tie"),
    "skis": ("ski",),
    "sports ball": (
        "soccer ball", "rugby ball", "basketball", "tennis ball", "baseball", "volleyball", "golf ball",
        "ping-pong ball",
    ),
    "tennis racket": ("racket",),
    "bottle": ("beer bottle", "pill bottle", "pop bottle", "water bottle", "wine bottle"),
    "cup": ("cup", "coffee mug"),
    "bowl": ("soup bowl", "mixing bowl"),
    "spoon": ("wooden spoon",),
    "banana": ("banana",),
    "apple": ("Granny Smith",),
    "orange": ("orange",),
    "broccoli": ("broccoli",),
    "hot dog": ("hotdog",),
    "pizza": ("pizza",),
    "chair": ("barber chair", "folding chair", "rocking chair", "throne"),
    "couch": ("studio couch",),
    "potted plant": ("pot",),
    "bed": ("four-poster",),
    "dining table": ("dining table",),
    "toilet": ("toilet seat",),
    "tv": ("television", "monitor"),
    "laptop": ("laptop", "notebook"),
    "mouse": ("mouse",),
    "remote": ("remote control",),
    "keyboard": ("computer keyboard",),
    "cell phone": ("cellular telephone",),
    "microwave": ("microwave",),
    "toaster": ("toaster",),
    "sink": ("washbasin",),
    "refrigerator": ("refrigerator",),
    "clock": ("analog clock", "digital clock", "wall clock"),
    "vase": ("vase",),
    "teddy bear": ("teddy",),
    "hair drier": ("hand blower",),
    "book": ("book jacket",),
}  # fmt: skip


def nesting(categories: list[str]) -> dict[int, str]:
    """ImageNet index -> COCO class, for the classifier's label list."""
    out = {i: coco for coco, ranges in RANGES.items() for r in ranges for i in r}
    index = {name: i for i, name in enumerate(categories)}
    for coco, names in NAMES.items():
        for name in names:
            out[index[name]] = coco
    return out


@functools.cache
def label_to_coco() -> dict[str, str]:
    """Lower-cased ImageNet label -> the COCO class it nests under (imports torchvision once, for the names)."""
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    names = list(_IMAGENET_CATEGORIES)
    return {names[i].lower(): coco for i, coco in nesting(names).items()}
