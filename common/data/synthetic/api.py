"""Writing stories, with the probability of each under the generator, and the corpus floor."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from common.data.synthetic.draws import Draws
from common.data.synthetic.plots import PLOTS
from common.data.synthetic.story import Story
from common.data.synthetic.words import EOT, MIN_WORDS

DEFAULT_DIFFICULTY = 1.0
"""The difficulty of the embedded corpus unless ``data.synthetic_difficulty`` says otherwise."""


@dataclass(frozen=True)
class WrittenStory:
    """A story and how it was drawn.

    Attributes:
        text: the story (paragraphs separated by blank lines).
        log_prob: natural-log probability of the story under the generator.
        record: the index taken at each draw; :func:`replay_story` rewrites the story from it.
    """

    text: str
    log_prob: float
    record: tuple[int, ...]

    @property
    def bits(self) -> float:
        """``-log2`` of the story's probability: what an ideal model pays for its text."""
        return -self.log_prob / math.log(2)


def _check_difficulty(difficulty: float) -> float:
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be between 0 and 1, got {difficulty}")
    return float(difficulty)


def _write(draws: Draws, difficulty: float) -> str:
    story = Story(draws, _check_difficulty(difficulty))
    story.intro()
    draws.pick(PLOTS)(story)
    story.pad(MIN_WORDS)
    return story.text()


def write_story(rng: random.Random, difficulty: float = DEFAULT_DIFFICULTY) -> WrittenStory:
    """One story drawn from ``rng``, with its log-probability and draw record."""
    draws = Draws(rng=rng)
    text = _write(draws, difficulty)
    return WrittenStory(text, draws.log_prob, tuple(draws.record))


def replay_story(record: Sequence[int], difficulty: float = DEFAULT_DIFFICULTY) -> WrittenStory:
    """The story a draw record writes, its probability recomputed draw by draw.

    Raises:
        ValueError: the record does not describe a whole story at this difficulty.
    """
    draws = Draws(replay=record)
    text = _write(draws, difficulty)
    if len(draws.record) != len(record):
        raise ValueError("the draw record is longer than the story")
    return WrittenStory(text, draws.log_prob, tuple(draws.record))


def generate_story(rng: random.Random, difficulty: float = DEFAULT_DIFFICULTY) -> str:
    """One story; its last sentence is the moral.

    Args:
        rng: the random source; the same state gives the same story.
        difficulty: 0 (plot sentences only) to 1 (the most details between them).

    Returns:
        The story as plain text (paragraphs separated by blank lines).
    """
    return write_story(rng, difficulty).text


def generate_stories(n: int, seed: int, difficulty: float = DEFAULT_DIFFICULTY) -> list[str]:
    """``n`` stories from ``random.Random(seed)`` (deterministic by seed)."""
    rng = random.Random(seed)
    return [generate_story(rng, difficulty) for _ in range(n)]


def generate_corpus(num_chars: int, seed: int, difficulty: float = DEFAULT_DIFFICULTY) -> str:
    """Whole stories joined by ``"<|endoftext|>"`` until the text has at least ``num_chars``.

    Returns:
        The corpus text (no separator after the last story).
    """
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < num_chars:
        story = generate_story(rng, difficulty)
        parts.append(story)
        total += len(story) + len(EOT)
    return EOT.join(parts)


def corpus_floor_bits_per_byte(stories: Iterable[WrittenStory], separator: str = EOT) -> float:
    """The entropy of a story corpus in bits per UTF-8 byte: what a perfect model would score.

    Each story is followed by ``separator`` (as in the token files); the separator's bytes count
    in the denominator and cost no bits, because the generator ends every story after its moral
    (the end of a story is certain once its last sentence is written).
    """
    bits, num_bytes = 0.0, 0
    sep = len(separator.encode("utf-8"))
    for story in stories:
        bits += story.bits
        num_bytes += len(story.text.encode("utf-8")) + sep
    if num_bytes == 0:
        raise ValueError("no stories")
    return bits / num_bytes
