"""Render the example garment catalog: flat-lay product-style drawings on white, with captions.

    python examples/make_catalog.py [--out examples/catalog] [--queries examples/queries.jsonl] [--seed 0]

Writes 99 PNG images (384 wide, 512 high), 33 per category, to <out>/<category>/<id>.png, their captions
to <out>/metadata.jsonl, and example search queries with their relevant ids to the queries file (the
`evaluate` command reads it). Every garment has a colour, a pattern (plain, striped, checked, polka dot,
floral) and a type; its caption states all three, and no two garments of a category share all three.

Deterministic: a seeded numpy Generator picks the garments and their small variations; PIL draws without
anti-aliasing, so the same seed and Pillow version give the same bytes. It is the offline demo catalog
and the data of the retrieval tests (tests/test_catalog_search.py); rerun it after changing it and
commit the result.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 384, 512  # the frame of the Fashion-RAG model (3:4), portrait
BACKGROUND = (255, 255, 255)
SHADOW = (232, 232, 232)
PER_CATEGORY = 33

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (196, 32, 44),
    "navy": (28, 38, 84),
    "black": (28, 28, 30),
    "white": (246, 246, 242),
    "grey": (138, 140, 146),
    "beige": (214, 194, 158),
    "green": (38, 128, 72),
    "olive": (108, 110, 52),
    "yellow": (240, 206, 52),
    "mustard": (204, 158, 30),
    "pink": (238, 152, 182),
    "blue": (52, 102, 198),
    "burgundy": (112, 22, 42),
    "orange": (234, 120, 42),
    "purple": (108, 60, 150),
    "teal": (22, 120, 122),
    "brown": (118, 74, 42),
}
DARK = {"red", "navy", "black", "green", "olive", "blue", "burgundy", "purple", "teal", "brown", "grey"}
PATTERNS = ("plain", "striped", "checked", "polka dot", "floral")

Polygon = list[tuple[float, float]]


@dataclass(frozen=True)
class Garment:
    id: str
    category: str
    kind: str  # the garment type as the caption names it
    colour: str
    pattern: str
    accent: str  # the second colour of a pattern (stripes, checks, dots, flowers)

    @property
    def caption(self) -> str:
        if self.pattern == "plain":
            return f"plain {self.colour} {self.kind}"
        if self.pattern in ("striped", "checked"):
            return f"{self.colour} and {self.accent} {self.pattern} {self.kind}"
        if self.pattern == "polka dot":
            return f"{self.colour} {self.kind} with {self.accent} polka dots"
        return f"{self.colour} floral {self.kind} with {self.accent} flowers"


# --------------------------------------------------------------------------------------------------
# Silhouettes: each returns the polygons of the garment's cloth and draws its details afterwards.
# Coordinates are in the 384x512 frame; `v` is a seeded variation in [-1, 1] that shifts lengths a little.


def _mirror(points: Polygon) -> Polygon:
    """A left-half outline (from the top centre, going down the left side) closed with its mirror image."""
    return points + [(WIDTH - x, y) for x, y in reversed(points)]


def tshirt(v: float) -> list[Polygon]:
    return [_mirror([(192, 96), (162, 92), (116, 112), (56, 168), (82, 214 + 6 * v), (120, 188), (122, 424 + 8 * v)])]


def long_sleeved(v: float, hem: float = 424, neck: float = 92) -> list[Polygon]:
    return [_mirror([(192, neck + 4), (160, neck), (112, 112), (70, 210), (48, 410 + 8 * v), (86, 416 + 8 * v),
                     (114, 240), (120, hem + 8 * v)])]  # fmt: skip


def hoodie(v: float) -> list[Polygon]:
    body = long_sleeved(v, hem=420, neck=98)
    hood = [(150, 104), (144, 70), (160, 40), (192, 32), (224, 40), (240, 70), (234, 104)]
    return [hood] + body


def trousers(v: float, hem: float = 476, flare: float = 0) -> list[Polygon]:
    return [_mirror([(192, 86), (124, 86), (118, 140), (110 - flare, hem + 6 * v), (180, hem + 6 * v), (192, 200)])]


def shorts(v: float) -> list[Polygon]:
    return [_mirror([(192, 110), (122, 110), (114, 160), (100, 292 + 6 * v), (184, 300 + 6 * v), (192, 226)])]


def skirt(v: float, hem: float = 380, width: float = 92) -> list[Polygon]:
    return [_mirror([(192, 110), (128, 110), (width - 6 * v, hem + 10 * v)])]


def slip_dress(v: float) -> list[Polygon]:
    return [_mirror([(192, 124), (146, 118), (142, 210), (104 - 6 * v, 452 + 8 * v)])]


def a_line_dress(v: float) -> list[Polygon]:
    return [_mirror([(192, 82), (166, 76), (130, 94), (96, 136), (118, 166), (140, 146), (144, 226), (84 - 6 * v,
                     430 + 8 * v)])]  # fmt: skip


def maxi_dress(v: float) -> list[Polygon]:
    return [_mirror([(192, 92), (160, 70), (140, 80), (138, 200), (130, 250), (96 - 6 * v, 494)])]


def sheath_dress(v: float) -> list[Polygon]:
    return [_mirror([(192, 84), (164, 78), (128, 92), (116, 124), (140, 128), (136, 230), (142, 300),
                     (132, 424 + 8 * v)])]  # fmt: skip


def wrap_dress(v: float) -> list[Polygon]:
    return [_mirror([(192, 176), (168, 80), (116, 100), (70, 200), (54, 330 + 6 * v), (88, 334 + 6 * v),
                     (118, 230), (136, 232), (94 - 6 * v, 446 + 8 * v)])]  # fmt: skip


Shape = Callable[[float], list[Polygon]]
KINDS: dict[str, dict[str, Shape]] = {
    "upper_body": {
        "t-shirt": tshirt,
        "button-down shirt": lambda v: long_sleeved(v, hem=430),
        "blazer": lambda v: long_sleeved(v, hem=440, neck=88),
        "hoodie": hoodie,
        "sweater": lambda v: long_sleeved(v, hem=410, neck=96),
    },
    "lower_body": {
        "trousers": trousers,
        "jeans": lambda v: trousers(v, hem=480, flare=-8),
        "shorts": shorts,
        "A-line skirt": skirt,
        "pleated skirt": lambda v: skirt(v, hem=400, width=84),
    },
    "dresses": {
        "slip dress": slip_dress,
        "A-line dress": a_line_dress,
        "maxi dress": maxi_dress,
        "sheath dress": sheath_dress,
        "wrap dress": wrap_dress,
    },
}
ID_PREFIX = {"upper_body": "top", "lower_body": "bottom", "dresses": "dress"}


def shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """Darker (factor < 1) or mixed towards white (factor > 1)."""
    if factor <= 1:
        return tuple(int(c * factor) for c in rgb)  # type: ignore[return-value]
    t = factor - 1
    return tuple(int(c + (255 - c) * t) for c in rgb)  # type: ignore[return-value]


def outline_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return shade(rgb, 0.55) if sum(rgb) > 150 else shade(rgb, 1.35)


# --------------------------------------------------------------------------------------------------
# Patterns: a full-frame texture that the garment's silhouette cuts out.


def texture(garment: Garment, rng: np.random.Generator, vertical: bool) -> Image.Image:
    base, accent = COLOURS[garment.colour], COLOURS[garment.accent]
    image = Image.new("RGB", (WIDTH, HEIGHT), base)
    draw = ImageDraw.Draw(image)
    if garment.pattern == "striped":
        period, width = int(rng.integers(20, 30)), int(rng.integers(6, 11))
        for offset in range(0, max(WIDTH, HEIGHT), period):
            if vertical:
                draw.rectangle((offset, 0, offset + width - 1, HEIGHT), fill=accent)
            else:
                draw.rectangle((0, offset, WIDTH, offset + width - 1), fill=accent)
    elif garment.pattern == "checked":
        period, width = int(rng.integers(28, 40)), int(rng.integers(10, 16))
        mix = tuple((b + a) // 2 for b, a in zip(base, accent, strict=True))
        for offset in range(0, max(WIDTH, HEIGHT), period):
            draw.rectangle((offset, 0, offset + width - 1, HEIGHT), fill=mix)
            draw.rectangle((0, offset, WIDTH, offset + width - 1), fill=mix)
        for x in range(0, WIDTH, period):
            for y in range(0, HEIGHT, period):
                draw.rectangle((x, y, x + width - 1, y + width - 1), fill=accent)
    elif garment.pattern == "polka dot":
        period, radius = int(rng.integers(26, 34)), int(rng.integers(5, 8))
        for row, y in enumerate(range(0, HEIGHT + period, period)):
            for x in range((row % 2) * period // 2, WIDTH + period, period):
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=accent)
    elif garment.pattern == "floral":
        centre = COLOURS["yellow"] if garment.accent != "yellow" else COLOURS["orange"]
        leaf = COLOURS["green"] if garment.colour != "green" else COLOURS["olive"]
        period = int(rng.integers(44, 56))
        for row, y in enumerate(range(0, HEIGHT + period, period)):
            for x in range((row % 2) * period // 2, WIDTH + period, period):
                cx, cy = x + int(rng.integers(-6, 7)), y + int(rng.integers(-6, 7))
                draw.ellipse((cx + 6, cy + 8, cx + 18, cy + 14), fill=leaf)
                for angle in np.linspace(0, 2 * np.pi, 5, endpoint=False) + rng.uniform(0, np.pi):
                    px, py = cx + 8 * np.cos(angle), cy + 8 * np.sin(angle)
                    draw.ellipse((px - 6, py - 6, px + 6, py + 6), fill=accent)
                draw.ellipse((cx - 4, cy - 4, cx + 4, cy + 4), fill=centre)
    return image


# --------------------------------------------------------------------------------------------------
# Details drawn over the cloth: seams, collars, buttons, pockets.


def details(draw: ImageDraw.ImageDraw, garment: Garment, line: tuple[int, int, int], v: float) -> None:
    kind = garment.kind
    button = shade(COLOURS[garment.colour], 0.7) if garment.colour != "black" else (190, 160, 60)
    if kind == "t-shirt":
        draw.arc((158, 72, 226, 116), 0, 180, fill=line, width=4)
    elif kind == "button-down shirt":
        draw.polygon([(160, 92), (192, 124), (178, 136), (148, 104)], fill=(250, 250, 250), outline=line)
        draw.polygon([(224, 92), (192, 124), (206, 136), (236, 104)], fill=(250, 250, 250), outline=line)
        draw.line((192, 124, 192, 430), fill=line, width=2)
        for y in range(150, 420, 40):
            draw.ellipse((186, y - 4, 194, y + 4), fill=line)
        draw.rectangle((136, 170, 170, 206), outline=line, width=2)
    elif kind == "blazer":
        draw.polygon([(160, 88), (192, 250), (150, 170), (138, 112)], fill=shade(COLOURS[garment.colour], 0.8))
        draw.polygon([(224, 88), (192, 250), (234, 170), (246, 112)], fill=shade(COLOURS[garment.colour], 0.8))
        draw.line((192, 250, 192, 430), fill=line, width=2)
        for y in (290, 340):
            draw.ellipse((198, y - 7, 212, y + 7), fill=button, outline=line)
        draw.line((132, 360, 172, 360), fill=line, width=3)
        draw.line((212, 360, 252, 360), fill=line, width=3)
    elif kind == "hoodie":
        draw.ellipse((164, 56, 220, 108), fill=shade(COLOURS[garment.colour], 0.6))
        draw.line((178, 104, 176, 170), fill=line, width=3)
        draw.line((206, 104, 208, 170), fill=line, width=3)
        draw.polygon([(140, 300), (244, 300), (262, 380), (122, 380)], outline=line, width=3)
        draw.rectangle((120, 400, 264, 420), outline=line, width=2)
    elif kind == "sweater":
        draw.ellipse((160, 80, 224, 116), outline=line, width=5)
        draw.rectangle((120, 386, 264, 410), outline=line, width=2)
        for x in range(126, 262, 10):
            draw.line((x, 388, x, 408), fill=line, width=1)
    elif kind in ("trousers", "jeans"):
        draw.rectangle((124, 86, 260, 108), outline=line, width=3)
        draw.line((192, 108, 192, 200), fill=line, width=2)
        for x in (140, 172, 212, 244):
            draw.rectangle((x, 84, x + 5, 112), fill=line)
        if kind == "jeans":
            stitch = (214, 160, 60)
            draw.arc((110, 96, 170, 160), 0, 90, fill=stitch, width=2)
            draw.arc((214, 96, 274, 160), 90, 180, fill=stitch, width=2)
            for y in range(120, 466, 14):
                draw.line((126, y, 126, y + 7), fill=stitch, width=2)
                draw.line((258, y, 258, y + 7), fill=stitch, width=2)
        else:
            draw.line((150, 120, 146, 470), fill=line, width=1)
            draw.line((234, 120, 238, 470), fill=line, width=1)
    elif kind == "shorts":
        draw.rectangle((122, 110, 262, 132), outline=line, width=3)
        draw.line((192, 132, 192, 226), fill=line, width=2)
        draw.line((104, 270, 184, 278), fill=line, width=2)
        draw.line((280, 270, 200, 278), fill=line, width=2)
    elif kind == "A-line skirt":
        draw.rectangle((128, 110, 256, 132), outline=line, width=3)
        draw.ellipse((230, 116, 238, 124), fill=button)
    elif kind == "pleated skirt":
        draw.rectangle((128, 110, 256, 132), outline=line, width=3)
        for i in range(1, 12):
            top_x = 128 + i * (256 - 128) / 12
            bottom_x = 84 + i * (300 - 84) / 12
            draw.line((top_x, 132, bottom_x, 400 + 10 * v), fill=line, width=2)
    elif kind == "slip dress":
        draw.line((150, 118, 160, 52), fill=line, width=3)
        draw.line((234, 118, 224, 52), fill=line, width=3)
        draw.line((146, 124, 238, 124), fill=line, width=2)
    elif kind == "A-line dress":
        draw.arc((166, 60, 218, 100), 0, 180, fill=line, width=4)
        draw.line((144, 226, 240, 226), fill=line, width=3)
    elif kind == "maxi dress":
        draw.line((140, 80, 160, 70), fill=line, width=3)
        draw.line((244, 80, 224, 70), fill=line, width=3)
        draw.line((138, 200, 246, 200), fill=line, width=2)
        draw.line((116, 360, 268, 360), fill=line, width=2)
    elif kind == "sheath dress":
        draw.arc((164, 62, 220, 104), 0, 180, fill=line, width=4)
        draw.line((162, 170, 166, 260), fill=line, width=2)
        draw.line((222, 170, 218, 260), fill=line, width=2)
    elif kind == "wrap dress":
        draw.line((168, 80, 216, 236), fill=line, width=3)
        draw.rectangle((136, 226, 248, 240), fill=shade(COLOURS[garment.colour], 0.75), outline=line)
        draw.polygon([(236, 238), (262, 300), (250, 304), (230, 240)], fill=shade(COLOURS[garment.colour], 0.75))
        draw.polygon([(240, 238), (282, 290), (272, 298), (234, 240)], fill=shade(COLOURS[garment.colour], 0.75))


def render(garment: Garment, rng: np.random.Generator) -> Image.Image:
    """The garment, flat on a white background, with a faint offset shadow."""
    v = float(rng.uniform(-1, 1))
    polygons = KINDS[garment.category][garment.kind](v)
    mask = Image.new("L", (WIDTH, HEIGHT), 0)
    mask_draw = ImageDraw.Draw(mask)
    for polygon in polygons:
        mask_draw.polygon(polygon, fill=255)
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    image.paste(SHADOW, (5, 7), mask.crop((0, 0, WIDTH - 5, HEIGHT - 7)))  # shadow below and right
    image.paste(texture(garment, rng, vertical=garment.category == "lower_body"), (0, 0), mask)
    draw = ImageDraw.Draw(image)
    line = outline_colour(COLOURS[garment.colour])
    for polygon in polygons:
        draw.polygon(polygon, outline=line, width=3)
    details(draw, garment, line, v)
    return image


# --------------------------------------------------------------------------------------------------
# Choosing the garments and the queries


def choose_garments(rng: np.random.Generator) -> list[Garment]:
    """33 garments per category: every type, every pattern, varied colours, no repeated (colour, pattern, type)."""
    garments: list[Garment] = []
    for category, kinds in KINDS.items():
        slots = [(kind, PATTERNS[(i + j) % len(PATTERNS)]) for i in range(7) for j, kind in enumerate(kinds)]
        slots = slots[:PER_CATEGORY]
        used: set[tuple[str, str, str]] = set()
        for number, (kind, pattern) in enumerate(slots, start=1):
            palette = list(COLOURS)
            if kind == "jeans":
                palette = ["blue", "navy", "black", "grey", "white"]
            while True:
                colour = palette[int(rng.integers(len(palette)))]
                if (colour, pattern, kind) not in used:
                    break
            used.add((colour, pattern, kind))
            accents = [c for c in ("white", "black", "navy", "red", "yellow", "pink") if c != colour]
            if colour not in DARK:
                accents = [c for c in accents if c != "white" and c != "yellow"]
            accent = "white" if pattern == "plain" else accents[int(rng.integers(len(accents)))]
            garments.append(Garment(f"{ID_PREFIX[category]}-{number:03d}", category, kind, colour, pattern, accent))
    return garments


def paraphrase(garment: Garment, style: int) -> str:
    """A user-style description of one garment, phrased unlike its caption."""
    kind, colour, accent = garment.kind.lower(), garment.colour, garment.accent
    if garment.pattern == "plain":
        return [f"a {kind} in {colour}", f"simple {colour} {kind}", f"{colour} {kind}, no pattern"][style % 3]
    if garment.pattern == "striped":
        return [f"{kind} with {colour} and {accent} stripes", f"stripy {colour} {kind}"][style % 2]
    if garment.pattern == "checked":
        return [f"{colour} checked {kind}", f"{kind} in {colour} and {accent} checks"][style % 2]
    if garment.pattern == "polka dot":
        return [f"{colour} {kind} with {accent} dots", f"polka dot {kind} in {colour}"][style % 2]
    return [f"{colour} {kind} with a flower print", f"floral {kind} in {colour}"][style % 2]


def choose_queries(garments: list[Garment], rng: np.random.Generator) -> list[dict]:
    queries: list[dict] = []
    for category in KINDS:
        members = [g for g in garments if g.category == category]
        for style, index in enumerate(sorted(rng.choice(len(members), size=8, replace=False))):
            garment = members[int(index)]
            queries.append({"text": paraphrase(garment, style), "category": category, "relevant": [garment.id]})
        # Two broad queries per category: every garment of one type, every garment of one colour.
        kind = members[0].kind
        queries.append(
            {"text": kind.lower(), "category": category, "relevant": [g.id for g in members if g.kind == kind]}
        )
        colour = members[1].colour
        queries.append(
            {
                "text": f"something {colour}",
                "category": category,
                "relevant": [g.id for g in members if g.colour == colour],
            }
        )
    return queries


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=here / "catalog")
    parser.add_argument("--queries", type=Path, default=here / "queries.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    garments = choose_garments(rng)
    for category in KINDS:
        shutil.rmtree(args.out / category, ignore_errors=True)  # the index folder, if any, stays
        (args.out / category).mkdir(parents=True)
    rows = []
    for garment in garments:
        file = f"{garment.category}/{garment.id}.png"
        image = render(garment, np.random.default_rng([args.seed, len(rows)]))
        image.quantize(colors=48, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            args.out / file, optimize=True
        )
        rows.append({"id": garment.id, "file": file, "category": garment.category, "caption": garment.caption})
    lines = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    (args.out / "metadata.jsonl").write_text(lines, encoding="utf-8")
    queries = choose_queries(garments, rng)
    args.queries.write_text("".join(json.dumps(q, sort_keys=True) + "\n" for q in queries), encoding="utf-8")
    size = sum(p.stat().st_size for p in args.out.glob("*/*.png"))
    print(f"{len(rows)} garments in {args.out} ({size / 1e6:.2f} MB), {len(queries)} queries in {args.queries}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
