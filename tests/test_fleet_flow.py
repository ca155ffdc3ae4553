"""The fleet's single-flight, part of the cold-verification flow (``_engine/flow.py``), decided
without Redis.

Each test drives the real flow with the same driver the sync verifier uses (``flow.run``): it
answers each step command the flow yields and records the steps, so the rules (read, lease, wait,
ask Wink, fill before answering, release, announce) are checked where they are written, once for
both twins.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.helpers import FakeClock, config, make_token, profile_json
from wink_middleware import TokenRejected, WinkProfile, WinkUnavailable
from wink_middleware._engine.core import ColdToken, VerifierCore
from wink_middleware._engine.flow import (
    AcquireLease,
    Announce,
    AwaitLease,
    FillShared,
    Post,
    ReadShared,
    ReleaseLease,
    SharedTierDown,
    Sleep,
    Step,
    cold_verification,
    run,
)
from wink_middleware._shared.entry import SharedEntry

PROFILE = WinkProfile.from_wink(profile_json())
NAMES: dict[type, str] = {
    ReadShared: "get",
    AcquireLease: "acquire",
    AwaitLease: "wait",
    Post: "call",
    Sleep: "sleep",
    FillShared: "fill",
    ReleaseLease: "release",
    Announce: "announce",
}


def wink_answers(profile: WinkProfile = PROFILE) -> tuple[int, httpx.Headers, bytes]:
    """What the client module gives back for Wink's 200 with ``profile``."""
    return 200, httpx.Headers(), json.dumps(profile.to_wink()).encode()


def _nothing(_: Any) -> None:
    return None


def fleet_core() -> tuple[VerifierCore, ColdToken]:
    core = VerifierCore(config(), clock=FakeClock(), threads=False)
    core.share(lambda raw: raw[:32].ljust(32, b"\0"), local_ttl=5)
    found = core.lookup(make_token().encode())
    assert isinstance(found, ColdToken)
    return core, found


def drive(answers: dict[str, Callable[[Any], Any]]) -> tuple[Any, list[str]]:
    """Run the fleet flow for one cold token; ``answers`` maps a step's name to what it gives back
    (its argument: the command)."""
    core, found = fleet_core()
    steps: list[str] = []

    def take(step: Step) -> Any:
        name = NAMES[type(step)]
        steps.append(name)
        return (answers.get(name) or _nothing)(step)

    try:
        return run(cold_verification(core, found, fleet=True), take), steps
    except TokenRejected as exc:
        return exc, steps


def entry(kind: str = "pos") -> SharedEntry:
    now = FakeClock().time()
    if kind == "pos":
        return SharedEntry("pos", PROFILE, "", now + 60, now + 60)
    return SharedEntry(kind, None, "the access token was revoked", now + 60, now + 60)  # type: ignore[arg-type]


def test_the_step_commands_are_frozen_values() -> None:
    step = Sleep(1.0)
    with pytest.raises(AttributeError):
        step.seconds = 2.0  # type: ignore[misc]
    assert step == Sleep(1.0) and hash(step) == hash(Sleep(1.0))
    post = Post("https://wink.test/verify", b"{}", None, 1.0)
    assert post == Post("https://wink.test/verify", b"{}", None, 1.0)


def test_a_shared_entry_answers_without_a_lease_or_wink() -> None:
    answer, steps = drive({"get": lambda _: entry()})
    assert answer == PROFILE and steps == ["get"]


def test_the_lease_holder_asks_wink_fills_before_answering_then_releases_and_announces() -> None:
    filled: list[FillShared] = []
    released: list[str] = []
    announced: list[str] = []
    answer, steps = drive(
        {
            "acquire": lambda _: "lease-1",
            "call": lambda _: wink_answers(),
            "fill": lambda step: filled.append(step),
            "release": lambda step: released.append(step.lease),
            "announce": lambda step: announced.append(step.outcome),
        }
    )
    assert answer == PROFILE
    assert steps == ["get", "acquire", "get", "call", "fill", "release", "announce"]
    assert filled[0].entry.kind == "pos" and filled[0].entry.profile == PROFILE
    assert (released, announced) == (["lease-1"], ["fill"])


def test_a_follower_takes_the_holders_entry() -> None:
    waited = iter([entry()])
    answer, steps = drive({"wait": lambda _: next(waited)})
    assert answer == PROFILE and steps == ["get", "acquire", "wait"]


def test_a_follower_whose_holder_failed_asks_wink_itself_without_a_lease() -> None:
    answer, steps = drive({"call": lambda _: wink_answers()})
    assert answer == PROFILE
    assert steps == ["get", "acquire", "wait", "call", "fill"]  # nothing to release


def test_redis_unable_to_coordinate_means_verifying_as_without_the_tier() -> None:
    def down(_: Any) -> None:
        raise SharedTierDown

    answer, steps = drive({"acquire": down, "call": lambda _: wink_answers()})
    assert answer == PROFILE and steps == ["get", "acquire", "call"]  # nothing written


def test_a_revocation_written_during_the_call_wins() -> None:
    answer, steps = drive(
        {
            "acquire": lambda _: "l",
            "call": lambda _: wink_answers(),
            "fill": lambda _: entry("revoked"),
        }
    )
    assert isinstance(answer, TokenRejected) and "revoked" in answer.description
    assert steps[-2:] == ["release", "announce"]


def test_a_transient_failure_is_never_written_and_announced_as_fail() -> None:
    announced: list[str] = []

    def fail(_: Any) -> None:
        raise WinkUnavailable("down")

    with pytest.raises(WinkUnavailable):
        drive(
            {
                "acquire": lambda _: "l",
                "call": fail,
                "announce": lambda step: announced.append(step.outcome),
            }
        )
    assert announced == ["fail"]


def test_a_cancelled_flow_leaves_the_lease_to_its_ttl() -> None:
    core, found = fleet_core()
    flow = cold_verification(core, found, fleet=True)
    assert type(flow.send(None)) is ReadShared
    assert type(flow.send(None)) is AcquireLease
    assert type(flow.send("lease")) is ReadShared
    assert type(flow.send(None)) is Post
    flow.close()  # no RuntimeError: the flow yields nothing more (no release) once closed


def test_the_driver_closes_the_flow_when_a_step_raises_what_the_flow_does_not_handle() -> None:
    core, found = fleet_core()
    flow = cold_verification(core, found, fleet=True)

    def take(step: Step) -> Any:
        if type(step) is AcquireLease:
            return "lease"
        if type(step) is Post:
            raise KeyboardInterrupt  # not an Exception: the driver does not throw it in
        return None

    with pytest.raises(KeyboardInterrupt):
        run(flow, take)
    assert inspect.getgeneratorstate(flow) == "GEN_CLOSED", "its lease is left to the TTL"
