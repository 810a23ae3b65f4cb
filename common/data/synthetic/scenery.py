"""Details between plot sentences: the sky, smells, sounds, feelings, and creatures met on the
way that come back later. How many there are is what the difficulty knob turns."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from common.data.synthetic.characters import NAMES, a
from common.data.synthetic.words import (
    ANIMALS,
    COLLECTIONS,
    COLORS,
    CREATURES,
    FEELING_WAYS,
    FEELINGS,
    HIDING_SPOTS,
    KEEPSAKE_WAYS,
    PASSER_ADJECTIVES,
    PASSERS_BY,
    SKIES,
    SMELLS,
    SOUNDS,
    SYNONYMS,
    THINGS_TO_COUNT,
    TRINKETS,
    WINDS,
)

if TYPE_CHECKING:
    from common.data.synthetic.story import Story

_GROUP_OF = {word: group for group in SYNONYMS for word in group}
_SYNONYM_RE = re.compile(
    r"\b(?:(a|an|A|An) )?(" + "|".join(sorted(_GROUP_OF, key=len, reverse=True)) + r")\b"
)


def vary_words(s: Story, sentence: str) -> str:
    """Each interchangeable word drawn again from its group (the first member is favoured less
    as the difficulty grows)."""
    d = s.difficulty
    if d <= 0:
        return sentence

    def swap(match: re.Match[str]) -> str:
        article, word = match.groups()
        group = _GROUP_OF[word]
        k = len(group)
        weights = [1.0 - d * (k - 1) / k] + [d / k] * (k - 1)
        word = s.draws.pick(group, weights)
        if article is None:
            return word
        fixed = a(word)  # the article agrees with the word drawn
        return fixed[0].upper() + fixed[1:] if article[0] == "A" else fixed

    return _SYNONYM_RE.sub(swap, sentence)


def detail(s: Story) -> str:
    """One sentence of detail; creatures, people met and things found earlier may come back."""
    h, d = s.hero, s.draws
    kinds = ["sky", "smell", "sound", "feeling", "creature", "count", "meet"]
    if s.trinket is None:
        kinds.append("find")
    elif not s.trinket_back:
        kinds.append("keepsake")
    if s.met and not s.waved:
        kinds.append("wave")
    if s.hour < 10:
        kinds.append("clock")
    if s.creature is not None and not s.creature_back:
        kinds.append("again")
    if s.collection is None:
        kinds.append("collection")
    elif s.collection[0] > 2:
        kinds.append("give")
    kind = d.pick(tuple(kinds))
    if kind == "sky":
        sky = d.pick(SKIES)
        if d.chance(0.5):
            return f"The sky was {sky}, and the wind was {d.pick(WINDS)}."
        return f"The sky was {sky}."
    if kind == "smell":
        x = d.pick(SMELLS)
        if d.chance(0.5):
            x += " and " + d.pick(tuple(y for y in SMELLS if y != x))
        return h.f(d.pick(("The air smelled of {x}.", "{Name} could smell {x}.")), x=x)
    if kind == "sound":
        first = d.pick(SOUNDS)
        second = d.pick(tuple(x for x in SOUNDS if x != first))
        return h.f("{Name} could hear {x} and {y}.", x=first, y=second)
    if kind == "count":
        x = d.pick(THINGS_TO_COUNT)
        counted = f"{d.pick(range(2, 100))} {x}"
        if d.chance(0.5):
            y = d.pick(tuple(t for t in THINGS_TO_COUNT if t != x))
            counted += f" and {d.pick(range(2, 100))} {y}"
        return h.f(d.pick(("{Name} counted {x}.", "{He} could see {x}.")), x=counted)
    if kind == "meet":
        name = d.pick(tuple(sorted(NAMES - s.taken)))
        s.taken.add(name)
        s.met.append(name)
        return h.f("{Name} met {x} the {adj} {k}, who was {doing}.", x=name,
                   adj=d.pick(PASSER_ADJECTIVES), k=d.pick(ANIMALS),
                   doing=d.pick(PASSERS_BY))  # fmt: skip
    if kind == "clock":  # the clock only moves forward within a story
        hours = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                 "eleven", "twelve")  # fmt: skip
        s.hour = d.pick(range(s.hour + 1, 12))
        return d.pick(("It was {n} o'clock.", "The clock said {n} o'clock.")).format(
            n=hours[s.hour]
        )
    if kind == "collection":
        n, things = d.pick(range(3, 21)), d.pick(COLLECTIONS)
        s.collection = (n, things)
        return h.f("{Name} had {n} {x} in {his} pocket.", n=str(n), x=things)
    if kind == "give":
        assert s.collection is not None
        n, things = s.collection
        k = d.pick(range(1, n - 1))  # at least two are left: the plural stays right
        s.collection = (n - k, things)
        return h.f(
            "{He} gave {k} of {his} {x} to {his} {elder}. Now {he} had {left} {x}.",
            k=str(k), x=things, elder=s.elder, left=str(n - k),
        )  # fmt: skip
    if kind == "find":
        color, thing, spot = d.pick(COLORS), d.pick(TRINKETS), d.pick(HIDING_SPOTS)
        s.trinket = (f"{color} {thing}", spot)
        return h.f(d.pick(("{Name} found {x} {spot}.", "{Name} picked up {x} {spot}.")),
                   x=a(f"{color} {thing}"), spot=spot)  # fmt: skip
    if kind == "keepsake":
        assert s.trinket is not None
        s.trinket_back = True
        return h.f(d.pick(KEEPSAKE_WAYS), x=s.trinket[0], spot=s.trinket[1])
    if kind == "wave":
        s.waved = True
        return h.f("{x} waved at {Name} again.", x=d.pick(tuple(s.met)))
    if kind == "feeling":
        return h.f(d.pick(FEELING_WAYS), feeling=d.pick(FEELINGS))
    if kind == "creature":
        noun, adjectives, doing, _ = d.pick(CREATURES)
        adj = d.pick(adjectives)
        s.creature, s.creature_back = (noun, adjectives, doing, _), False
        return h.f(
            d.pick(
                ("{Name} saw {x} {doing}.", "There was {x} {doing}.", "Nearby, {x} was {doing}.")
            ),
            x=a(adj + " " + noun),
            doing=doing,
        )
    assert s.creature is not None
    noun, _, _, back = s.creature
    s.creature_back = True
    return h.f("The " + noun + " " + back + ".")
