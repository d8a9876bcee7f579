from datetime import timedelta

import pytest

from chatflow.domain.durations import in_words


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        (timedelta(seconds=7.430446), "7 s"),
        (timedelta(seconds=125), "2 min 5 s"),
        (timedelta(minutes=2), "2 min"),
        (timedelta(hours=3, minutes=20, seconds=9), "3 h 20 min"),
        (timedelta(days=2, hours=4), "2 d 4 h"),
        (timedelta(days=1, seconds=5), "1 d"),
        (timedelta(milliseconds=430), "430 ms"),
        (timedelta(0), "0 ms"),
    ],
)
def test_durations_read_as_words(duration: timedelta, words: str) -> None:
    assert in_words(duration) == words
