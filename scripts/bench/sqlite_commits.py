#!/usr/bin/env python3
"""How many one-row SQLite transactions per second the disk under DIR takes (default journal
mode and synchronous=FULL, as a fresh database has them), for scripts/bench-spin.sh.

  sqlite_commits.py DIR [SECONDS]

Each commit waits for the disk (fsync), like each key-value write of Spin's default SQLite
store, so this rate bounds key-value writes per second on this machine.
"""
import os
import sqlite3
import sys
import tempfile
import time

d = tempfile.mkdtemp(dir=sys.argv[1])
path = os.path.join(d, "commits.db")
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
db = sqlite3.connect(path, isolation_level=None)
db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)")
n = 0
start = time.time()
while time.time() - start < seconds:
    db.execute("BEGIN")
    db.execute(
        "INSERT INTO kv VALUES ('k', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
        (str(n),),
    )
    db.execute("COMMIT")
    n += 1
elapsed = time.time() - start
db.close()
for f in os.listdir(d):
    os.remove(os.path.join(d, f))
os.rmdir(d)
print("%.0f" % (n / elapsed))
