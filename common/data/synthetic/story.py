"""One story being written: its cast, place and object (each drawn when first used), and the
sentences so far, with the shared moves of every plot (going out, speaking, the moral)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from common.data.synthetic.characters import NAMES, Char, a, appearance, make_char
from common.data.synthetic.draws import Draws
from common.data.synthetic.scenery import detail, vary_words
from common.data.synthetic.words import (
    CLOSINGS,
    COLORS,
    ELDER_PRON,
    ELDERS,
    EXCLAIM_ADVERBS,
    FOODS,
    OBJECTS,
    OPENERS,
    PLACES,
    QUESTION_ADVERBS,
    SPEECH_ADVERBS,
    TIMES,
    TRAITS,
    Pronouns,
)

T = TypeVar("T")


class Story:
    """Shared state of one story; ``difficulty`` (0 to 1) sets how many details it carries."""

    def __init__(self, draws: Draws, difficulty: float) -> None:
        self.draws = draws
        self.difficulty = difficulty
        self.taken: set[str] = set()
        self.hero = make_char(draws, self.taken)
        self._friend: Char | None = None
        self._place: str | None = None
        self._obj: str | None = None
        self._obj_adj: str | None = None
        self._elder: str | None = None
        self.out: list[str] = []
        self.friend_known = False
        self.intro_end = 0
        self.creature: tuple[str, tuple[str, ...], str, str] | None = None
        self.creature_back = False
        self.collection: tuple[int, str] | None = None
        self.hour = -1  # index of the last hour a clock showed
        self.trinket: tuple[str, str] | None = None  # a thing found on the way, and where
        self.trinket_back = False
        self.met: list[str] = []  # names of the passers-by met
        self.waved = False

    # ---------------------------------------------------------- drawn when first used
    @property
    def friend(self) -> Char:
        if self._friend is None:
            self._friend = make_char(self.draws, self.taken, self.hero.animal, hero=False)
        return self._friend

    @property
    def place(self) -> str:
        if self._place is None:
            self._place = self.draws.pick(tuple(PLACES))
            self.where = self.draws.pick(PLACES[self._place][0])
        return self._place

    @property
    def features(self) -> tuple[str, ...]:
        return PLACES[self.place][1]

    @property
    def activities(self) -> tuple[str, ...]:
        return PLACES[self.place][2]

    def where_(self) -> str:
        _ = self.place  # draws the place (and its phrase) if not drawn yet
        return self.where

    @property
    def obj(self) -> str:
        if self._obj is None:
            self._obj = self.draws.pick(tuple(OBJECTS))
        return self._obj

    @property
    def obj_verb(self) -> str:
        return OBJECTS[self.obj][1]

    @property
    def obj_adj(self) -> str:
        if self._obj_adj is None:
            weights: dict[str, float] = {}
            own = OBJECTS[self.obj][0]
            for word in own:
                weights[word] = weights.get(word, 0.0) + 0.5 / len(own)
            for word in COLORS:
                weights[word] = weights.get(word, 0.0) + 0.5 / len(COLORS)
            self._obj_adj = self.draws.pick(tuple(weights), tuple(weights.values()))
        return self._obj_adj

    @property
    def elder(self) -> str:
        if self._elder is None:
            self._elder = self.draws.pick(ELDERS)
        return self._elder

    @property
    def elder_p(self) -> Pronouns:
        return ELDER_PRON[self.elder]

    # ------------------------------------------------------------------- writing
    def c(self, *options: T) -> T:
        return self.draws.pick(options)

    def chance(self, p: float) -> bool:
        return self.draws.chance(p)

    def add(self, *sentences: str, plot: bool = True) -> None:
        """Append sentences; plot sentences get varied words, openers and details between."""
        d = self.difficulty
        for sentence in sentences:
            if not self.friend_known and self._friend is not None and self._friend.name in sentence:
                sentence = self._introduce_friend(sentence)
            if plot and self.out:
                sentence = vary_words(self, sentence)
                subject = re.match(r"(He|She|They|[A-Z][a-z]+) [a-z]", sentence)
                starts_with_someone = subject is not None and (
                    subject.group(1) in NAMES or subject.group(1) in ("He", "She", "They")
                )
                if self.intro_end and starts_with_someone and self.chance(0.6 * d):
                    sentence = self._open(sentence)
            self.out.append(sentence)
            if plot and len(self.out) > 1 and self.chance(0.9 * d):
                self.out.append(vary_words(self, detail(self)))
                if self.chance(0.5 * d):
                    self.out.append(vary_words(self, detail(self)))

    def _open(self, sentence: str) -> str:
        opener = self.draws.pick(OPENERS)
        first = re.match(r"[A-Za-z]+", sentence)
        if first is None or first.group(0) in NAMES or first.group(0) == "I":
            return f"{opener} {sentence}"
        return f"{opener} {sentence[0].lower()}{sentence[1:]}"

    def _introduce_friend(self, sentence: str) -> str:
        """The first mention of the friend says who they are: "his friend Toby the fox"."""
        f = self.friend
        match = re.search(rf"\b{f.name}\b", sentence)
        if match is None:
            return sentence
        self.friend_known = True
        phrase = f"{self.hero.p.his} friend {f.name}"
        if f.animal and self.chance(0.5):
            phrase += f" the {f.kind}"
        if match.start() == 0:
            phrase = phrase[0].upper() + phrase[1:]
        return sentence[: match.start()] + phrase + sentence[match.end() :]

    def say(self, char: Char, line: str) -> str:
        """A line of dialogue with a speech verb; questions are asked, exclamations shouted."""
        adverbs: tuple[str, ...]
        if line.endswith("?"):
            verb = self.draws.pick(("asked", "wondered"), (2, 1))
            adverbs = QUESTION_ADVERBS
        elif line.endswith("!"):
            verb = self.c("shouted", "cried", "said")
            adverbs = EXCLAIM_ADVERBS
        else:
            verb = self.draws.pick(("said", "whispered", "replied"), (2, 1, 1))
            adverbs = SPEECH_ADVERBS
        adverb = " " + self.c(*adverbs) if self.chance(0.9 * self.difficulty) else ""
        if self.chance(0.5):
            if line.endswith("."):
                line = line[:-1] + ","
            if adverb:
                return f'"{line}" {char.name} {verb}{adverb}.'
            return f'"{line}" {verb} {char.name}.'
        return f'{char.name} {verb}{adverb}, "{line}"'

    def intro(self) -> None:
        h = self.hero
        opening = self.draws.pick(range(5))
        if opening == 0:
            first = h.f(
                "Once upon a time, there was {a_trait} {kind} named {Name}.", a_trait=a(h.trait)
            )
            self.add(first, plot=False)
        elif opening == 1:
            self.add(h.f("{Name} was {a_trait} little {kind}.", a_trait=a(h.trait)), plot=False)
        elif opening == 2:
            town = self.c("a small town", "a quiet village", "a house by the sea", "a big city")
            self.add(
                h.f("In {town}, there lived {a_trait} {kind} called {Name}.", town=town,
                    a_trait=a(h.trait)),
                plot=False,
            )  # fmt: skip
        elif opening == 3:
            self.add(
                h.f("There once was {a_kind} named {Name}. {He} {was} very {trait}.",
                    a_kind=a(h.kind)),
                plot=False,
            )  # fmt: skip
        else:
            self.add(h.f("{Name} the {kind} lived near {where}.", where=self.where_()), plot=False)
            self.add(h.f("{He} {was} {trait}."))
        self.add(h.f(self.c(*TRAITS[h.trait])))
        if self.chance(0.7):
            self.add(h.f(appearance(self.draws, h)))
        if self.chance(0.5):
            f = self.friend
            self.friend_known = True
            form = self.draws.pick(range(3), (0.6, 0.2, 0.2))
            if form == 0:
                line = h.f("{His} best friend was {a_kind} named {friend}.", a_kind=a(f.kind),
                           friend=f.name)  # fmt: skip
            elif form == 1:
                line = f.f("{Name} the {kind} lived next door, and {he} {was} {t} too.", t=h.trait)
            else:
                line = f.f("{Name}, {a_kind}, lived next door.", a_kind=a(f.kind))
            self.add(line)
        self.intro_end = len(self.out)

    def pad(self, min_words: int) -> None:
        """Background sentences after the introduction until the story is long enough."""
        h = self.hero
        details = [
            lambda: h.f("{He} lived in a little house with {his} {elder}.", elder=self.elder),
            lambda: h.f("Every morning, {he} had {food} for breakfast.", food=self.c(*FOODS)),
            lambda: h.f("{His} favorite color was {color}.", color=self.c(*COLORS[:10])),
            lambda: h.f("{He} liked to {act} at {where}.", act=self.c(*self.activities),
                        where=self.where_()),  # fmt: skip
            lambda: h.f("On rainy days, {he} liked to draw pictures and sing songs."),
            lambda: h.f("{Name} had a small garden with {c} flowers.", c=self.c(*COLORS[:10])),
        ]  # fmt: skip
        words = sum(len(x.split()) for x in self.out)
        at = self.intro_end
        while words < min_words and details:
            sentence = details.pop(self.draws.pick(range(len(details))))()
            self.out.insert(at, sentence)
            at += 1
            words += len(sentence.split())

    def go_to_place(self, with_friend: bool = True) -> None:
        h = self.hero
        time = self.c(*TIMES)
        if with_friend:
            f = self.friend
            self.add(
                h.f("{time}, {Name} and {friend} went to {where} to {act}.", time=time,
                    friend=f.name, where=self.where_(), act=self.c(*self.activities))
            )  # fmt: skip
        else:
            self.add(h.f("{time}, {Name} went to {where}.", time=time, where=self.where_()))
        feature = self.c(*self.features)
        if with_friend:
            be = "was" if feature.startswith(("a ", "an ")) else "were"
            self.add(
                self.c(
                    f"There {be} {feature} there.",
                    f"They saw {feature}.",
                    f"It was a beautiful place with {feature}.",
                )
            )
        else:
            self.add(h.f("{He} saw {feature}.", feature=feature))

    def moral(self, lessons: Sequence[str]) -> None:
        h = self.hero
        if self.chance(0.75):
            self.add(h.f(self.c(*CLOSINGS)), plot=False)
        lesson = self.c(*lessons)
        opening = self.draws.pick(range(4))
        if opening == 0:
            self.add(f"The moral of the story is that {lesson}.", plot=False)
        elif opening == 1:
            self.add(h.f("And so {Name} learned that {lesson}.", lesson=lesson), plot=False)
        elif opening == 2:
            self.add(h.f("From that day on, {Name} knew that {lesson}.", lesson=lesson), plot=False)
        else:
            self.add(
                h.f("{Name} learned an important lesson: {lesson}.", lesson=lesson), plot=False
            )

    def text(self) -> str:
        paragraphs: list[str] = []
        cur: list[str] = []
        for i, s in enumerate(self.out):
            cur.append(s)
            if (s.startswith('"') or len(cur) >= 4) and i < len(self.out) - 2:
                paragraphs.append(" ".join(cur))
                cur = []
        if cur:
            last = cur.pop()
            if cur:
                paragraphs.append(" ".join(cur))
            paragraphs.append(last)
        return "\n\n".join(paragraphs)
