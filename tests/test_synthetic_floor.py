"""The generator knows each story's probability: the corpus floor, its checks, the difficulty."""

from __future__ import annotations

import math
import random

import pytest

from common.data.synthetic import (
    EOT,
    corpus_floor_bits_per_byte,
    generate_stories,
    replay_story,
    write_story,
)


def test_floor_is_the_mean_story_bits_recomputed_draw_by_draw_from_each_record() -> None:
    rng = random.Random(5)
    stories = [write_story(rng, 0.6) for _ in range(25)]
    bits, num_bytes = 0.0, 0
    for story in stories:
        again = replay_story(story.record, 0.6)  # no random generator: the record alone
        assert again.text == story.text
        assert again.log_prob == pytest.approx(story.log_prob, abs=1e-9)
        assert story.log_prob < 0
        bits += -again.log_prob / math.log(2)
        num_bytes += len(story.text.encode("utf-8")) + len(EOT)
    assert corpus_floor_bits_per_byte(stories) == pytest.approx(bits / num_bytes, rel=1e-12)


def test_every_draw_shows_in_the_text() -> None:
    """Changing any one draw of a record either makes no valid story or a different text, so the
    draw record can be read back from the text and its probability is the text's."""
    rng = random.Random(11)
    for difficulty in (0.0, 0.5, 1.0):
        for _ in range(4):
            story = write_story(rng, difficulty)
            for i, taken in enumerate(story.record):
                for other in (0, 1, 2, taken + 1):
                    if other == taken:
                        continue
                    record = list(story.record)
                    record[i] = other
                    try:
                        changed = replay_story(record, difficulty)
                    except (ValueError, IndexError):
                        continue  # not a record of any story
                    assert changed.text != story.text, (difficulty, i, taken, other)


def test_same_seed_same_stories_and_records() -> None:
    a = [write_story(random.Random(3)) for _ in range(2)]
    assert a[0] == a[1]
    assert generate_stories(10, seed=4, difficulty=0.3) == generate_stories(10, 4, 0.3)
    assert generate_stories(10, seed=4, difficulty=0.3) != generate_stories(10, 4, 0.7)


def _floor(seed: int, difficulty: float, n: int = 300) -> tuple[float, float]:
    """The floor of ``n`` stories and its standard error (ratio estimator)."""
    rng = random.Random(seed)
    stories = [write_story(rng, difficulty) for _ in range(n)]
    bits = [s.bits for s in stories]
    sizes = [len(s.text.encode("utf-8")) + len(EOT) for s in stories]
    floor = sum(bits) / sum(sizes)
    mean_size = sum(sizes) / n
    residual = [b - floor * z for b, z in zip(bits, sizes)]
    var = sum(r * r for r in residual) / (n - 1)
    return floor, math.sqrt(var / n) / mean_size


def test_another_seed_gives_the_same_floor_within_noise() -> None:
    (a, se_a), (b, se_b) = _floor(1, 1.0), _floor(2, 1.0)
    assert abs(a - b) < 4 * math.hypot(se_a, se_b)
    assert se_a < 0.02 * a  # the estimate is tight at this size


def test_difficulty_raises_the_floor_monotonically() -> None:
    floors = [_floor(7, d, 200)[0] for d in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert floors == sorted(floors) and len(set(floors)) == len(floors), floors
    assert floors[-1] > 1.5 * floors[0]


def test_difficulty_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        write_story(random.Random(0), 1.5)
    with pytest.raises(ValueError):
        replay_story([0, 0, 0])  # ends before the story does
