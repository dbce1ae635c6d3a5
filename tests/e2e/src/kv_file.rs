//! Writes into the `default` key-value store of a STOPPED `spin up`: the SQLite file
//! `<state-dir>/sqlite_key_value.db`, table `spin_key_value (store, key, value)` as Spin 4.0.2
//! creates it. Used to plant state the app itself would never write on its own (a lease left by
//! a holder that died). Only between a stop and a restart (`SpinUp::restart_after`): Spin owns
//! the file while it runs. python3's `sqlite3` does the writing (the suite's scripts already
//! need python3), and refuses a table of another shape rather than guessing.

use std::path::Path;
use std::process::Command;

const SCRIPT: &str = r#"
import sqlite3, sys
db, entries = sys.argv[1], sys.argv[2:]
con = sqlite3.connect(db, timeout=30)
columns = [row[1] for row in con.execute("PRAGMA table_info(spin_key_value)")]
if columns != ["store", "key", "value"]:
    sys.exit("unexpected spin_key_value columns: %r" % (columns,))
with con:
    for i in range(0, len(entries), 2):
        con.execute(
            "INSERT OR REPLACE INTO spin_key_value (store, key, value) VALUES ('default', ?, ?)",
            (entries[i], bytes.fromhex(entries[i + 1])),
        )
con.close()
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sets each `(key, value)` in the `default` store of the stopped app in `state_dir`.
pub fn write_default_store(state_dir: &Path, entries: &[(&str, Vec<u8>)]) {
    let db = state_dir.join("sqlite_key_value.db");
    assert!(db.is_file(), "no key-value file at {}", db.display());
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(SCRIPT).arg(&db);
    for (key, value) in entries {
        cmd.arg(key).arg(hex(value));
    }
    let out = cmd
        .output()
        .expect("run python3 to write the key-value file");
    assert!(
        out.status.success(),
        "writing {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

const LIST_SCRIPT: &str = r#"
import sqlite3, sys
db, prefix = sys.argv[1], sys.argv[2]
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
for (key,) in con.execute(
    "SELECT key FROM spin_key_value WHERE store = 'default' AND substr(key, 1, ?) = ? ORDER BY key",
    (len(prefix), prefix),
):
    print(key)
con.close()
"#;

/// The keys of the `default` store of the app in `state_dir` that start with `prefix` (read
/// only; safe while Spin runs, SQLite serialises the read with Spin's writes).
pub fn default_store_keys(state_dir: &Path, prefix: &str) -> Vec<String> {
    let db = state_dir.join("sqlite_key_value.db");
    assert!(db.is_file(), "no key-value file at {}", db.display());
    let out = Command::new("python3")
        .arg("-c")
        .arg(LIST_SCRIPT)
        .arg(&db)
        .arg(prefix)
        .output()
        .expect("run python3 to read the key-value file");
    assert!(
        out.status.success(),
        "reading {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

const SIZE_SCRIPT: &str = r#"
import sqlite3, sys
db, key = sys.argv[1], sys.argv[2]
con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
row = con.execute(
    "SELECT length(value) FROM spin_key_value WHERE store = 'default' AND key = ?", (key,)
).fetchone()
print(row[0] if row else -1)
con.close()
"#;

/// The size in bytes of the value of `key` in the `default` store of the app in `state_dir`
/// (None when absent; read only, safe while Spin runs).
pub fn default_store_value_size(state_dir: &Path, key: &str) -> Option<usize> {
    let db = state_dir.join("sqlite_key_value.db");
    let out = Command::new("python3")
        .arg("-c")
        .arg(SIZE_SCRIPT)
        .arg(&db)
        .arg(key)
        .output()
        .expect("run python3 to read the key-value file");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
