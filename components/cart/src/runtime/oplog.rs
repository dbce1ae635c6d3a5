//! The one structured log line per operation (component stderr goes to Spin's log directory).
//!
//! The line is formatted first and handed to stderr in one write. `eprintln!` with arguments
//! writes every literal piece and every argument separately, and on Spin each guest write is a
//! host call that writes to the component's log file and, since `spin up` follows component
//! output by default, to Spin's own stderr as well: a line of four fields cost nine of each. One
//! write also keeps the lines of concurrent requests, which share the log file, from
//! interleaving.

use std::cell::Cell;
use std::io::Write as _;

/// The warning a request served in demo identity mode carries on its line.
pub const INSECURE_IDENTITY: &str =
    "insecure X-User-Id identity mode is on; never use it in production";

thread_local! {
    /// Whether this request's caller was identified by the demo `X-User-Id` header.
    static INSECURE: Cell<bool> = const { Cell::new(false) };
}

/// Marks this request as identified in demo mode: its line carries the warning. (A line of
/// its own per request would double the log writes of every demo request.)
pub fn note_insecure_identity() {
    INSECURE.with(|i| i.set(true));
}

/// The line for one operation, newline included.
pub fn operation_line(
    route: &str,
    method: &str,
    status: u16,
    duration_us: u64,
    insecure_identity: bool,
) -> String {
    let warning = if insecure_identity {
        format!(",\"level\":\"warn\",\"msg\":\"{INSECURE_IDENTITY}\"")
    } else {
        String::new()
    };
    format!(
        "{{\"op\":\"{route}\",\"method\":\"{method}\",\"status\":{status},\"durationUs\":{duration_us}{warning}}}\n"
    )
}

/// Writes the operation's line to stderr in one write. A failed write loses the line, never
/// the request.
pub fn operation(route: &str, method: &str, status: u16, duration_us: u64) {
    let insecure = INSECURE.with(Cell::get);
    let line = operation_line(route, method, status, duration_us, insecure);
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::operation_line;

    #[test]
    fn the_operation_line_is_one_json_object_and_a_newline() {
        let line = operation_line("get_cart", "GET", 200, 1513, false);
        assert_eq!(
            line,
            "{\"op\":\"get_cart\",\"method\":\"GET\",\"status\":200,\"durationUs\":1513}\n"
        );
        let demo: serde_json::Value =
            serde_json::from_str(operation_line("add_item", "POST", 200, 9, true).trim_end())
                .expect("the demo line is JSON");
        assert_eq!(demo["level"], "warn");
        assert_eq!(demo["msg"], super::INSECURE_IDENTITY);
        let parsed: serde_json::Value =
            serde_json::from_str(line.trim_end()).expect("the line is JSON");
        assert_eq!(parsed["op"], "get_cart");
        assert_eq!(parsed["durationUs"], 1513);
    }
}
