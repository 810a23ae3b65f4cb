"""The embedded default corpus: a generator of short children's stories in plain English.

Every story has named characters with a pronoun set and a trait, a place, objects, a problem
that follows from the trait or the situation, dialogue in quotes, a resolution that follows from
the problem, and a moral as its last sentence. Pronouns and verbs agree with each character (he,
she or they), objects are referred to again later ("the red kite ... it"), and the moral matches
the kind of plot, so a language model can learn long-range structure, not only word frequencies.

Stories are about 100 to 250 words. Generation is deterministic by seed (``random.Random``) and
fast (several megabytes of text per second), so any amount of text is available on demand.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

_T = TypeVar("_T")

EOT = "<|endoftext|>"

# The last sentence of every story starts with one of these.
MORAL_OPENINGS = (
    "The moral of the story is",
    "And so {name} learned",
    "From that day on, {name} knew",
    "{name} learned an important lesson:",
)


MIN_WORDS = 100


@dataclass(frozen=True)
class _Pronouns:
    he: str
    him: str
    his: str
    himself: str
    was: str
    is_: str
    has: str
    s: str  # third-person verb ending: "s" or ""


_HE = _Pronouns("he", "him", "his", "himself", "was", "is", "has", "s")
_SHE = _Pronouns("she", "her", "her", "herself", "was", "is", "has", "s")
_THEY = _Pronouns("they", "them", "their", "themselves", "were", "are", "have", "")

_GIRLS = (
    "Lily", "Mia", "Emma", "Sara", "Anna", "Lucy", "Zoe", "Ella", "Grace", "Ruby", "Maya", "Chloe",
    "Nora", "Ivy", "Hannah", "Rosa", "Amy", "Julia", "Daisy", "Molly", "Sophie", "Clara", "Lena",
    "Tara", "Nina", "Olive", "Hazel", "Alice", "Kate", "Bella", "Fatima", "Aisha", "Mei", "Priya",
    "Elena", "Freya", "Greta", "Iris", "Jade", "Layla", "Luna", "Maria", "Nadia", "Poppy", "Rita",
    "Stella", "Wendy", "Yara", "Zara", "Beth",
)  # fmt: skip
_BOYS = (
    "Tom", "Ben", "Max", "Leo", "Sam", "Jack", "Tim", "Noah", "Finn", "Oscar", "Hugo", "Eli",
    "Luke", "Adam", "Owen", "Jake", "Theo", "Milo", "Ryan", "Paul", "Omar", "Ravi", "Kai", "Dan",
    "Toby", "Henry", "Felix", "Louis", "Arlo", "Joe", "Amir", "Bruno", "Carlos", "David", "Ezra",
    "George", "Ivan", "Jonah", "Kenji", "Liam", "Marco", "Nico", "Pablo", "Rafael", "Simon",
    "Victor", "Walter", "Yusuf", "Zack", "Billy",
)  # fmt: skip
_NEUTRAL = (
    "Alex", "Robin", "Sky", "Jordan", "Riley", "Quinn", "Charlie", "Kit", "Rowan", "Jesse",
    "Avery", "Morgan", "Casey", "Remy", "Sasha",
)  # fmt: skip

_HUMAN_KINDS = {"he": ("boy",), "she": ("girl",), "they": ("kid", "child")}
_ANIMALS = (
    "rabbit", "fox", "bear", "mouse", "cat", "dog", "duck", "owl", "squirrel", "turtle", "frog",
    "pig", "lamb", "puppy", "kitten", "hedgehog", "deer", "goose", "lion", "monkey", "elephant",
    "giraffe", "zebra", "penguin", "hen", "badger", "otter", "raccoon", "tiger", "koala",
)  # fmt: skip

# trait -> (adjective, description sentences, how the trait shows in a problem)
_TRAITS: dict[str, tuple[str, ...]] = {
    "curious": (
        "{He} always wanted to know how things worked.",
        "{He} asked a hundred questions every day.",
        "{He} liked to look under every rock and behind every door.",
    ),
    "brave": (
        "{He} {was} not afraid of the dark or of big dogs.",
        "{He} liked to climb the tallest trees.",
        '{He} always said, "I can do it!"',
    ),
    "shy": (
        "{He} spoke very quietly and liked to watch from far away.",
        "{He} did not like to talk to new people.",
        "{He} often hid behind {his} mom when visitors came.",
    ),
    "kind": (
        "{He} always helped others when they were sad.",
        "{He} liked to give {his} friends little gifts.",
        "{He} never said a mean word to anyone.",
    ),
    "grumpy": (
        "{He} frowned a lot and did not like to share.",
        '{He} often said, "Go away, I want to be alone!"',
        "Nothing ever seemed to make {him} happy.",
    ),
    "cheerful": (
        "{He} sang a happy song every morning.",
        "{He} smiled at everyone {he} met.",
        "{He} laughed so loudly that the birds laughed too.",
    ),
    "clever": (
        "{He} {was} very good at solving puzzles.",
        "{He} could count all the way to one hundred.",
        "{He} always had a smart idea.",
    ),
    "silly": (
        "{He} liked to make funny faces.",
        "{He} wore {his} hat upside down just to make people laugh.",
        "{He} told jokes all day long.",
    ),
    "lazy": (
        "{He} liked to sleep until the sun was high.",
        "{He} did not like to work hard.",
        '{He} always said, "I will do it later."',
    ),
    "proud": (
        "{He} liked to tell everyone that {he} {was} the best.",
        "{He} thought {he} could do everything alone.",
        "{He} did not like to ask for help.",
    ),
}

# place -> (phrase, features, activities)
_PLACES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "park": (
        ("the park", "the big park", "the green park"),
        ("a tall slide", "a big oak tree", "a pond with ducks", "a sandbox", "a wooden bench"),
        ("play on the swings", "run on the grass", "feed the ducks"),
    ),
    "forest": (
        ("the forest", "the dark forest", "the quiet woods"),
        ("tall pine trees", "a little stream", "a hollow log", "soft green moss", "a mossy rock"),
        ("pick berries", "look for mushrooms", "listen to the birds"),
    ),
    "beach": (
        ("the beach", "the sunny beach", "the seaside"),
        ("big blue waves", "white shells", "a rock pool", "warm yellow sand", "a little boat"),
        ("build a sandcastle", "collect shells", "splash in the waves"),
    ),
    "garden": (
        ("the garden", "the flower garden", "grandma's garden"),
        ("red roses", "a vegetable patch", "a small fountain", "a green hedge", "an apple tree"),
        ("water the flowers", "dig in the dirt", "chase butterflies"),
    ),
    "farm": (
        ("the farm", "the old farm", "the busy farm"),
        ("a red barn", "a muddy field", "a haystack", "a wooden fence", "a big tractor"),
        ("feed the chickens", "jump in the hay", "ride on the tractor"),
    ),
    "school": (
        ("school", "the little school", "the classroom"),
        ("a big blackboard", "a shelf of books", "a colorful rug", "a fish tank", "small desks"),
        ("paint pictures", "read stories", "play with blocks"),
    ),
    "river": (
        ("the river", "the wide river", "the riverbank"),
        ("smooth stones", "a wooden bridge", "tall reeds", "a fallen tree", "clear cold water"),
        ("throw stones", "watch the fish", "float paper boats"),
    ),
    "hill": (
        ("the hill", "the windy hill", "the top of the hill"),
        ("long green grass", "a lonely tree", "a view of the town", "yellow flowers", "a big rock"),
        ("fly kites", "roll down the grass", "look at the clouds"),
    ),
    "market": (
        ("the market", "the town market", "the busy market"),
        ("stalls of fruit", "a man selling bread", "baskets of eggs", "a flower stall", "crowds"),
        ("buy apples", "smell the fresh bread", "look at the toys"),
    ),
    "library": (
        ("the library", "the old library", "the town library"),
        ("tall shelves", "soft chairs", "a quiet corner", "picture books", "a big globe"),
        ("read books", "look at maps", "listen to a story"),
    ),
    "pond": (
        ("the pond", "the little pond", "the duck pond"),
        ("green lily pads", "a family of ducks", "a small dock", "cattails", "a sleepy frog"),
        ("catch tadpoles", "skip stones", "watch the dragonflies"),
    ),
    "zoo": (
        ("the zoo", "the big zoo", "the city zoo"),
        ("a tall giraffe", "a sleepy lion", "a pool with seals", "noisy parrots", "a big fence"),
        ("see the animals", "feed the goats", "watch the penguins"),
    ),
    "playground": (
        ("the playground", "the school playground", "the new playground"),
        ("a red slide", "a sandpit", "a climbing frame", "a merry-go-round", "two seesaws"),
        ("play tag", "go down the slide", "swing high"),
    ),
    "meadow": (
        ("the meadow", "the flower meadow", "the sunny meadow"),
        ("bright wildflowers", "buzzing bees", "a stone wall", "tall grass", "a little brook"),
        ("pick flowers", "chase butterflies", "have a picnic"),
    ),
    "bakery": (
        ("the bakery", "the corner bakery", "the warm bakery"),
        ("fresh bread", "a big oven", "cakes in the window", "a smiling baker", "sweet buns"),
        ("buy a cake", "smell the bread", "watch the baker"),
    ),
    "mountain": (
        ("the mountain", "the snowy mountain", "the foot of the mountain"),
        ("a cold stream", "big gray rocks", "a wooden hut", "snow on the top", "a narrow path"),
        ("climb the rocks", "look at the valley", "make a snowman"),
    ),
}

_COLORS = (
    "red", "blue", "green", "yellow", "purple", "orange", "pink", "white", "brown", "gold",
    "silver", "black", "gray", "striped", "spotted",
)  # fmt: skip
# object noun -> (adjectives, what you do with it)
_OBJECTS: dict[str, tuple[tuple[str, ...], str]] = {
    "ball": (("bouncy", "round", "shiny"), "throw"),
    "kite": (("big", "shiny", "long-tailed"), "fly"),
    "teddy bear": (("soft", "old", "fluffy"), "hug"),
    "hat": (("warm", "funny", "floppy"), "wear"),
    "book": (("new", "thick", "old"), "read"),
    "toy car": (("fast", "little", "shiny"), "race"),
    "doll": (("small", "pretty", "old"), "dress"),
    "scarf": (("long", "woolly", "warm"), "wear"),
    "boat": (("little", "wooden", "toy"), "sail"),
    "drum": (("loud", "little", "round"), "play"),
    "ring": (("tiny", "shiny", "silver"), "wear"),
    "shovel": (("little", "plastic", "strong"), "dig with"),
    "umbrella": (("big", "striped", "new"), "open"),
    "basket": (("woven", "small", "round"), "carry"),
    "balloon": (("big", "shiny", "round"), "hold"),
    "toy train": (("long", "wooden", "noisy"), "push"),
    "flute": (("little", "wooden", "silver"), "play"),
    "puzzle": (("hard", "new", "big"), "finish"),
    "lantern": (("bright", "little", "old"), "carry"),
    "jump rope": (("long", "new", "bright"), "jump with"),
    "necklace": (("pretty", "beaded", "shiny"), "wear"),
    "bucket": (("little", "plastic", "red"), "fill"),
    "robot toy": (("noisy", "clever", "shiny"), "play with"),
    "yo-yo": (("fast", "shiny", "little"), "spin"),
}
_FOODS = (
    "cookies", "apples", "a cake", "sandwiches", "strawberries", "a pie", "cherries", "muffins",
    "carrots", "honey bread", "pancakes", "grapes", "cheese", "plums", "biscuits", "soup",
    "pears", "a big melon", "blueberries", "nuts",
)  # fmt: skip
_HIDING_SPOTS = (
    "under a bush", "behind a big rock", "inside a hollow log", "under the bench",
    "next to a tree", "in the tall grass", "under a pile of leaves", "behind the fence",
)  # fmt: skip
_TIMES = (
    "One sunny morning", "One day", "One afternoon", "One windy day", "Early one morning",
    "On Saturday", "One warm evening", "After lunch", "One cloudy day", "On the first warm day",
)  # fmt: skip
_ELDERS = ("mom", "dad", "grandma", "grandpa", "aunt", "uncle")
_ELDER_PRON = {
    "mom": _SHE, "grandma": _SHE, "aunt": _SHE, "dad": _HE, "grandpa": _HE, "uncle": _HE,
}  # fmt: skip


_FEATHERED = ("duck", "owl", "goose")
_FUR_COLORS = ("brown", "white", "gray", "golden", "black", "orange", "spotted")
_CLOSINGS = (
    "That night, {Name} went to bed with a big smile.",
    "It was a day {Name} would never forget.",
    "When the sun went down, {Name} walked home feeling happy.",
    "{Name} told the story to everyone {he} knew.",
    "After that day, {Name} was a little wiser.",
)


def _appearance(rng: random.Random, c: _Char) -> str:
    """A sentence about how a character looks, consistent with what kind of creature it is."""
    if c.kind in _FEATHERED:
        return (
            "{He} had "
            + rng.choice(("soft", "shiny", "fluffy"))
            + " "
            + rng.choice(_FUR_COLORS)
            + " feathers and a little orange beak."
        )
    if c.kind in ("turtle", "frog"):
        return (
            "{He} had "
            + rng.choice(("green", "bumpy", "smooth", "spotted"))
            + " skin"
            + (" and a hard shell." if c.kind == "turtle" else " and long legs for jumping.")
        )
    if c.kind in _ANIMALS:
        part = {
            "rabbit": "long ears",
            "fox": "a bushy tail",
            "lion": "a big mane",
            "deer": "thin legs",
            "pig": "a curly tail",
            "mouse": "tiny whiskers",
            "hedgehog": "sharp spines",
            "monkey": "a long tail",
        }.get(c.kind, rng.choice(("big paws", "a wet nose", "bright eyes")))
        return "{He} had " + rng.choice(_FUR_COLORS) + " fur and " + part + "."
    hair = rng.choice(("curly", "long", "short", "red", "black", "brown", "yellow"))
    clothes = _a(
        rng.choice(_COLORS)
        + " "
        + rng.choice(("coat", "sweater", "dress" if c.p is _SHE else "shirt", "cap"))
    )
    return "{He} had " + hair + " hair and always wore " + clothes + "."


class _Char:
    """A character: a name, a kind, a pronoun set and a trait; formats templates about itself."""

    def __init__(self, name: str, pron: _Pronouns, kind: str, trait: str) -> None:
        self.name = name
        self.p = pron
        self.kind = kind
        self.trait = trait

    def f(self, template: str, **extra: str) -> str:
        """Fill ``{Name} {He} {he} {him} {his} {His} {himself} {was} {is} {has} {s}``."""
        p = self.p
        return template.format(
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
            kind=self.kind,
            trait=self.trait,
            **extra,
        )


def _make_char(rng: random.Random, taken: set[str], animal: bool | None = None) -> _Char:
    r = rng.random()
    names: tuple[str, ...]
    if r < 0.45:
        names, pron = _GIRLS, _SHE
    elif r < 0.9:
        names, pron = _BOYS, _HE
    else:
        names, pron = _NEUTRAL, _THEY
    name = rng.choice(names)
    while name in taken:
        name = rng.choice(names)
    taken.add(name)
    if animal is None:
        animal = rng.random() < 0.4
    kind = rng.choice(_ANIMALS) if animal else rng.choice(_HUMAN_KINDS[pron.he])
    return _Char(name, pron, kind, rng.choice(tuple(_TRAITS)))


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


class _Story:
    """Shared state of one story: the cast, the place, an object, and the sentences so far."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        taken: set[str] = set()
        self.hero = _make_char(rng, taken)
        self.friend = _make_char(rng, taken, animal=self.hero.kind in _ANIMALS)
        self.place = rng.choice(tuple(_PLACES))
        phrases, self.features, self.activities = _PLACES[self.place]
        self.where = rng.choice(phrases)
        self.obj = rng.choice(tuple(_OBJECTS))
        adjectives, self.obj_verb = _OBJECTS[self.obj]
        self.obj_adj = rng.choice(adjectives) if rng.random() < 0.5 else rng.choice(_COLORS)
        self.elder = rng.choice(_ELDERS)
        self.elder_p = _ELDER_PRON[self.elder]
        self.out: list[str] = []
        self.friend_known = False
        self.intro_end = 0

    def c(self, *options: _T) -> _T:
        return self.rng.choice(options)

    def add(self, *sentences: str) -> None:
        for sentence in sentences:
            if not self.friend_known and self.friend.name in sentence:
                sentence = self._introduce_friend(sentence)
            self.out.append(sentence)

    def _introduce_friend(self, sentence: str) -> str:
        """The first mention of the friend says who they are: "his friend Toby the fox"."""
        f = self.friend
        match = re.search(rf"\b{f.name}\b", sentence)
        if match is None:
            return sentence
        self.friend_known = True
        phrase = f"{self.hero.p.his} friend {f.name}"
        if f.kind in _ANIMALS and self.rng.random() < 0.5:
            phrase += f" the {f.kind}"
        if match.start() == 0:
            phrase = phrase[0].upper() + phrase[1:]
        return sentence[: match.start()] + phrase + sentence[match.end() :]

    def say(self, char: _Char, line: str) -> str:
        """A line of dialogue with a speech verb; questions are asked, exclamations shouted."""
        rng = self.rng
        if line.endswith("?"):
            verb = rng.choice(("asked", "asked", "wondered"))
        elif line.endswith("!"):
            verb = rng.choice(("shouted", "cried", "said"))
        else:
            verb = rng.choice(("said", "said", "whispered", "replied"))
        if rng.random() < 0.5:
            if line.endswith("."):
                line = line[:-1] + ","
            return f'"{line}" {verb} {char.name}.'
        return f'{char.name} {verb}, "{line}"'

    def intro(self) -> None:
        h, rng = self.hero, self.rng
        opening = rng.randrange(5)
        if opening == 0:
            self.add(
                h.f(
                    "Once upon a time, there was {a_trait} {kind} named {Name}.",
                    a_trait=_a(h.trait),
                )
            )
        elif opening == 1:
            self.add(h.f("{Name} was {a_trait} little {kind}.", a_trait=_a(h.trait)))
        elif opening == 2:
            town = self.c("a small town", "a quiet village", "a house by the sea", "a big city")
            self.add(
                h.f(
                    "In {town}, there lived {a_trait} {kind} called {Name}.",
                    town=town,
                    a_trait=_a(h.trait),
                )
            )
        elif opening == 3:
            self.add(
                h.f(
                    "There once was {a_kind} named {Name}. {He} {was} very {trait}.",
                    a_kind=_a(h.kind),
                )
            )
        else:
            self.add(
                h.f("{Name} the {kind} lived near {where}.", where=self.where),
                h.f("{He} {was} {trait}."),
            )
        self.add(h.f(rng.choice(_TRAITS[h.trait])))
        if rng.random() < 0.7:
            self.add(h.f(_appearance(rng, h)))
        if rng.random() < 0.5:
            f = self.friend
            self.friend_known = True
            self.add(
                h.f(
                    "{His} best friend was {a_kind} named {friend}.",
                    a_kind=_a(f.kind),
                    friend=f.name,
                )
                if rng.random() < 0.6
                else (
                    f.f("{Name} the {kind} lived next door, and {he} {was} {trait} too.")
                    if f.trait == h.trait
                    else f.f("{Name}, {a_kind}, lived next door.", a_kind=_a(f.kind))
                )
            )
        self.intro_end = len(self.out)

    def pad(self, min_words: int) -> None:
        """Add background sentences after the introduction until the story is long enough."""
        h, rng = self.hero, self.rng
        details = [
            h.f("{He} lived in a little house with {his} {elder}.", elder=self.elder),
            h.f("Every morning, {he} had {food} for breakfast.", food=rng.choice(_FOODS)),
            h.f("{His} favorite color was {color}.", color=rng.choice(_COLORS[:10])),
            h.f(
                "{He} liked to {act} at {where}.", act=rng.choice(self.activities), where=self.where
            ),
            h.f("On rainy days, {he} liked to draw pictures and sing songs."),
            h.f("{Name} had a small garden with {color} flowers.", color=rng.choice(_COLORS[:10])),
        ]
        rng.shuffle(details)
        words = sum(len(x.split()) for x in self.out)
        at = self.intro_end
        while words < min_words and details:
            sentence = details.pop()
            self.out.insert(at, sentence)
            at += 1
            words += len(sentence.split())

    def go_to_place(self, with_friend: bool = True) -> None:
        h, f = self.hero, self.friend
        time = self.c(*_TIMES)
        if with_friend:
            self.add(
                h.f(
                    "{time}, {Name} and {friend} went to {where} to {act}.",
                    time=time, friend=f.name, where=self.where, act=self.c(*self.activities),
                )  # fmt: skip
            )
        else:
            self.add(h.f("{time}, {Name} went to {where}.", time=time, where=self.where))
        feature = self.c(*self.features)
        self.add(
            self.c(
                f"There {'was' if feature.startswith(('a ', 'an ')) else 'were'} {feature} there.",
                f"They saw {feature}.",
                f"It was a beautiful place with {feature}.",
            )
            if with_friend
            else h.f("{He} saw {feature}.", feature=feature)
        )

    def moral(self, lessons: tuple[str, ...]) -> None:
        h = self.hero
        if self.rng.random() < 0.75:
            self.add(h.f(self.c(*_CLOSINGS)))
        lesson = self.c(*lessons)
        opening = self.rng.randrange(4)
        if opening == 0:
            self.add(f"The moral of the story is that {lesson}.")
        elif opening == 1:
            self.add(h.f("And so {Name} learned that {lesson}.", lesson=lesson))
        elif opening == 2:
            self.add(h.f("From that day on, {Name} knew that {lesson}.", lesson=lesson))
        else:
            self.add(h.f("{Name} learned an important lesson: {lesson}.", lesson=lesson))

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


# ----------------------------------------------------------------------------------- plots
def _plot_lost(s: _Story) -> None:
    h, f = s.hero, s.friend
    obj = s.obj
    s.add(h.f("{Name} had {a_obj}.", a_obj=_a(f"{s.obj_adj} {obj}")))
    s.add(h.f("{He} loved to {verb} it every day.", verb=s.obj_verb))
    s.go_to_place()
    s.add(
        h.f(
            "{He} put the {obj} down to {act}. When {he} came back, the {obj} was gone!",
            obj=obj, act=s.c(*s.activities),
        )  # fmt: skip
    )
    s.add(
        s.say(h, s.c(f"Oh no! Where is my {obj}?", f"My {obj} is gone!", f"Where did my {obj} go?"))
    )
    s.add(h.f("{Name} felt very sad. {He} started to cry."))
    s.add(s.say(f, s.c("Don't cry. I will help you look for it.", "We can find it together!")))
    spot = s.c(*_HIDING_SPOTS)
    looked = s.c(*_HIDING_SPOTS)
    while looked == spot:
        looked = s.c(*_HIDING_SPOTS)
    s.add(f"They looked {looked}, but it was not there.")
    if f.trait in ("clever", "curious"):
        s.add(f.f("Then {Name} had an idea. {He} looked {spot}.", spot=spot))
    else:
        s.add(f"Then they looked {spot}.")
    s.add(
        s.c(f"There was the {s.obj_adj} {obj}!", f"The {obj} was there!", f"They found the {obj}!")
    )
    s.add(
        h.f("{Name} hugged {friend}. ", friend=f.name).strip()
        + " "
        + s.say(h, s.c("Thank you for helping me!", "You are the best friend ever!"))
    )
    s.add(
        s.c(
            f"After that, {h.name} always kept the {obj} close.",
            f"They played with the {obj} until the sun went down.",
        )
    )
    s.moral((
        "a good friend helps you when you are sad",
        "you should never give up",
        "friends can find anything together",
        "it is good to take care of the things you love",
    ))  # fmt: skip


def _plot_share(s: _Story) -> None:
    h, f = s.hero, s.friend
    food = s.c(*_FOODS)
    has_food = s.rng.random() < 0.5
    thing = food if has_food else f"{s.obj_adj} {s.obj}"
    ref = food if has_food else s.obj
    s.go_to_place()
    s.add(h.f("{Name} had {thing}.", thing=thing if has_food else _a(thing)))
    s.add(
        s.say(
            f,
            s.c(
                f"Can I have some of your {ref}?" if has_food else f"Can I play with your {ref}?",
                f"May I try your {ref}, please?",
            ),
        )
    )
    if h.trait in ("grumpy", "proud", "lazy") or s.rng.random() < 0.5:
        s.add(
            s.say(
                h,
                s.c(f"No! The {ref} {'are' if ref.endswith('s') else 'is'} mine!", "No, go away!"),
            )
        )
        s.add(
            f.f("{Name} felt sad. {He} walked away and sat alone {spot}.", spot=s.c(*_HIDING_SPOTS))
        )
        s.add(h.f("{Name} looked at {friend}. {He} did not feel happy anymore.", friend=f.name))
        s.add(h.f("{He} thought about how {friend} felt.", friend=f.name))
        s.add(h.f('{He} walked to {friend} and said, "I am sorry. Let\'s share."', friend=f.name))
    else:
        s.add(s.say(h, s.c(f"Yes! Let's share the {ref}.", "Of course! Sharing is fun.")))
    if has_food:
        s.add(
            s.c(
                f"They ate the {ref} together.",
                f"They shared the {ref}, and each of them had the same.",
            )
        )
        s.add(s.c("It tasted even better when they shared.", "They both smiled with full tummies."))
    else:
        s.add(s.c(f"They took turns with the {ref}.", f"They played with the {ref} together."))
        s.add(
            s.c("Playing together was more fun than playing alone.", "They laughed all afternoon.")
        )
    s.add(f.f('{Name} said, "Thank you. You are a good friend."'))
    s.moral((
        "sharing makes everyone happy",
        "it is kind to share with your friends",
        "things are more fun when you share them",
    ))  # fmt: skip


_FEARS = {
    "the dark": (
        "the room was dark",
        "turned on a small light",
        "the dark was only the night, resting",
    ),
    "the water": (
        "the water looked deep",
        "held hands and stepped in slowly",
        "the water was warm and fun",
    ),
    "the big dog": (
        "a big dog barked",
        "held out a hand very slowly",
        "the dog only wanted to play",
    ),
    "thunder": (
        "thunder boomed in the sky",
        "counted the seconds after each flash",
        "thunder is just a loud noise",
    ),
    "the tall slide": (
        "the slide was very tall",
        "climbed up one step at a time",
        "the slide was fast and fun",
    ),
}


def _plot_fear(s: _Story) -> None:
    h, f = s.hero, s.friend
    fear = s.c(*_FEARS)
    problem, action, truth = _FEARS[fear]
    s.add(h.f("{Name} {was} afraid of {fear}.", fear=fear))
    if h.trait == "brave":
        s.add(h.f("{He} told everyone {he} {was} brave, but this was {his} secret."))
    s.go_to_place(with_friend=s.rng.random() < 0.6)
    helper_name = f.name if s.rng.random() < 0.6 else f"{h.p.his} {s.elder}"
    helper_cap = helper_name[0].upper() + helper_name[1:]
    s.add(h.f("Suddenly, {problem}.", problem=problem))
    s.add(h.f("{Name} started to shake. {He} wanted to run home."))
    s.add(s.say(h, s.c("I am scared!", "I can't do it!", "Please help me!")))
    s.add(
        f'{helper_cap} said, "'
        + s.c("It is okay to be scared.", "You are braver than you think.", "I will stay with you.")
        + '"'
    )
    s.add(h.f("{Name} took a deep breath. {He} {action}.", action=action))
    s.add(h.f("Soon {he} saw that {truth}.", truth=truth))
    s.add(s.say(h, s.c("I did it!", "It is not scary at all!", "That was fun!")))
    s.add(h.f("{Name} smiled, and {helper} smiled too.", helper=helper_name))
    s.moral((
        "being brave means trying even when you are scared",
        "many scary things are not so scary when you face them",
        "a friend can help you be brave",
    ))  # fmt: skip


_TROUBLES = (
    (
        "a little bird",
        "had a hurt wing",
        "made a soft bed of leaves for it",
        "the bird could fly again",
        "it",
    ),
    (
        "a small kitten",
        "was stuck up a tree",
        "ran to get a ladder",
        "the kitten was safe on the ground",
        "it",
    ),
    (
        "a baby duck",
        "had lost its mother",
        "looked all around the pond",
        "the duckling was back with its family",
        "it",
    ),
    (
        "an old man",
        "had dropped his apples",
        "picked up every apple",
        "all the apples were back in the bag",
        "him",
    ),
    (
        "a little girl",
        "could not find her way home",
        "walked with her to the big road",
        "the girl saw her house",
        "her",
    ),
    (
        "a tiny snail",
        "was in the middle of the path",
        "carried it gently to the grass",
        "the snail was safe",
        "it",
    ),
)


def _plot_help(s: _Story) -> None:
    h = s.hero
    who, trouble, action, result, obj_pron = s.c(*_TROUBLES)
    s.go_to_place(with_friend=s.rng.random() < 0.5)
    s.add(
        h.f("Then {Name} saw {who}. It {trouble}.", who=who, trouble=trouble)
        .replace("It had dropped his", "He had dropped his")
        .replace("It could not find her", "She could not find her")
    )
    if h.trait in ("grumpy", "lazy", "proud"):
        s.add(h.f("At first, {Name} wanted to walk away."))
        s.add(h.f('But {he} thought, "What if it was me?"'))
    else:
        s.add(s.say(h, s.c("Oh no! I have to help!", "Don't worry, I will help you!")))
    s.add(h.f("{Name} {action}.", action=action))
    s.add(h.f("It took a long time, but {he} did not stop."))
    s.add(f"At last, {result}.")
    thanks = (
        "said thank you"
        if obj_pron != "it"
        else s.c("chirped a happy song", "looked up with happy eyes")
    )
    s.add(
        h.f(
            "{Who} {thanks}, and {Name} felt warm inside.",
            Who=who[0].upper() + who[1:],
            thanks=thanks,
        )
        .replace("A little girl said", "The little girl said")
        .replace("An old man said", "The old man said")
        .replace("A ", "The ", 1)
    )
    s.add(
        h.f(
            'When {he} told {his} {elder} about it, {elder_he} said, "I am so proud of you."',
            elder=s.elder,
            elder_he=s.elder_p.he,
        )
    )
    s.moral((
        "helping others makes your heart happy",
        "we should always help those who need it",
        "a small kind act can make a big difference",
    ))  # fmt: skip


_BREAKABLES = ("vase", "cup", "plate", "lamp", "jar", "window")


def _plot_honest(s: _Story) -> None:
    h = s.hero
    thing = s.c(*_BREAKABLES)
    el, ep = s.elder, s.elder_p
    s.add(h.f("{Name} was playing with {his} {obj} inside the house.", obj=s.obj))
    s.add(h.f('{His} {el} had said, "Please do not play with that in the house."', el=el))
    s.add(
        h.f(
            "But {Name} did not listen. Crash! The {obj} hit {his} {el}'s {thing}, and it broke.",
            obj=s.obj,
            el=el,
            thing=thing,
        )
    )
    s.add(
        h.f(
            "{Name} was scared. {He} hid the pieces {spot}.",
            spot=s.c("under the bed", "behind the sofa", "in a box", "under a rug"),
        )
    )
    s.add(
        f'When {h.p.his} {el} came home, {ep.he} asked, "Do you know what happened to my {thing}?"'
    )
    if h.trait in ("grumpy", "proud", "silly") or s.rng.random() < 0.4:
        s.add(s.say(h, s.c("I don't know.", "Maybe the cat did it.")))
        s.add(h.f("That night, {Name} could not sleep. {He} felt bad inside."))
        s.add(h.f("In the morning, {he} went to {his} {el}.", el=el))
    s.add(
        s.say(
            h,
            s.c(
                f"I broke your {thing}. I am sorry.",
                f"It was me. I broke the {thing} with my {s.obj}.",
            ),
        )
    )
    s.add(f"{h.p.his.capitalize()} {el} gave {h.p.him} a big hug.")
    s.add(
        f'"Thank you for telling me the truth," {ep.he} said. '
        + '"Things can be fixed. I am glad you were honest."'
    )
    s.add(
        h.f("Together they fixed the {thing} with glue.", thing=thing)
        if thing != "window"
        else "Together they called a man to fix the window."
    )
    s.moral((
        "it is always best to tell the truth",
        "telling the truth makes you feel better",
        "being honest is more important than being perfect",
    ))  # fmt: skip


def _plot_weather(s: _Story) -> None:
    h, f = s.hero, s.friend
    food = s.c(*_FOODS)
    s.add(
        h.f("{Name} and {friend} wanted to have a picnic at {where}.", friend=f.name, where=s.where)
    )
    s.add(f"They packed {food} in a basket.")
    weather = s.c("rain", "snow", "wind")
    if weather == "rain":
        s.add("But then dark clouds came, and it started to rain.")
        cause = "Because it was raining"
    elif weather == "snow":
        s.add("But then it got very cold, and snow began to fall.")
        cause = "Because of the snow"
    else:
        s.add("But then a strong wind began to blow, and the trees bent.")
        cause = "Because the wind was so strong"
    s.add(f"{cause}, they could not go to {s.where}.")
    s.add(s.say(h, s.c("This is the worst day ever!", "Now our day is ruined!")))
    if h.trait in ("grumpy", "lazy"):
        s.add(h.f("{Name} sat on the floor and frowned."))
    s.add(s.say(f, s.c("We can have a picnic inside!", "Let's make the best of it!")))
    s.add(s.c(
        "They put a blanket on the floor and made a fort with pillows.",
        "They spread a blanket on the living room floor.",
        "They built a little tent out of chairs and sheets.",
    ))  # fmt: skip
    s.add(f"They ate the {food.removeprefix('a ')} and told stories.")
    s.add(s.c(
        f"Later, the {weather} stopped, and the sun came out.",
        f"They listened to the {weather} outside and laughed.",
    ))  # fmt: skip
    s.add(h.f('{Name} said, "This was the best picnic ever!"'))
    s.moral((
        "you can have fun even when plans change",
        "it is good to make the best of a bad day",
        "a good friend can turn a sad day into a happy one",
    ))  # fmt: skip


def _plot_race(s: _Story) -> None:
    h, f = s.hero, s.friend
    goal = s.c(*s.features)
    s.go_to_place()
    s.add(s.say(h, f"Let's have a race to {goal}!"))
    if h.trait == "proud":
        s.add(s.say(h, "I am the fastest. I will win for sure!"))
    s.add(s.c("Ready, set, go!", "One, two, three, go!"))
    s.add(h.f("{Name} ran very fast. {friend} ran fast too.", friend=f.name))
    s.add(f.f("Then {Name} tripped on a stone and fell down. {He} hurt {his} knee."))
    if h.trait in ("proud", "grumpy") and s.rng.random() < 0.5:
        s.add(h.f("{Name} kept running and reached {goal} first.", goal=goal))
        s.add(
            h.f(
                "But when {he} turned around, {he} saw {friend} crying on the ground.",
                friend=f.name,
            )
        )
        s.add(h.f("Winning did not feel good anymore. {He} ran back to help.", friend=f.name))
    else:
        s.add(h.f("{Name} stopped running. {He} ran back to {friend}.", friend=f.name))
    s.add(s.say(h, s.c("Are you okay?", "Does it hurt?")))
    s.add(f.f("{Name} nodded and stood up slowly."))
    s.add(s.c(
        f"They walked to {goal} together, hand in hand.",
        f"Together they walked the rest of the way to {goal}.",
    ))  # fmt: skip
    s.add(s.say(f, "Thank you for coming back for me."))
    s.moral((
        "helping a friend is more important than winning",
        "being kind is better than being first",
        "friends matter more than prizes",
    ))  # fmt: skip


def _plot_practice(s: _Story) -> None:
    h = s.hero
    skill, fail, win = s.c(
        ("ride a bike", "fell over", "rode all the way down the street"),
        ("bake a cake", "burned the cake", "made a soft, sweet cake"),
        (
            "build a tall tower of blocks",
            "watched the tower fall down",
            "built a tower taller than the table",
        ),
        ("tie {his} shoes", "made a big knot", "tied a perfect bow"),
        ("swim", "sank and got water in {his} nose", "swam across the pool"),
        ("whistle", "only made a funny puff of air", "whistled a little song"),
    )
    s.add(h.f("{Name} wanted to learn to " + skill + "."))
    s.add(h.f("The first time {he} tried, {he} " + fail + "."))
    s.add(s.say(h, s.c("This is too hard!", "I will never learn!")))
    if h.trait in ("lazy", "grumpy", "proud"):
        s.add(h.f("{He} wanted to give up and go home."))
    s.add(h.f(f'{{His}} {s.elder} said, "Try again. Everyone learns slowly at first."'))
    s.add(h.f("The second time, {he} tried a little harder, but {he} " + fail + " again."))
    s.add(h.f("{Name} did not give up. {He} practiced every day."))
    s.add(h.f("On the third day, {he} " + win + "!"))
    s.add(s.say(h, s.c("I did it! I really did it!", "Look at me!")))
    s.add(h.f("{His} {elder} clapped {elder_his} hands.", elder=s.elder, elder_his=s.elder_p.his))
    s.moral((
        "practice makes things easier",
        "if you keep trying, you will get better",
        "you should never give up when something is hard",
    ))  # fmt: skip


def _plot_newfriend(s: _Story) -> None:
    h, f = s.hero, s.friend
    s.friend_known = True
    s.add(f.f("{Name} was new in town. {He} did not know anyone."))
    s.go_to_place(with_friend=False)
    s.add(f.f("{Name} was sitting alone. {He} looked sad.", spot=s.c(*_HIDING_SPOTS)))
    s.add(h.f("The other children were playing, and nobody asked {friend} to join.", friend=f.name))
    if h.trait == "shy":
        s.add(h.f("{Name} was shy too, so {he} knew how it felt to be alone."))
    s.add(h.f("{Name} walked over to {friend}.", friend=f.name))
    s.add(s.say(h, s.c("Hello! Do you want to play with me?", "Hi! What is your name?")))
    s.add(f.f('{Name} smiled for the first time that day. "Yes, please!" {he} said.'))
    s.add(s.c(
        f"They decided to {s.c(*s.activities)} together.",
        "They played until it was time to go home.",
    ))  # fmt: skip
    s.add(h.f("Soon {Name} and {friend} were best friends.", friend=f.name))
    s.moral((
        "everyone wants to have a friend",
        "a kind word can make someone's day",
        "it is good to include others who are alone",
    ))  # fmt: skip


def _plot_garden(s: _Story) -> None:
    h = s.hero
    plant = s.c("sunflower", "tomato", "pumpkin", "bean", "rose", "carrot")
    s.add(h.f("{Name} found a tiny seed. {He} planted it in a pot by the window."))
    s.add(s.say(h, s.c(f"I hope it grows into a big {plant}!", "Grow, little seed, grow!")))
    s.add(h.f("Every day {he} gave the seed some water."))
    s.add(h.f("But the next day, nothing happened. And the day after that, nothing happened."))
    s.add(s.say(h, s.c("Why is it not growing?", "When will it grow?")))
    s.add(f'{h.p.his.capitalize()} {s.elder} said, "Good things take time. Be patient."')
    if h.trait in ("lazy",):
        s.add(h.f("Some days {Name} forgot, but then {he} remembered again."))
    s.add(h.f("{Name} kept watering the pot and waited."))
    s.add(h.f("One morning, {he} saw a small green leaf!"))
    s.add(h.f("Weeks later, the plant had grown into a beautiful {plant}.", plant=plant))
    s.add(h.f("{Name} was so happy that {he} danced around the room."))
    s.moral((
        "good things come to those who wait",
        "patience and care help things grow",
        "you must be patient when you want something to grow",
    ))  # fmt: skip


_NOISES = {
    "squeak": (
        "a tiny mouse looking for crumbs",
        "gave the mouse a piece of cheese and carried it outside",
    ),
    "tap": (
        "a tree branch knocking on the window in the wind",
        "tied the branch away from the window",
    ),
    "scratch": (
        "a little raccoon looking for food",
        "opened the back door, and the raccoon ran into the woods",
    ),
    "thump": (
        "the neighbor's cat jumping on some old boxes",
        "gave the cat a bowl of milk and took it home",
    ),
    "drip": ("a leaky pipe dripping into a bucket", "called a plumber to fix the pipe"),
}


def _plot_noise(s: _Story) -> None:
    h = s.hero
    room = s.c("the attic", "the garden shed", "the kitchen", "the closet", "the basement")
    sound = s.c(*_NOISES)
    cause, fix = _NOISES[sound]
    el, ep = s.elder, s.elder_p
    s.add(
        h.f(
            "{time}, {Name} heard a strange noise coming from {room}.", time=s.c(*_TIMES), room=room
        )
    )
    word = sound.capitalize()
    s.add(f"{word}! {word}! {word}!")
    if h.trait in ("shy", "lazy") or s.rng.random() < 0.3:
        s.add(h.f("{Name} was scared. {He} hid under {his} blanket."))
        s.add(s.say(h, s.c("Is it a monster?", "What is that noise?")))
        s.add(h.f("{He} ran to find {his} {el}.", el=el))
    else:
        s.add(h.f("{Name} wanted to find out what it was."))
        s.add(s.say(h, s.c("What is making that noise?", "I will find out what it is!")))
        s.add(h.f("{He} asked {his} {el} to come with {him}.", el=el))
    s.add(
        f'"Let\'s go and look together," said {h.p.his} {el}. {ep.he.capitalize()} took a lantern.'
    )
    s.add(f"They walked slowly to {room}. The noise got louder and louder.")
    s.add(h.f("{Name} opened the door and looked inside."))
    s.add(f"It was {cause}!")
    s.add(s.say(h, s.c("So that was the noise!", f"It was only a {sound}!")))
    s.add(f"{h.name} and {h.p.his} {el} laughed. Then they {fix}.")
    s.moral((
        "things are not so scary once you know what they are",
        "it is good to find out the truth instead of being afraid",
        "when you are scared, you can ask someone to help you",
    ))  # fmt: skip


def _plot_gift(s: _Story) -> None:
    h, f = s.hero, s.friend
    gift, problem = s.c(
        ("a birthday card", "the rain made the paint run"),
        ("a little cake", "the cake fell on the floor and got squashed"),
        ("a paper crown", "the dog chewed one corner of the crown"),
        ("a clay cup", "the cup came out of the oven a bit crooked"),
        ("a drawing of the two of them", "the crayons broke and the sky was only half blue"),
    )  # fmt: skip
    s.add(h.f("Tomorrow was {friend}'s birthday.", friend=f.name))
    s.add(
        h.f(
            "{Name} wanted to give {friend} a special present, but {he} had no money.",
            friend=f.name,
        )
    )
    s.add(h.f("So {he} decided to make {gift}.", gift=gift))
    s.add(h.f("{He} worked on it all afternoon, and it looked beautiful."))
    s.add(f"But then {problem}.")
    s.add(s.say(h, s.c("Oh no! Now it is ruined!", "Now my present is not good enough!")))
    s.add(h.f("{Name} felt so sad that {he} almost did not go to the party."))
    s.add(h.f("But the next day {he} went anyway and gave {friend} the present.", friend=f.name))
    s.add(h.f('"I am sorry, it is not perfect," {he} said quietly.'))
    s.add(f.f('{Name} looked at it and smiled. "I love it! You made it just for me!"'))
    s.add(f.f("{Name} kept it on {his} shelf for a long time."))
    s.moral((
        "the best presents come from the heart",
        "a gift made with love does not have to be perfect",
        "what matters is the thought, not the thing",
    ))  # fmt: skip


def _plot_chores(s: _Story) -> None:
    h, f = s.hero, s.friend
    el, ep = s.elder, s.elder_p
    s.add(h.f("{Name}'s room was very messy. There were toys and clothes everywhere."))
    s.add(f'{h.p.his.capitalize()} {el} said, "Please clean your room today."')
    s.add(s.say(h, s.c("I will do it later!", "But I want to play now!")))
    s.add(h.f("{He} did not clean {his} room. {He} played all day instead."))
    s.add(
        h.f(
            "The next morning, {friend} came to take {him} to {where}.",
            friend=f.name,
            where=s.where,
        )
    )
    s.add(
        h.f("{Name} wanted to bring {his} {obj}, but {he} could not find it anywhere.", obj=s.obj)
    )
    s.add(
        h.f(
            "{He} looked under the bed. {He} looked in the closet. The {obj} was not there.",
            obj=s.obj,
        )
    )
    s.add(s.say(f, s.c("Hurry up, or we will be late!", "Are you ready yet?")))
    s.add(h.f("Because {his} room was so messy, {he} had to stay home and look for it.", obj=s.obj))
    s.add(
        h.f("So {Name} started to clean. {He} put the toys in a box and the clothes in a drawer.")
    )
    s.add(h.f("Under a pile of socks, {he} found the {obj}!", obj=s.obj))
    s.add(f'When the room was clean, {h.p.his} {el} smiled. "Well done," {ep.he} said.')
    s.moral((
        "it is good to keep your things tidy",
        "it is better to do your work first and play later",
        "a clean room makes it easy to find your things",
    ))  # fmt: skip


_PLOTS: tuple[Callable[[_Story], None], ...] = (
    _plot_noise,
    _plot_gift,
    _plot_chores,
    _plot_lost,
    _plot_share,
    _plot_fear,
    _plot_help,
    _plot_honest,
    _plot_weather,
    _plot_race,
    _plot_practice,
    _plot_newfriend,
    _plot_garden,
)


def generate_story(rng: random.Random) -> str:
    """One story of about 100 to 250 words; its last sentence is the moral.

    Args:
        rng: the random source; the same state gives the same story.

    Returns:
        The story as plain text (paragraphs separated by blank lines).
    """
    story = _Story(rng)
    story.intro()
    rng.choice(_PLOTS)(story)
    story.pad(MIN_WORDS)
    return story.text()


def generate_stories(n: int, seed: int) -> list[str]:
    """``n`` stories from ``random.Random(seed)`` (deterministic by seed).

    Args:
        n: number of stories.
        seed: the seed; different seeds give different stories.

    Returns:
        The list of stories.
    """
    rng = random.Random(seed)
    return [generate_story(rng) for _ in range(n)]


def generate_corpus(num_chars: int, seed: int) -> str:
    """Whole stories joined by ``"<|endoftext|>"`` until the text has at least ``num_chars``.

    Args:
        num_chars: minimum length of the result in characters.
        seed: the seed (deterministic by seed).

    Returns:
        The corpus text (no separator after the last story).
    """
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < num_chars:
        story = generate_story(rng)
        parts.append(story)
        total += len(story) + len(EOT)
    return EOT.join(parts)
