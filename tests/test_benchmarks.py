"""The benchmark code runs and counts right (tiny iteration counts; no timing is asserted)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cachetools import FIFOCache
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware

from benchmarks import (
    bench_asgi,
    bench_coalesce,
    bench_memory,
    bench_miss,
    bench_server,
    bench_wsgi,
    bench_wsgi_overhead,
)
from benchmarks._harness import Row, alternate, jwt, percentile
from benchmarks.run import main, render
from wink_middleware._engine import core as _engine
from wink_middleware._engine.cache import MemoryCache

pytestmark = pytest.mark.slow


def test_jwt_of_the_hit_benchmarks_is_about_one_kilobyte() -> None:
    assert 900 <= len(jwt(padding=bench_asgi.TOKEN_PADDING)) <= 1200


def test_alternate_rotates_the_order_and_times_every_round() -> None:
    order: list[str] = []

    def variant(name: str) -> bench_asgi.Variant:
        async def run(n: int) -> float:
            order.append(name)
            return float(n)

        return run

    timings = asyncio.run(alternate({"a": variant("a"), "b": variant("b")}, rounds=2, n=4))
    assert timings == {"a": [1.0, 1.0], "b": [1.0, 1.0]}
    assert order == ["a", "b", "a", "b", "b", "a"]  # warm-up, then rotated rounds


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0


def test_asgi_cache_hit_benchmark_runs_all_three_variants() -> None:
    rows = asyncio.run(bench_asgi.run(rounds=1, n=5))
    assert [row.measure[:3] for row in rows[:3]] == ["(a)", "(b)", "(c)"]
    assert rows[-1].met is not None


def test_hand_written_backend_refuses_an_unknown_token() -> None:
    app = bench_asgi.starlette_app(
        [Middleware(AuthenticationMiddleware, backend=bench_asgi.DictBackend({}))]
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")

    async def get() -> int:
        async with client:
            response = await client.get("/hello", headers={"Authorization": "Bearer abc"})
            return response.status_code

    assert asyncio.run(get()) == 400


def test_one_cold_token_under_1000_concurrent_requests_costs_one_wink_call() -> None:
    flight = asyncio.run(bench_coalesce.fly(1, 1000, latency=0.02))
    assert flight.requests == 1000
    assert flight.all_ok
    assert flight.wink_calls == 1
    assert flight.coalesced == 999


def test_100_cold_tokens_times_10_concurrent_requests_cost_100_wink_calls() -> None:
    flight = asyncio.run(bench_coalesce.fly(100, 10, latency=0.02))
    assert flight.requests == 1000
    assert flight.all_ok
    assert flight.wink_calls == 100


def test_coalescing_rows_report_the_goal_met() -> None:
    rows = asyncio.run(bench_coalesce.run())
    assert [row.goal for row in rows] == ["= 1", "= 100"]
    assert all(row.met for row in rows)


def test_miss_benchmark_subtracts_the_emulator_time() -> None:
    rows = asyncio.run(bench_miss.run(n=3))
    assert rows[-1].measure == "cold request minus emulator time"
    assert rows[-1].met is not None


def test_memory_fill_caches_every_profile() -> None:
    result = asyncio.run(bench_memory.fill(250))
    assert result["profiles"] == 250
    assert isinstance(result["rss_growth"], int)


def test_cache_never_holds_more_than_cache_size_and_evicts_lru_first() -> None:
    result = asyncio.run(bench_memory.bound(cache_size=10, tokens=40))
    assert result["largest"] == 10
    assert result["final"] == 10
    assert result["lru"] is True


class _FifoCache(MemoryCache):
    """A cache that evicts the first inserted entry, read or not: what the LRU check must catch."""

    def __init__(self, maxsize: int, timer: Callable[[], float]) -> None:
        super().__init__(maxsize, timer)
        self._data = FIFOCache(maxsize)  # type: ignore[assignment]


def test_the_lru_check_fails_for_a_fifo_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_engine, "MemoryCache", _FifoCache)
    result = asyncio.run(bench_memory.bound(cache_size=10, tokens=40))
    assert result["largest"] == 10
    assert result["lru"] is False


def test_memory_benchmark_runs_in_a_fresh_process() -> None:
    rows = bench_memory.run(profiles=200, cache_size=5, tokens=12)
    assert rows[1].measure == "RSS growth for 100,000 (projected)"
    assert rows[2].met is True


def test_server_apps_answer_200_with_the_token_behind_each_middleware() -> None:
    token = jwt(padding=bench_asgi.TOKEN_PADDING)
    for factory in ("bare", "handwritten", "wrapped"):
        with bench_server.serve(factory, token) as server:
            response = httpx.get(
                server.url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
            )
            assert response.status_code == 200
            assert response.text == "hello"
            assert server.cpu_seconds() > 0


def test_server_benchmark_skips_without_wrk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_server, "ensure_wrk", lambda: None)
    rows = bench_server.run(rounds=1, seconds=1)
    assert [row.measure for row in rows] == ["skipped"]


def test_the_command_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rows.json"
    assert main(["--quick", "--only", "coalesce", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1,000 concurrent requests, 1 cold token" in printed
    assert "[= 1: ok]" in printed
    assert [row["verdict"] for row in json.loads(out.read_text())] == ["ok", "ok"]


def test_markdown_table_names_each_section_once() -> None:
    rows = [
        Row("S", "m1", "1"),
        Row("S", "m2", "2", "≤ 3", True),
        Row("T", "m3", "3", "≥ 4", False),
    ]
    table = render(rows, markdown=True).splitlines()
    assert table[2] == "| S | m1 | 1 |  |  |"
    assert table[3] == "|  | m2 | 2 | ≤ 3 | ok |"
    assert table[4] == "| T | m3 | 3 | ≥ 4 | not yet |"


def test_wsgi_overhead_benchmark_runs_all_three_variants() -> None:
    rows = bench_wsgi_overhead.run(rounds=1, n=5)
    assert [row.measure[:3] for row in rows[:3]] == ["(a)", "(b)", "(c)"]
    assert rows[-1].met is not None


def test_hand_written_wsgi_middleware_refuses_an_unknown_token() -> None:
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)

    body = bench_wsgi_overhead.DictAuth(bench_wsgi.hello, {})(
        {"HTTP_AUTHORIZATION": "Bearer abc"}, start_response
    )
    assert list(body) == [b""]
    assert statuses == ["401 Unauthorized"]
