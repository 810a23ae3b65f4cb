"""The embedded default corpus: a generator of short children's stories with a known entropy.

Every story has named characters with a pronoun set and a trait, a place, objects, a problem
that follows from the trait or the situation, dialogue in quotes, a resolution that follows from
the problem, and a moral as its last sentence. Pronouns and verbs agree with each character,
objects and creatures are referred to again later, and the moral matches the kind of plot.

Every random choice goes through one counted source (:mod:`.draws`), so the generator knows the
probability of each story it writes and the entropy of a corpus in bits per byte — the score of
a perfect model (:func:`corpus_floor_bits_per_byte`). ``difficulty`` (0 to 1) sets how much
varied detail the stories carry. Files: ``words`` (tables), ``characters``, ``story`` (shared
moves), ``scenery`` (details and varied words), ``plots``, ``api`` (this interface).
"""

from common.data.synthetic.api import (
    DEFAULT_DIFFICULTY,
    WrittenStory,
    corpus_floor_bits_per_byte,
    generate_corpus,
    generate_stories,
    generate_story,
    replay_story,
    write_story,
)
from common.data.synthetic.words import EOT, MIN_WORDS, MORAL_OPENINGS

__all__ = [
    "DEFAULT_DIFFICULTY",
    "EOT",
    "MIN_WORDS",
    "MORAL_OPENINGS",
    "WrittenStory",
    "corpus_floor_bits_per_byte",
    "generate_corpus",
    "generate_stories",
    "generate_story",
    "replay_story",
    "write_story",
]
