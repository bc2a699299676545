"""The metrics collector does not depend on the order of its callbacks within a bucket.

The reference engine reports events in time order; the batched engine reports them grouped by
user steps. Both must give bit-identical metric rows, headline figures and per-user totals:
the collector orders a bucket's watches and surveys by (time, user) before summing them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsim.metrics import MetricsCollector, canonical_order

N_USERS, N_TOPICS, N_ITEMS = 9, 6, 60
BUCKETS = [(0.0, 43200.0), (43200.0, 86400.0), (86400.0, 129600.0), (129600.0, 172800.0)]
TOPICS = np.maximum(np.random.default_rng(0).normal(size=(N_ITEMS, N_TOPICS)), 0.0)


def _events(seed: int = 1):
    """Per bucket: sessions, clicks, watches and surveys of every user, each user's in
    chronological order. Times are on a one-minute grid, so events of different users often
    share a time (ties, broken by user id); a few watches are of items given by topic vector
    (``on_watch``) instead of by id."""
    g = np.random.default_rng(seed)
    buckets = []
    for start, end in BUCKETS:
        sessions, watches, surveys = [], [], []
        n_clicks = 0
        for u in range(N_USERS - 1):  # the last user is never active
            t = start + 60.0 * float(g.integers(0, 60))
            for _ in range(int(g.integers(0, 4))):
                sessions.append((t, u))
                for _ in range(int(g.integers(1, 7))):
                    n_clicks += 1
                    t += 60.0 * float(g.integers(1, 4))  # strictly later for the same user
                    if t >= end:
                        break
                    tau, value, e = float(g.exponential(200)), float(g.normal()), float(g.random())
                    if g.random() < 0.1:
                        watches.append((u, t, tau, value, e, None, g.normal(size=N_TOPICS)))
                    else:
                        watches.append((u, t, tau, value, e, int(g.integers(N_ITEMS)), None))
                t += 60.0
                if t < end and g.random() < 0.6:
                    surveys.append((t, u, float(g.integers(1, 6))))
                t += 60.0 * float(g.integers(1, 60))
                if t >= end:
                    break
        buckets.append((sessions, n_clicks, watches, surveys))
    return buckets


def _in_time_order(bucket):
    sessions, n_clicks, watches, surveys = bucket
    return (
        sorted(sessions),
        n_clicks,
        sorted(watches, key=lambda w: (w[1], w[0])),
        sorted(surveys, key=lambda s: (s[0], s[1])),
    )


def _feed_scalar(m: MetricsCollector, bucket) -> None:
    sessions, n_clicks, watches, surveys = bucket
    for _, u in sessions:
        m.on_session(u)
    for _ in range(n_clicks):
        m.on_click()
    for u, t, tau, value, e, item, topics in watches:
        if item is None:
            m.on_watch(u, t, tau, value, e, topics)
        else:
            m.on_watch_item(u, t, tau, value, e, item)
    for t, u, score in surveys:
        m.on_survey(t, u, score)


def _run(buckets, feed=_feed_scalar, read_midway: bool = False) -> MetricsCollector:
    m = MetricsCollector(N_USERS, N_TOPICS, 0.4, TOPICS)
    for (start, end), bucket in zip(BUCKETS, buckets):
        feed(m, bucket)
        if read_midway:  # reading the per-user totals mid-run must not change anything
            m.user_watch, m.user_value, m.user_ext  # noqa: B018
        m.close_bucket(start, end)
    return m


def _bits(x) -> bytes:
    return np.asarray(x, dtype=float).tobytes()


def _assert_same(a: MetricsCollector, b: MetricsCollector) -> None:
    assert [r[:4] for r in a.rows] == [r[:4] for r in b.rows]
    for ra, rb in zip(a.rows, b.rows):
        assert _bits(ra[4]) == _bits(rb[4]), (ra, rb)  # bit for bit, NaN included
    ha, hb = a.headline(BUCKETS[-1][1]), b.headline(BUCKETS[-1][1])
    assert ha.keys() == hb.keys()
    for name in ha:
        assert _bits(ha[name]) == _bits(hb[name]), name
    for name in ("user_watch", "user_value", "user_ext", "all_tau", "all_value"):
        assert _bits(getattr(a, name)) == _bits(getattr(b, name)), name
    np.testing.assert_array_equal(a.user_sessions, b.user_sessions)
    assert _bits(a.all_surveys) == _bits(b.all_surveys)
    assert a.total == b.total


@pytest.fixture(scope="module")
def buckets():
    return _events()


def test_the_events_exercise_every_metric(buckets):
    m = _run([_in_time_order(b) for b in buckets])
    rows = {}
    for name, _, _, _, value in m.rows:
        rows.setdefault(name, []).append(value)
    for name in ("watch_minutes_per_user_day", "topic_entropy", "watch_value_correlation", "survey_mean", "active_users"):
        assert sum(not math.isnan(v) and v != 0 for v in rows[name]) >= 3, name
    assert any(w[5] is None for b in buckets for w in b[2])  # on_watch with a topic vector
    # ties between users are there, and sorted by user
    times = [w[1] for b in buckets for w in b[2]]
    assert len(set(times)) < len(times)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shuffled_callbacks_give_identical_rows_headline_and_totals(buckets, seed):
    ordered = _run([_in_time_order(b) for b in buckets])
    g = np.random.default_rng(seed)
    shuffled = []
    for sessions, n_clicks, watches, surveys in buckets:
        shuffled.append(
            (
                [sessions[i] for i in g.permutation(len(sessions))],
                n_clicks,
                [watches[i] for i in g.permutation(len(watches))],
                [surveys[i] for i in g.permutation(len(surveys))],
            )
        )
    _assert_same(ordered, _run(shuffled))


def test_user_major_order_as_the_batched_engine_reports(buckets):
    """Each user's events in chronological order, one user after the other (by user steps)."""
    ordered = _run([_in_time_order(b) for b in buckets])
    by_user = [
        (
            sorted(s, key=lambda x: (x[1], x[0])),
            c,
            sorted(w, key=lambda x: (-x[0], x[1])),  # users in reverse, each chronological
            sorted(v, key=lambda x: (-x[1], x[0])),
        )
        for s, c, w, v in buckets
    ]
    _assert_same(ordered, _run(by_user))


def test_reading_totals_mid_run_changes_nothing(buckets):
    ordered = [_in_time_order(b) for b in buckets]
    _assert_same(_run(ordered), _run(ordered, read_midway=True))


def test_time_order_sums_are_running_sums(buckets):
    """In time order the sort is the identity: the flows are the running sums (+=)."""
    for bucket, (start, end) in zip(buckets, BUCKETS):
        bucket = _in_time_order(bucket)
        m = MetricsCollector(N_USERS, N_TOPICS, 0.4, TOPICS)
        _feed_scalar(m, bucket)
        m.close_bucket(start, end)
        total = value = 0.0
        user_watch = [0.0] * N_USERS
        for u, _, tau, v, _, _, _ in bucket[2]:
            total += tau
            value += v
            user_watch[u] += tau
        rows = {name: x for name, _, _, _, x in m.rows}
        days = N_USERS * (end - start) / 86400.0
        assert rows["watch_minutes_per_user_day"] == total / 60.0 / days
        assert rows["value_per_user_day"] == value / days
        assert m.user_watch.tolist() == user_watch
        scores = [s for _, _, s in bucket[3]]
        assert m.all_surveys == scores


def _feed_vectorized(m: MetricsCollector, bucket, chunks: int = 3) -> None:
    """The same events through the array callbacks, user-major, in a few calls each."""
    sessions, n_clicks, watches, surveys = bucket
    users = np.array([u for _, u in sessions], dtype=np.int64)
    for part in np.array_split(users[np.argsort(-users, kind="stable")], chunks):
        m.on_sessions(part)
    m.on_clicks(n_clicks - n_clicks // 2)
    m.on_clicks(n_clicks // 2)
    by_item = [w for w in sorted(watches, key=lambda x: (-x[0], x[1])) if w[5] is not None]
    by_topics = [w for w in watches if w[5] is None]
    for part in np.array_split(np.arange(len(by_item)), chunks):
        ws = [by_item[i] for i in part]
        m.on_watches(
            np.array([w[0] for w in ws], dtype=np.int64),
            np.array([w[1] for w in ws]),
            np.array([w[2] for w in ws]),
            np.array([w[3] for w in ws]),
            np.array([w[4] for w in ws]),
            np.array([w[5] for w in ws], dtype=np.int64),
        )
    for u, t, tau, value, e, _, topics in by_topics:  # scalar and array callbacks mix
        m.on_watch(u, t, tau, value, e, topics)
    sv = sorted(surveys, key=lambda x: (-x[1], x[0]))
    m.on_surveys(np.array([s[0] for s in sv]), np.array([s[1] for s in sv]), np.array([s[2] for s in sv]))


def test_vectorized_callbacks_equal_scalar_ones(buckets):
    scalar = _run([_in_time_order(b) for b in buckets])
    _assert_same(scalar, _run(buckets, feed=_feed_vectorized))
    _assert_same(scalar, _run(buckets, feed=lambda m, b: _feed_vectorized(m, b, chunks=1)))


def test_active_users_count_scalar_and_array_sessions_once():
    m = MetricsCollector(5, 2, 0.4, np.ones((3, 2)))
    m.on_session(1)
    m.on_session(3)
    m.on_sessions(np.array([3, 4, 4]))
    m.on_sessions(np.array([], dtype=np.int64))
    m.close_bucket(0.0, 86400.0)
    rows = {name: value for name, _, _, _, value in m.rows}
    assert rows["active_users"] == 3.0
    assert rows["sessions_per_user_day"] == 5 / 5
    m.on_sessions(np.array([0]))
    m.close_bucket(86400.0, 2 * 86400.0)
    assert [r for r in m.rows if r[0] == "active_users"][-1] == ("active_users", "flow", 86400.0, 2 * 86400.0, 1.0)
    np.testing.assert_array_equal(m.user_sessions, [1, 1, 0, 2, 2])


def test_vectorized_callbacks_check_their_arrays():
    m = MetricsCollector(3, 2, 0.4, np.ones((3, 2)))
    with pytest.raises(ValueError, match="one length"):
        m.on_watches(np.array([0, 1]), np.array([1.0]), np.ones(2), np.ones(2), np.ones(2), np.array([0, 1]))
    with pytest.raises(ValueError, match="one length"):
        m.on_surveys(np.array([1.0]), np.array([0, 1]), np.array([3.0]))
    m.on_watches(*(np.empty(0),) * 6)  # nothing to add is fine


def test_canonical_order():
    times = np.array([3.0, 1.0, 1.0, 2.0, 1.0])
    users = np.array([0, 5, 2, 1, 2])
    order = canonical_order(times, users)
    assert order.tolist() == [2, 4, 1, 3, 0]  # (1,2) twice in given order, (1,5), (2,1), (3,0)
    assert canonical_order(np.sort(times), np.zeros(5, dtype=np.int64)) is None
    assert canonical_order(np.array([1.0, 1.0]), np.array([0, 1])) is None
    assert canonical_order(np.array([1.0, 1.0]), np.array([1, 0])).tolist() == [1, 0]
    assert canonical_order(np.empty(0), np.empty(0, dtype=np.int64)) is None
