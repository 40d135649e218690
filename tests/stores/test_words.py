"""The plural helper the pages and the CLI use (engine/words.py): "1 point", never "1 points"."""

import pytest

from engine.words import plural


@pytest.mark.parametrize(
    "n, word, many, said",
    [
        (1, "point", None, "1 point"),
        (0, "point", None, "0 points"),
        (2, "scored list", None, "2 scored lists"),
        (1_200, "lead", None, "1,200 leads"),
        (1, "entry", "entries", "1 entry"),
        (3, "entry", "entries", "3 entries"),
    ],
)
def test_plural_agrees_in_number(n, word, many, said):
    assert plural(n, word, many) == said
