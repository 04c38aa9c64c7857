"""An outfit in one go: an upper-body edit, then a lower-body edit on its result, with one recipe for both.

    result = dress_outfit(editor, photo, [OutfitStep("upper_body", ("top-001",)),
                                          OutfitStep("lower_body", ("bottom-002",))], seed=7, steps=20)
    again = replay_outfit(editor, photo, result.recipe)   # the same pixels (`edit --recipe` does this)

Each step is one EditRequest (fashion_rag/request.py) on the previous step's full-size result: the person is
prepared again on it for the step's category (framing, pose and mask follow the edited photo), or takes the
mask the designer painted for that category. The outfit recipe keeps each step's recipe in order:

    {"outfit": [<upper_body recipe>, <lower_body recipe>], "seed": 7, "prompt": "outfit", ...}

A recipe without "outfit" is a single edit, read as before.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from fashion_rag.errors import InputError
from fashion_rag.results import check_seed

OUTFIT_ORDER = ("upper_body", "lower_body")  # the top first: a lower-body mask keeps the upper garment


@dataclass(frozen=True)
class OutfitStep:
    """One garment edit of an outfit. `person`: a PreparedPerson for this category on the photo (the page's,
    with its painted mask); None prepares the step's input photo with the automatic `mask_variant` mask."""

    category: str
    garment_ids: tuple[str, ...] = ()
    garment_images: tuple[Image.Image, ...] = ()
    person: object | None = field(default=None, compare=False)
    mask_variant: str = "box"


@dataclass
class OutfitResult:
    images: list[Image.Image]  # one per step: images[-1] is the outfit
    seed: int
    recipe: dict
    results: list = field(default_factory=list)  # each step's EditResult


def check_steps(steps: Sequence[OutfitStep]) -> None:
    """InputError unless the steps are an upper-body then a lower-body edit, each with a garment."""
    categories = tuple(step.category for step in steps)
    if categories != OUTFIT_ORDER:
        # A recipe may hold anything here: at most 3 categories are shown, each shortened (reprlib).
        given = ", ".join(reprlib.repr(c).strip("'\"") for c in categories[:3]) or "none"
        more = f", … ({len(categories)} steps)" if len(categories) > 3 else ""
        raise InputError(f"an outfit is {' then '.join(OUTFIT_ORDER)} garments, not {given}{more}")
    for step in steps:
        if not step.garment_ids and not step.garment_images:
            raise InputError(f"the outfit has no {step.category.replace('_', ' ')} garment: pick one for each part")


def dress_outfit(editor, photo: Image.Image, parts: Sequence[OutfitStep], progress=None, **fields: Any) -> OutfitResult:
    """Each part on the previous one's result, one image each. `fields`: the EditRequest fields every part shares
    (seed, steps, guidance, scheduler, paste_back); one seed for all, random when None or left out."""
    from fashion_rag.request import EditRequest

    check_steps(parts)
    fields = {**fields, "seed": check_seed(fields.get("seed")), "num_images": 1}
    current, results, previous = photo, [], None
    for step in parts:
        if step.person is not None and not results:  # the page's person, with the mask painted for this step
            if step.person.category != step.category:
                raise InputError(f"the person is prepared for {step.person.category}, the step is {step.category}")
            person = step.person
        else:
            person = step_person(editor, photo, current, step.category, step.mask_variant, previous)
        previous = person
        variant = getattr(person, "mask_variant", step.mask_variant)
        garments = {"garment_ids": step.garment_ids, "garment_images": step.garment_images}
        results.append(
            editor.run(EditRequest.of(person, mask_variant=variant, **garments, **fields), progress=progress)
        )
        if person is not step.person:  # prepared here: its notes (e.g. the fallback's) go to the user
            results[-1].notes.extend(person.notes)
        current = results[-1].images[0]
    return OutfitResult([r.images[0] for r in results], fields["seed"], outfit_recipe(results), results)


def outfit_recipe(results) -> dict:
    """One recipe for the whole outfit: each step's recipe in order, and what they share on top."""
    first = results[0].recipe
    shared = {key: first[key] for key in ("models", "model_sources", "catalog") if key in first}
    return {"prompt": "outfit", "outfit": [r.recipe for r in results], "seed": results[0].seed, **shared}


def is_outfit(recipe: dict) -> bool:
    return isinstance(recipe, dict) and "outfit" in recipe


def replay_outfit(
    editor, photo: Image.Image, recipe: dict, garment_images: Sequence[Image.Image] = (), progress=None
) -> OutfitResult:
    """The outfit a recipe describes, made again on `photo`: each step prepared on the previous result with
    the recipe's mask (refused when the photo is framed differently from the recipe's)."""
    from fashion_rag.request import EditRequest, PersonFrame, uploaded_count

    steps = recipe.get("outfit")
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps) or not steps:
        raise InputError("the recipe's 'outfit' must be a list of edit recipes, one per garment step")
    check_steps([OutfitStep(s.get("category", "?"), ("?",)) for s in steps])  # ids are checked by from_dict
    images = list(garment_images)
    current, results, previous = photo, [], None
    for step in steps:
        uploaded = uploaded_count(step)  # a negative count would slice the images from the end
        given, images = images[:uploaded], images[uploaded:]
        request = EditRequest.from_dict(step, photo=current, garment_images=tuple(given))
        person = step_person(editor, photo, current, request.category, request.mask_variant, previous)
        person = previous = step_mask(editor, person, step)
        request = replace(request, photo=None, person=PersonFrame.of(person))
        result = editor.run(request, progress=progress)
        result.notes.extend(person.notes)
        results.append(result)
        current = result.images[0]
    return OutfitResult([r.images[0] for r in results], results[0].seed, outfit_recipe(results), results)


def step_person(editor, photo: Image.Image, current: Image.Image, category: str, variant: str, previous):
    """The person for a step, prepared on `current` (the previous step's result, or the photo for the first).

    When the pose model finds no body on the previous result (a garment just painted can hide it from the
    model; the random test weights always do), the step takes the photo's own framing and pose, which the edit
    left as they were (paste-back keeps every pixel outside the mask), cuts its frame from the result, and
    leaves out of its mask what the previous step just painted, so the new top is kept.
    """
    if previous is None:
        return editor.prepare(current, category, mask_variant=variant)
    try:
        return editor.prepare(current, category, mask_variant=variant)
    except InputError as error:
        base = editor.prepare(photo, category, mask_variant=variant)
        note = f"on the outfit's first result: {error}; used the photo's framing and pose instead"
    if base.transform.to_dict() != previous.transform.to_dict():
        raise InputError(f"{note}, but the photo frames differently for {category}: edit the parts one at a time")
    kept = ~np.asarray(previous.mask, dtype=bool)  # (512, 384): the region the previous step painted stays
    return dataclasses.replace(
        base,
        original=current,
        frame=base.transform.frame_image(current),
        mask=base.mask & kept,
        mask_box=base.mask_box & kept,
        mask_precise=base.mask_precise & kept,
        notes=[*base.notes, note],
    )


def step_mask(editor, person, step: dict):
    """`person` with the step's recorded mask (request.recipe_mask: the rule for a single edit's recipe)."""
    from fashion_rag.request import recipe_mask

    return recipe_mask(editor, person, step)
