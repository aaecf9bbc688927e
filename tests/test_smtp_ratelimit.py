"""The per-server rate limiter: pure, driven by a given ``now``."""

from __future__ import annotations

import itertools

import pytest

from feedpub.delivery.ratelimit import HOUR, RateLimiter


def test_unlimited_never_waits() -> None:
    r = RateLimiter()
    assert r.unlimited
    assert all(r.try_acquire(0.0) == 0.0 for _ in range(1000))


def test_per_second_paces_sends_evenly() -> None:
    r = RateLimiter(per_second=10)
    assert r.try_acquire(5.0) == 0.0
    assert r.try_acquire(5.0) == pytest.approx(0.1)
    assert r.try_acquire(5.05) == pytest.approx(0.05)
    assert r.try_acquire(5.1) == 0.0
    assert r.wait_time(5.1) == pytest.approx(0.1)


def test_fractional_rate_means_one_send_every_few_seconds() -> None:
    r = RateLimiter(per_second=0.5)
    assert r.try_acquire(0.0) == 0.0
    assert r.try_acquire(1.0) == pytest.approx(1.0)
    assert r.try_acquire(2.0) == 0.0


def test_refused_attempts_are_not_counted() -> None:
    r = RateLimiter(per_hour=2)
    assert r.try_acquire(0.0) == 0.0
    assert r.try_acquire(1.0) == 0.0
    for t in (2.0, 3.0, 4.0):
        assert r.try_acquire(t) == pytest.approx(HOUR - t)
    # The window slides: the first send expires at 3600, the second at 3601.
    assert r.try_acquire(HOUR) == 0.0
    assert r.try_acquire(HOUR) == pytest.approx(1.0)
    assert r.try_acquire(HOUR + 1) == 0.0


def test_any_hour_holds_at_most_the_hourly_limit() -> None:
    r = RateLimiter(per_second=50, per_hour=100)
    sends: list[float] = []
    t = 0.0
    while t < 3 * HOUR:
        wait = r.try_acquire(t)
        if wait == 0.0:
            sends.append(t)
            t += 0.001
        else:
            t += wait
    assert len(sends) == 300
    for i in range(len(sends) - 100):
        assert sends[i + 100] - sends[i] >= HOUR  # the 101st send is an hour after the 1st
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert min(gaps) >= 1 / 50 - 1e-9


@pytest.mark.parametrize("kw", [{"per_second": 0}, {"per_hour": -1}])
def test_rejects_non_positive_rates(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**kw)  # type: ignore[arg-type]


def test_seeded_sends_count_against_the_hour() -> None:
    r = RateLimiter(per_hour=3)
    r.seed([100.0, 2000.0])  # two sends made by an earlier run
    assert r.try_acquire(3000.0) == 0.0
    assert r.try_acquire(3001.0) == pytest.approx(100.0 + HOUR - 3001.0)
    assert r.try_acquire(100.0 + HOUR) == 0.0  # the first seeded send left the window
