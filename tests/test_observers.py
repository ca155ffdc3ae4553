"""The event vocabulary and ObserverSet: observers are called in order and never break a request."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from tests.helpers import BASE_URL, CLIENT_ID, CLIENT_SECRET
from wink_middleware import WinkConfig
from wink_middleware._events import (
    BREAKER,
    CACHE,
    CACHE_EVENTS,
    INTEGRITY_FAILURE,
    INVALIDATION,
    REDIS_OP,
    REQUEST,
    REQUEST_EVENTS,
    SINGLEFLIGHT,
    STALE_SERVED,
    WINK_CALL,
    Observer,
    ObserverSet,
    WinkEvent,
)


class Recorder:
    def __init__(self) -> None:
        self.events: list[WinkEvent] = []
        self.bound: list[WinkConfig] = []

    def on_event(self, event: WinkEvent) -> None:
        self.events.append(event)

    def bind(self, config: WinkConfig) -> None:
        self.bound.append(config)


class Exploding:
    def on_event(self, event: WinkEvent) -> None:
        raise RuntimeError(f"boom with {event.outcome}")


def test_event_names_are_stable_strings() -> None:
    assert [
        REQUEST,
        CACHE,
        WINK_CALL,
        SINGLEFLIGHT,
        STALE_SERVED,
        BREAKER,
        INVALIDATION,
        INTEGRITY_FAILURE,
        REDIS_OP,
    ] == [
        "request",
        "cache",
        "wink_call",
        "singleflight",
        "stale_served",
        "breaker",
        "invalidation",
        "integrity_failure",
        "redis_op",
    ]


def test_event_is_a_frozen_slotted_dataclass_with_optional_fields() -> None:
    event = WinkEvent(REQUEST)
    assert (event.outcome, event.tier, event.duration_s, event.error_type, event.status_code) == (
        None,
        None,
        None,
        None,
        None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.outcome = "authenticated"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert WinkEvent(CACHE, outcome="hit", tier="local") == WinkEvent(CACHE, "hit", "local")


def test_an_object_with_on_event_is_an_observer() -> None:
    assert isinstance(Recorder(), Observer)
    assert not isinstance(object(), Observer)


def test_an_empty_set_is_false_so_the_engine_can_skip_building_events() -> None:
    assert not ObserverSet()
    assert not ObserverSet([])
    assert ObserverSet([Recorder()])
    assert len(ObserverSet([Recorder(), Recorder()])) == 2


def test_emit_calls_every_observer_in_order() -> None:
    calls: list[str] = []

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def on_event(self, event: WinkEvent) -> None:
            calls.append(f"{self.name}:{event.name}")

    observers = ObserverSet([Named("a"), Named("b")])
    observers.emit(WinkEvent(REQUEST, outcome="authenticated"))
    observers.emit(WinkEvent(STALE_SERVED))
    assert calls == ["a:request", "b:request", "a:stale_served", "b:stale_served"]


def test_an_observer_that_raises_is_swallowed_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    observers = ObserverSet([Exploding(), recorder])
    with caplog.at_level(logging.WARNING, logger="wink_middleware"):
        for _ in range(3):
            observers.emit(WinkEvent(REQUEST, outcome="secret-looking-outcome"))
    assert len(recorder.events) == 3
    records = [r for r in caplog.records if r.name == "wink_middleware"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    message = records[0].getMessage()
    assert "Exploding" in message
    assert "RuntimeError" in message
    assert "boom" not in message
    assert "secret-looking-outcome" not in message


def test_each_failing_observer_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    observers = ObserverSet([Exploding(), Exploding()])
    with caplog.at_level(logging.WARNING, logger="wink_middleware"):
        observers.emit(WinkEvent(REQUEST))
        observers.emit(WinkEvent(REQUEST))
    assert len([r for r in caplog.records if r.name == "wink_middleware"]) == 2


def test_bind_reaches_observers_that_have_it() -> None:
    config = WinkConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=BASE_URL)
    recorder = Recorder()

    class NoBind:
        def on_event(self, event: WinkEvent) -> None:
            pass

    ObserverSet([recorder, NoBind()]).bind(config)
    assert recorder.bound == [config]


def test_prebuilt_events_cover_the_request_and_cache_vocabularies() -> None:
    assert REQUEST_EVENTS["authenticated"] == WinkEvent(REQUEST, outcome="authenticated")
    assert len(REQUEST_EVENTS) == 9
    assert CACHE_EVENTS["local", "hit"] == WinkEvent(CACHE, outcome="hit", tier="local")
    assert CACHE_EVENTS["shared", "error"] == WinkEvent(CACHE, outcome="error", tier="shared")
    assert len(CACHE_EVENTS) == 10
    with pytest.raises(TypeError):
        REQUEST_EVENTS["x"] = WinkEvent(REQUEST)  # type: ignore[index]
