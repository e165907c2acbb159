"""``catalog demo``: one synthetic scanner cycle written through the real API.

The synthetic scorer lives here, apart from the product code. Every run puts a
fresh run id into its prefix, so two demos started in the same second neither
fail nor overwrite each other.
"""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from .store import ArtifactRecord, Catalog
from .writer import AtomicWriter

SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "DOGE-USD", "XRP-USD", "AVAX-USD", "LINK-USD")


def _universe(rng: random.Random) -> list[dict[str, Any]]:
    scored = sorted(((round(rng.uniform(40, 95), 4), s) for s in SYMBOLS), key=lambda p: (-p[0], p[1]))
    return [
        {"symbol": symbol, "score": score, "rank": rank, "decision": "included" if score >= 75 else "excluded"}
        for rank, (score, symbol) in enumerate(scored, start=1)
    ]


def run_demo(catalog: Catalog, seed: int | None = None) -> list[ArtifactRecord]:
    """Write one cycle's artifacts of every type; returns their records."""
    rng = random.Random(seed)
    run = f"demo-{secrets.token_hex(3)}"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    writer = AtomicWriter(catalog=catalog)
    universe = _universe(rng)
    report = {
        "meta": {"timestamp": now, "version": "v3.2.1", "report_type": "full_explainability",
                 "assets_count": len(universe),
                 "included_count": sum(a["decision"] == "included" for a in universe),
                 "excluded_count": sum(a["decision"] == "excluded" for a in universe)},
        "universe": universe,
    }  # fmt: skip
    trades = [["time", "symbol", "side", "quantity", "price", "fee", "order_id"]]
    for n in range(50):
        trades.append([now - timedelta(seconds=60 * n), rng.choice(SYMBOLS), rng.choice(("buy", "sell")),
                       round(rng.uniform(0.01, 5), 4), round(rng.uniform(0.1, 60000), 2), 0.1, f"ord-{n:05d}"])  # fmt: skip
    positions = [{"symbol": s, "quantity": round(rng.uniform(0, 3), 4), "price": round(rng.uniform(1, 60000), 2)}
                 for s in SYMBOLS[:4]]  # fmt: skip
    spans = "".join(
        f'{{"trace_id": "t{n:04d}", "span_id": "s{n:04d}", "parent": null, "name": "fetch", '
        f'"start": "{now:%Y-%m-%dT%H:%M:%SZ}", "duration_ms": {rng.randint(5, 400)}, "status": "ok"}}\n'
        for n in range(20)
    )
    return [
        writer.write_json("explain", run, report, created_at=now),
        writer.write_csv("explain", run, [["symbol", "decision", "score", "rank"]]
                         + [[a["symbol"], a["decision"], a["score"], a["rank"]] for a in universe], created_at=now),
        writer.write_json("ledger", run, {"timestamp": now, "positions": positions, "cash": 10_000.0, "pnl": 0.0},
                          created_at=now),
        writer.write_csv("ledger", run, trades, created_at=now),
        writer.write_json("health", run, {"timestamp": now, "cache_hit_rate": round(rng.random(), 4)}, created_at=now),
        writer.write_bytes("health", run, spans.encode(), "jsonl", created_at=now),
        writer.write_json("config", run, catalog.settings.values(), created_at=now),
    ]  # fmt: skip
