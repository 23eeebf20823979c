from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.bus import topics
from engine.bus.topics import TopicError

parts = st.from_regex(r"\A[A-Za-z0-9_\-=^]{1,8}\Z")
any_topic = st.builds(
    lambda domain, kind, keys: topics.build(domain, kind, *keys),
    st.sampled_from(sorted(topics.DOMAINS)),
    parts,
    st.lists(parts, max_size=3),
)


def _delivered(subscribed: str, published: str) -> bool:
    """What ZeroMQ does: a prefix match of the subscription on the topic frame."""
    return topics.to_wire(published).startswith(topics.subscription(subscribed))


@given(any_topic)
def test_parse_when_built_topic_then_round_trips(topic: str) -> None:
    domain, kind, keys = topics.parse(topic)

    assert topics.build(domain, kind, *keys) == topic
    assert topics.from_wire(topics.to_wire(topic)) == topic


@given(any_topic, any_topic)
def test_subscription_when_prefix_then_matches_only_at_dot_boundaries(
    subscribed: str, published: str
) -> None:
    expected = published == subscribed or published.startswith(subscribed + ".")

    assert _delivered(subscribed, published) is expected


@given(any_topic)
def test_subscription_when_empty_then_matches_everything(topic: str) -> None:
    assert _delivered("", topic)


@pytest.mark.parametrize(
    ("subscribed", "published", "delivered"),
    [
        ("md.bar.AA", "md.bar.AAPL.1m", False),
        ("md.bar.AA", "md.bar.AA", True),
        ("md.bar.AA", "md.bar.AA.1m", True),
        ("md.bar", "md.bar.AAPL.1m", True),
        ("md.bar", "md.barX.AAPL", False),
        ("md", "md.quote.AAPL", True),
        ("sys.heartbeat", "sys.heartbeats.feed", False),
    ],
)
def test_subscription_when_key_is_a_string_prefix_then_cut_at_boundary(
    subscribed: str, published: str, delivered: bool
) -> None:
    assert _delivered(subscribed, published) is delivered


@pytest.mark.parametrize(
    ("domain", "kind", "keys"),
    [("nope", "bar", ()), ("md", "", ()), ("md", "bar", ("AA.PL",)), ("md", "bar", ("A B",))],
)
def test_build_when_part_invalid_then_topic_error(
    domain: str, kind: str, keys: tuple[str, ...]
) -> None:
    with pytest.raises(TopicError):
        topics.build(domain, kind, *keys)


@pytest.mark.parametrize("topic", ["", "md", "xx.bar", "md..AAPL", "md.bar.A A"])
def test_parse_when_not_a_topic_then_topic_error(topic: str) -> None:
    with pytest.raises(TopicError):
        topics.parse(topic)


def test_from_wire_when_no_trailing_dot_then_topic_error() -> None:
    with pytest.raises(TopicError):
        topics.from_wire(b"md.bar.AAPL")


def test_builders_when_called_then_system_topics() -> None:
    assert topics.heartbeat("feed") == "sys.heartbeat.feed"
    assert topics.process_state("feed") == "sys.process.feed"
    assert topics.log_level("feed") == "sys.loglevel.feed"
    assert topics.probe("ab12") == "sys.probe.ab12"
    assert _delivered(topics.PROBES, topics.probe("ab12"))
    assert _delivered(topics.HEARTBEATS, topics.heartbeat("feed"))
