"""Characters of a story: a name that fixes the pronouns, a kind, a trait, and how they look."""

from __future__ import annotations

from common.data.synthetic.draws import Draws
from common.data.synthetic.words import (
    ANIMALS,
    BOYS,
    COLORS,
    FEATHERED,
    FUR_COLORS,
    GIRLS,
    HE,
    HUMAN_KINDS,
    NEUTRAL,
    SHE,
    THEY,
    TRAITS,
    Pronouns,
)

NAMES = frozenset(GIRLS + BOYS + NEUTRAL)


def a(word: str) -> str:
    """``word`` with its indefinite article ("an apple", "a kite")."""
    return ("an " if word[0] in "aeiou" else "a ") + word


class Char:
    """A character: name, pronouns, kind and trait; formats templates about itself.

    The kind of a friend is drawn only when the text first shows it, so a story never holds a
    draw its text does not show.
    """

    def __init__(
        self, draws: Draws, name: str, pron: Pronouns, animal: bool, trait: str | None
    ) -> None:
        self.draws = draws
        self.name = name
        self.p = pron
        self.animal = animal
        self.trait = trait or ""
        self._kind: str | None = None

    @property
    def kind(self) -> str:
        if self._kind is None:
            self._kind = self.draws.pick(ANIMALS if self.animal else HUMAN_KINDS[self.p.he])
        return self._kind

    def f(self, template: str, **extra: str) -> str:
        """Fill ``{Name} {He} {he} {him} {his} {His} {himself} {was} {is_} {has} {s} {kind}``."""
        p = self.p
        fields = dict(
            Name=self.name,
            name=self.name,
            He=p.he.capitalize(),
            he=p.he,
            him=p.him,
            his=p.his,
            His=p.his.capitalize(),
            himself=p.himself,
            was=p.was,
            is_=p.is_,
            has=p.has,
            s=p.s,
            trait=self.trait,
        )
        if "{kind}" in template:
            fields["kind"] = self.kind
        return template.format(**fields, **extra)


def make_char(draws: Draws, taken: set[str], animal: bool | None = None, hero: bool = True) -> Char:
    """A new character whose name is not in ``taken``; a hero also gets a trait."""
    group = draws.pick(("she", "he", "they"), (0.45, 0.45, 0.10))
    names, pron = {"she": (GIRLS, SHE), "he": (BOYS, HE), "they": (NEUTRAL, THEY)}[group]
    name = draws.pick(tuple(n for n in names if n not in taken))
    taken.add(name)
    if animal is None:
        animal = draws.chance(0.4)
    trait = draws.pick(tuple(TRAITS)) if hero else None
    return Char(draws, name, pron, animal, trait)


def appearance(d: Draws, c: Char) -> str:
    """A sentence about how a character looks, consistent with what kind of creature it is."""
    if c.kind in FEATHERED:
        soft = d.pick(("soft", "shiny", "fluffy"))
        return f"{{He}} had {soft} {d.pick(FUR_COLORS)} feathers and a little orange beak."
    if c.kind in ("turtle", "frog", "toad"):
        skin = d.pick(("green", "bumpy", "smooth", "spotted"))
        rest = " and a hard shell." if c.kind == "turtle" else " and long legs for jumping."
        return "{He} had " + skin + " skin" + rest
    if c.kind in ANIMALS:
        fixed = {
            "rabbit": "long ears",
            "fox": "a bushy tail",
            "lion": "a big mane",
            "deer": "thin legs",
            "pig": "a curly tail",
            "mouse": "tiny whiskers",
            "hedgehog": "sharp spines",
            "monkey": "a long tail",
        }
        fur = d.pick(FUR_COLORS)
        part = fixed.get(c.kind) or d.pick(("big paws", "a wet nose", "bright eyes"))
        return "{He} had " + fur + " fur and " + part + "."
    hair = d.pick(("curly", "long", "short", "red", "black", "brown", "yellow"))
    color = d.pick(COLORS)
    garment = d.pick(("coat", "sweater", "dress" if c.p is SHE else "shirt", "cap"))
    return "{He} had " + hair + " hair and always wore " + a(color + " " + garment) + "."
