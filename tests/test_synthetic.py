"""The embedded story generator: determinism, size, variety, agreement and learnable structure."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import pytest

from common.data.synthetic import (
    EOT,
    MORAL_OPENINGS,
    generate_corpus,
    generate_stories,
    generate_story,
)


@pytest.fixture(scope="module")
def stories() -> list[str]:
    return generate_stories(400, seed=0)


def words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+|[.,!?\"]", text)


def test_same_seed_same_stories_and_different_seeds_differ() -> None:
    assert generate_stories(20, seed=3) == generate_stories(20, seed=3)
    assert generate_story(random.Random(7)) == generate_story(random.Random(7))
    a, b = generate_stories(20, seed=3), generate_stories(20, seed=4)
    assert not set(a) & set(b)
    assert generate_corpus(5000, seed=1) == generate_corpus(5000, seed=1)
    assert generate_corpus(5000, seed=1) != generate_corpus(5000, seed=2)


def test_corpus_has_at_least_the_requested_size_in_whole_stories() -> None:
    for size in (1, 3000, 50_000):
        corpus = generate_corpus(size, seed=0)
        parts = corpus.split(EOT)
        assert len(corpus) >= size
        assert len(corpus) - len(parts[-1]) - len(EOT) < size  # stopped once large enough
        assert parts == generate_stories(len(parts), seed=0)
    assert EOT not in generate_corpus(1, seed=0)


def test_stories_have_100_to_450_words_and_dialogue(stories: list[str]) -> None:
    counts = [len(s.split()) for s in stories]
    assert min(counts) >= 100 and max(counts) <= 450
    assert sum('"' in s for s in stories) / len(stories) > 0.95
    assert all(s == s.strip() and "  " not in s and "{" not in s for s in stories)


def test_every_story_ends_with_a_moral_about_its_hero(stories: list[str]) -> None:
    for story in stories:
        last = story.split("\n\n")[-1]
        name = re.match(
            r"(?:Once upon a time, there was an? \w+ \w+ named |In [^,]+, there lived "
            r"an? \w+ \w+ called |There once was an? \w+ named )?(\w+)",
            story,
        )
        assert name is not None
        hero = name.group(1)
        openings = [o.format(name=hero) for o in MORAL_OPENINGS]
        assert last.startswith(tuple(openings)), last
        assert last.endswith(".") and last.count(".") == 1


def test_vocabulary_and_plots_are_varied(stories: list[str]) -> None:
    vocab = Counter(w.lower() for s in stories for w in words(s) if w.isalpha())
    assert len(vocab) > 700
    assert len({s.split(".")[0] for s in stories}) > 300  # opening sentences
    capitalized = {w for s in stories for w in words(s)[1:] if w[0].isupper()}
    assert len(capitalized) > 100  # names (and sentence openers)
    morals = {s.split("\n\n")[-1].split(" that ")[-1].split(": ")[-1] for s in stories}
    assert len(morals) > 25
    assert len(set(stories)) == len(stories)


def test_pronouns_and_verbs_agree(stories: list[str]) -> None:
    text = "\n".join(stories)
    for wrong in (r"\b[Tt]hey (was|has|is)\b", r"\b([Hh]e|[Ss]he) (were|have|are)\b"):
        assert not re.search(wrong, text), re.search(wrong, text)
    they = [s for s in stories if re.search(r"\bThey were\b", s) and "themselves" not in s]
    assert they  # characters using they/them exist
    assert not re.search(r"\b(an [^aeiouAEIOU\W]|a [aeiou])\w*", text.replace("a one", ""))


def test_people_met_and_things_found_come_back_consistently(stories: list[str]) -> None:
    waves = found_back = 0
    for story in stories:
        for name in re.findall(r"(\w+) waved at \w+ again", story):
            assert story.index(f"met {name} the") < story.index(f"{name} waved at"), story
            waves += 1
        kept = (
            r"(?:looked at the (.+?) in \w+ pocket again|had the (.+?) that|held the (.+?) tight)"
        )
        for match in re.finditer(kept, story):
            thing = next(g for g in match.groups() if g)
            found = re.search(rf"(?:found|discovered|picked up) an? {thing} ", story)
            assert found is not None and found.start() < match.start(), story
            found_back += 1
    assert waves > 20 and found_back > 20


def _cross_entropy_bits(train: list[list[str]], test: list[list[str]], order: int) -> float:
    """Interpolated (order 1 or 2) word model cross-entropy on ``test``, in bits per word."""
    uni: Counter[str] = Counter(w for doc in train for w in doc)
    total = sum(uni.values())
    vocab = len(uni) + 1
    big: Counter[tuple[str, str]] = Counter()
    ctx: Counter[str] = Counter()
    for doc in train:
        for a, b in zip(doc, doc[1:]):
            big[a, b] += 1
            ctx[a] += 1
    bits, n = 0.0, 0
    for doc in test:
        for a, b in zip(doc, doc[1:]):
            p = (uni[b] + 1) / (total + vocab)
            if order == 2 and ctx[a]:
                p = 0.8 * big[a, b] / ctx[a] + 0.2 * p
            bits -= math.log2(p)
            n += 1
    return bits / n


def test_context_predicts_far_better_than_word_frequencies() -> None:
    docs = [words(s) for s in generate_stories(700, seed=1)]
    train, test = docs[:600], docs[600:]
    unigram = _cross_entropy_bits(train, test, order=1)
    bigram = _cross_entropy_bits(train, test, order=2)
    assert unigram > 6.0
    assert bigram < 0.55 * unigram  # strong short-range structure a model can learn
