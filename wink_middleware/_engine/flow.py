"""One cold verification as a sans-IO flow: the order of every step after a miss, written once.

:func:`cold_verification` is a generator. It yields *step commands* (frozen dataclasses below) and
takes each step's result back, or, thrown in, the exception the step raised; what it returns is the
answer. It decides everything (retries and their backoff, the breaker, what to cache, the fleet's
lease protocol) through :class:`~wink_middleware._engine.core.VerifierCore`; the async and sync
verifiers only carry the steps out (an HTTP attempt, a sleep, a Redis command) and must close the
flow when they stop driving it (``finally: flow.close()``), so that a cancelled verification runs
the flow's cleanup at once rather than when the generator is collected.

Without the shared tier the flow is: attempt (:class:`Post`) -> judge -> on a transient failure,
:class:`Sleep` and attempt again within the retry plan -> remember the outcome. With it, that call
sits inside the fleet's single-flight: read the fleet's entry, take the token's lease (or wait for
its holder's answer), ask Wink, write the entry before answering, release, announce.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from wink_middleware._engine.core import ColdToken, Exchange, VerifierCore, VerifyCall
from wink_middleware._events import SINGLEFLIGHT
from wink_middleware._exceptions import (
    AuthenticationFailed,
    TokenRejected,
    WinkError,
    WinkUnavailable,
)
from wink_middleware._profile import WinkProfile
from wink_middleware._shared.entry import SharedEntry

__all__ = [
    "AcquireLease",
    "Announce",
    "AwaitLease",
    "FillShared",
    "Post",
    "ReadShared",
    "ReleaseLease",
    "SharedTierDown",
    "Sleep",
    "Step",
    "cold_verification",
    "run",
    "wink_exchange",
]


class SharedTierDown(Exception):
    """A Redis command failed, timed out or was skipped by the tier's breaker (never escapes)."""


# -- the step commands ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Post:
    """One attempt at Wink: POST ``body`` to ``url`` (with ``headers``; ``None``: Verify Client's)
    within ``timeout`` seconds.

    Result: ``(status, headers, body)`` as the client module's ``post`` functions return it. An I/O
    failure is thrown in as the :class:`WinkError` the client module translated it to.
    """

    url: str
    body: bytes
    headers: dict[str, str] | None
    timeout: float


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next attempt (the retry backoff). Result: ``None``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class ReadShared:
    """Read the fleet's entry for the token. Result: a :class:`SharedEntry` or ``None``."""


@dataclass(frozen=True, slots=True)
class AcquireLease:
    """Take the token's lease. Result: its value if won, ``None`` if another process holds it;
    :class:`SharedTierDown` thrown in when Redis cannot say."""


@dataclass(frozen=True, slots=True)
class AwaitLease:
    """Wait for the lease holder's answer. Result: the entry it wrote, or ``None``."""


@dataclass(frozen=True, slots=True)
class FillShared:
    """Write ``entry`` unless one is there. Result: the entry that was there, or ``None``."""

    entry: SharedEntry


@dataclass(frozen=True, slots=True)
class ReleaseLease:
    """Give the lease (its value) back. Result: ``None``."""

    lease: str


@dataclass(frozen=True, slots=True)
class Announce:
    """Wake the followers: ``outcome`` is ``"fill"`` (an entry is there) or ``"fail"``."""

    outcome: str


Step = Post | Sleep | ReadShared | AcquireLease | AwaitLease | FillShared | ReleaseLease | Announce
Flow = Generator[Step, Any, WinkProfile]

READ_SHARED = ReadShared()
ACQUIRE_LEASE = AcquireLease()
AWAIT_LEASE = AwaitLease()


# -- the flow -------------------------------------------------------------------------------------


def cold_verification(core: VerifierCore, miss: ColdToken, *, fleet: bool = False) -> Flow:
    """The flow of one cold token: asked of Wink by this process, or (``fleet``) through the shared
    tier's single-flight."""
    if fleet:
        return (yield from _fleet(core, miss))
    return (yield from _ask_wink(core, miss))


T = TypeVar("T")


def run(flow: Generator[Step, Any, T], take: Callable[[Step], Any]) -> T:
    """Drive ``flow`` with blocking I/O: ``take(step)`` carries out each step; its result, or the
    exception it raised, goes back in. The flow is closed however this ends (the async twin drives
    the same way, awaiting each step)."""
    result: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                step = flow.send(result) if error is None else flow.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                result, error = take(step), None
            except Exception as exc:
                result, error = None, exc
    finally:
        flow.close()


def wink_exchange(core: VerifierCore, exchange: Exchange) -> Generator[Step, Any, Any]:
    """One conversation with Wink (a verification, a session): attempts within the retry plan's
    deadline, guarded by the breaker; ``exchange`` judges each answer.

    Returns what the exchange makes of Wink's answer, or raises the :class:`AuthenticationFailed` of
    the last attempt.
    """
    plan = core.retry_plan()
    while True:
        started = exchange.begin()
        try:
            status, headers, content = yield Post(
                exchange.url, exchange.body, exchange.headers, plan.attempt_timeout()
            )
        except WinkError as failure:
            error = exchange.io_failed(failure, started)
        else:
            try:
                return exchange.judge(status, headers, content, started)
            except WinkUnavailable as exc:
                error = exc
        delay = plan.next_delay()
        if delay is None:
            raise error
        yield Sleep(delay)


def _call(core: VerifierCore, miss: ColdToken) -> Flow:
    """Ask Wink about a cold token: the profile, or the last attempt's :class:`AuthenticationFailed`."""
    profile: WinkProfile = yield from wink_exchange(core, VerifyCall(core, miss))
    return profile


def _ask_wink(core: VerifierCore, miss: ColdToken) -> Flow:
    """Verify as without the shared tier: ask Wink, then remember the outcome in this process."""
    try:
        profile = yield from _call(core, miss)
    except AuthenticationFailed as error:
        return core.failed(miss, error)
    return core.succeeded(miss, profile)


def _fleet(core: VerifierCore, miss: ColdToken) -> Flow:
    """The fleet's single-flight: the fleet's entry, else one process (the lease holder) asks
    Wink and writes the entry before it answers; the others wait for it."""
    entry = yield READ_SHARED
    if entry is not None and (profile := core.from_shared(miss, entry)) is not None:
        return profile
    core.stats.add("shared_misses")
    try:
        lease = yield ACQUIRE_LEASE
    except SharedTierDown:
        # Redis cannot coordinate: verify as without the tier.
        return (yield from _ask_wink(core, miss))
    if lease is None:
        core.stats.add("leases_waited")
        core.event(SINGLEFLIGHT, "follower", "fleet")
        entry = yield AWAIT_LEASE
        if entry is not None and (profile := core.from_shared(miss, entry)) is not None:
            return profile
    else:
        core.stats.add("leases_won")
        core.event(SINGLEFLIGHT, "leader", "fleet")
        # Another process may have filled the entry between our read and our lease.
        entry = yield READ_SHARED
        if entry is not None and (profile := core.from_shared(miss, entry)) is not None:
            yield ReleaseLease(lease)
            return profile
    outcome = "fail"
    closing = False
    try:
        try:
            profile = yield from _call(core, miss)
        except TokenRejected as error:
            outcome = "fill"
            shared = core.shared_rejection(error)
            if shared is not None:
                yield FillShared(shared)
            return core.failed(miss, error)
        except AuthenticationFailed as error:
            return core.failed(miss, error)
        shared = core.shared_positive(miss, profile)
        if shared is not None:
            existing = yield FillShared(shared)
            if existing is not None and existing.kind == "revoked":
                # Revoked while we asked Wink: the revocation wins, here too.
                core.install(miss.key, existing)
                raise TokenRejected(existing.description)
        outcome = "fill"
        return core.succeeded(miss, profile)
    except GeneratorExit:
        closing = True  # the driver stopped (cancelled): the lease ends by its TTL
        raise
    finally:
        if lease is not None and not closing:
            yield ReleaseLease(lease)
            yield Announce(outcome)
