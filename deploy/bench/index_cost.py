#!/usr/bin/env python3
"""What each part of the SQLite access log costs per record (docs/performance.md).

Builds the log's schema from migrations/sqlite, fills it with PREFILL records
(facilities and patients drawn at random, as in a disaster's traffic), then times
appending RECORDS more in transactions of BATCH records, WAL mode and
synchronous=FULL as the gateway runs it, once per variant:

  all          every index, the WAL checkpointed in the commits (SQLite's default)
  -<index>     the same without that index
  -facility,-patient, none
               without the two indexes filled at random, and without any
  no-checkpoint
               every index, the WAL never checkpointed: what the checkpoints cost
  multi-row, multi-row or rollback
               one multi-row INSERT per batch, as the gateway sends it, plain and
               as INSERT OR ROLLBACK (which spares SQLite its statement journal)

Python's sqlite3 binds each row itself, so absolute figures sit a few µs above the
gateway's; the differences between variants are what it measures.

Usage: deploy/bench/index_cost.py [BATCH ...]   (default: 12 200, the batch sizes
the writer reaches at 32x1 and 50x20). Knobs: PREFILL (200000), RECORDS (12000).
"""

import glob
import hashlib
import os
import random
import sqlite3
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFILL = int(os.environ.get("PREFILL", "200000"))
RECORDS = int(os.environ.get("RECORDS", "12000"))
RANDOM_KEYED = ["access_log_by_facility", "access_log_by_patient"]
IN_TIME_ORDER = ["access_log_by_time", "access_log_by_activation"]


def schema(path):
    db = sqlite3.connect(path)
    for migration in sorted(glob.glob(os.path.join(ROOT, "migrations/sqlite/*.sql"))):
        with open(migration) as f:
            db.executescript(f.read())
    columns = [row[1] for row in db.execute("PRAGMA table_info(access_log)")]
    db.close()
    return columns


class Records:
    """Lookups by insured number, as the benchmark's mix mostly makes them."""

    def __init__(self, columns):
        rng = random.Random(20220317)
        self.rng = rng
        self.columns = columns
        self.facilities = [f"04{rng.randrange(10**8):08d}" for _ in range(40_000)]
        self.patients = [hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in range(100_000)]
        self.seq = 0

    def next(self):
        self.seq += 1
        at = 1_733_000_000_000_000_000 + self.seq * 100_000
        rng = self.rng
        row = {
            "chain_id": "e258a9ab24e26e07", "seq": self.seq, "prev_hash": "0" * 64,
            "hash": hashlib.sha256(str(self.seq).encode()).hexdigest(),
            # Time-ordered, as the gateway's UUID v7 ids are.
            "id": f"{at // 1_000_000:012x}-7{rng.getrandbits(60):015x}", "at": at,
            "method": "LookupQualification", "items": "qualification",
            "facility": rng.choice(self.facilities), "staff_id": f"S{rng.randrange(1000)}",
            "staff_role": "doctor", "patient_key": rng.choice(self.patients),
            "identification": "insured_number", "consent_basis": "verbal",
            "purpose": "treatment", "activation_id": "noto-2024", "decision": "allowed",
            "grpc_code": 0, "upstream_result": "ok", "needs_review": 0,
            "access_mode": "disaster", "consent_kinds": "qualification", "patient_notice": 0,
        }
        return tuple(row.get(c) for c in self.columns)


def run(label, batch, drop=(), checkpoint=True, statement="each"):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "onshi.db")
        columns = schema(path)
        records = Records(columns)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        for index in drop:
            db.execute(f"DROP INDEX {index}")
        one = f"INSERT INTO access_log ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        db.execute("BEGIN")
        db.executemany(one, (records.next() for _ in range(PREFILL)))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if not checkpoint:
            db.execute("PRAGMA wal_autocheckpoint=0")
        rows = [records.next() for _ in range(RECORDS)]
        start = time.perf_counter()
        for i in range(0, RECORDS, batch):
            chunk = rows[i:i + batch]
            db.execute("BEGIN")
            if statement == "each":
                db.executemany(one, chunk)
            else:
                verb = "INSERT OR ROLLBACK" if statement == "or-rollback" else "INSERT"
                values = ", ".join(["(" + ", ".join("?" * len(columns)) + ")"] * len(chunk))
                db.execute(f"{verb} INTO access_log ({', '.join(columns)}) VALUES {values}",
                           [v for row in chunk for v in row])
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        db.close()
    print(f"| {batch} | {label} | {elapsed / RECORDS * 1e6:.1f} |", flush=True)


def main():
    batches = [int(b) for b in sys.argv[1:]] or [12, 200]
    print(f"SQLite {sqlite3.sqlite_version}, {PREFILL} records before, {RECORDS} timed\n")
    print("| records per commit | variant | µs per record |")
    print("|---:|---|---:|")
    for batch in batches:
        run("all", batch)
        for index in IN_TIME_ORDER + RANDOM_KEYED:
            run(f"-{index}", batch, drop=[index])
        run("-facility,-patient", batch, drop=RANDOM_KEYED)
        run("none", batch, drop=RANDOM_KEYED + IN_TIME_ORDER)
        run("no-checkpoint", batch, checkpoint=False)
        run("multi-row", batch, statement="multi")
        run("multi-row or rollback", batch, statement="or-rollback")
        run("all (again)", batch)


if __name__ == "__main__":
    main()
