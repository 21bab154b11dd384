"""notifications.derive.channels_wanting: the statement written once finds exactly the channels the ORM finds."""

from __future__ import annotations

import pytest

from notifications.derive import channels_wanting
from notifications.models import Channel, Event

pytestmark = pytest.mark.django_db


def _orm(owner_id: int, event: str) -> list[Channel]:
    rows = Channel.objects.filter(owner_id=owner_id, is_enabled=True).exclude(address="")
    return [channel for channel in rows if channel.is_ready and channel.wants(event)]


def test_the_ready_channels_that_want_an_event_in_the_models_order(alice, bob, django_assert_num_queries):
    event = Event.AUTOMATION_ACTED
    wanted = [event.value]
    Channel.objects.create(owner=alice, kind="email", name="b-mail", address="a@example.com", events=wanted)
    Channel.objects.create(owner=alice, kind="email", name="a-mail", address="b@example.com", events=wanted)
    Channel.objects.create(owner=alice, kind="email", name="off", address="c@example.com", events=wanted,
                           is_enabled=False)  # fmt: skip
    Channel.objects.create(owner=alice, kind="email", name="no-address", address="", events=wanted)
    Channel.objects.create(owner=alice, kind="telegram", name="unlinked", address="42", events=wanted)
    Channel.objects.create(owner=alice, kind="email", name="other-events", address="d@example.com", events=[])
    Channel.objects.create(owner=bob, kind="email", name="bobs", address="e@example.com", events=wanted)
    with django_assert_num_queries(1):
        found = channels_wanting(alice.pk, event)
    assert [c.name for c in found] == ["a-mail", "b-mail"]
    columns = [f.attname for f in Channel._meta.concrete_fields]
    assert [[getattr(c, name) for name in columns] for c in found] == [
        [getattr(c, name) for name in columns] for c in _orm(alice.pk, event)
    ]  # every column as the ORM reads it (the JSON list of events, the times)
    assert all(not c._state.adding and c._state.db == "default" for c in found)
    assert channels_wanting(alice.pk, Event.TEST) == _orm(alice.pk, Event.TEST)  # a test reaches every ready one
    assert [c.name for c in channels_wanting(alice.pk, event, [found[1].pk])] == ["b-mail"]
    assert channels_wanting(bob.pk + alice.pk + 1000, event) == []
