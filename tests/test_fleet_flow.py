"""The fleet's single-flight as a sans-IO flow (``fleet_verification``), decided without Redis.

Each test drives the generator by hand: it answers each step the flow asks for and records the
steps, so the rules (read, lease, wait, ask, fill before answering, release, announce) are checked
where they are written, once for both twins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import FakeClock, config, make_token, profile_json
from wink_middleware import TokenRejected, WinkProfile, WinkUnavailable
from wink_middleware._engine.core import Miss, VerifierCore
from wink_middleware._shared.entry import SharedEntry
from wink_middleware._shared.tier import SharedTierDown, fleet_verification

PROFILE = WinkProfile.from_wink(profile_json())


def _nothing(_: Any) -> None:
    return None


def drive(answers: dict[str, Callable[[Any], Any]]) -> tuple[Any, list[str]]:
    """Run the flow for one cold token; ``answers`` maps a step to what it gives back."""
    core = VerifierCore(config(), clock=FakeClock(), threads=False)
    core.share(lambda raw: raw[:32].ljust(32, b"\0"), local_ttl=5)
    found = core.lookup(make_token().encode())
    assert isinstance(found, Miss)
    flow = fleet_verification(core, found)
    steps: list[str] = []
    result: Any = None
    error: Exception | None = None
    while True:
        try:
            step, argument = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            return done.value, steps
        except TokenRejected as exc:
            return exc, steps
        steps.append(step)
        try:
            respond: Callable[[Any], Any] = answers.get(step) or _nothing
            result, error = respond(argument), None
        except Exception as exc:
            result, error = None, exc


def entry(kind: str = "pos") -> SharedEntry:
    now = FakeClock().time()
    if kind == "pos":
        return SharedEntry("pos", PROFILE, "", now + 60, now + 60)
    return SharedEntry(kind, None, "the access token was revoked", now + 60, now + 60)  # type: ignore[arg-type]


def test_a_shared_entry_answers_without_a_lease_or_wink() -> None:
    answer, steps = drive({"get": lambda _: entry()})
    assert answer == PROFILE and steps == ["get"]


def test_the_lease_holder_asks_wink_fills_before_answering_then_releases_and_announces() -> None:
    answer, steps = drive({"acquire": lambda _: "lease-1", "call": lambda _: PROFILE})
    assert answer == PROFILE
    assert steps == ["get", "acquire", "get", "call", "fill", "release", "announce"]


def test_a_follower_takes_the_holders_entry() -> None:
    waited = iter([entry()])
    answer, steps = drive({"wait": lambda _: next(waited)})
    assert answer == PROFILE and steps == ["get", "acquire", "wait"]


def test_a_follower_whose_holder_failed_asks_wink_itself_without_a_lease() -> None:
    answer, steps = drive({"call": lambda _: PROFILE})
    assert answer == PROFILE
    assert steps == ["get", "acquire", "wait", "call", "fill"]  # nothing to release


def test_redis_unable_to_coordinate_means_verifying_as_without_the_tier() -> None:
    def down(_: Any) -> None:
        raise SharedTierDown

    answer, steps = drive({"acquire": down, "ask": lambda _: PROFILE})
    assert answer == PROFILE and steps == ["get", "acquire", "ask"]


def test_a_revocation_written_during_the_call_wins() -> None:
    answer, steps = drive(
        {"acquire": lambda _: "l", "call": lambda _: PROFILE, "fill": lambda _: entry("revoked")}
    )
    assert isinstance(answer, TokenRejected) and "revoked" in answer.description
    assert steps[-2:] == ["release", "announce"]


def test_a_transient_failure_is_never_written_and_announced_as_fail() -> None:
    announced: list[str] = []

    def fail(_: Any) -> None:
        raise WinkUnavailable("down")

    with pytest.raises(WinkUnavailable):
        drive({"acquire": lambda _: "l", "call": fail, "announce": announced.append})
    assert announced == ["fail"]


def test_a_cancelled_flow_leaves_the_lease_to_its_ttl() -> None:
    core = VerifierCore(config(), clock=FakeClock(), threads=False)
    core.share(lambda raw: raw[:32].ljust(32, b"\0"), local_ttl=5)
    found = core.lookup(make_token().encode())
    assert isinstance(found, Miss)
    flow = fleet_verification(core, found)
    assert flow.send(None)[0] == "get"
    assert flow.send(None)[0] == "acquire"
    assert flow.send("lease")[0] == "get"
    assert flow.send(None)[0] == "call"
    flow.close()  # no RuntimeError: the flow yields nothing more once closed
