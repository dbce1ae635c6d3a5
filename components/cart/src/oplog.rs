//! The one structured log line per operation (component stderr goes to Spin's log directory).
//!
//! The line is formatted first and handed to stderr in one write. `eprintln!` with arguments
//! writes every literal piece and every argument separately, and on Spin each guest write is a
//! host call that writes to the component's log file and, since `spin up` follows component
//! output by default, to Spin's own stderr as well: a line of four fields cost nine of each. One
//! write also keeps the lines of concurrent requests, which share the log file, from
//! interleaving.

use std::io::Write as _;

/// The line for one operation, newline included.
pub fn operation_line(route: &str, method: &str, status: u16, duration_us: u64) -> String {
    format!(
        "{{\"op\":\"{route}\",\"method\":\"{method}\",\"status\":{status},\"durationUs\":{duration_us}}}\n"
    )
}

/// Writes the operation's line to stderr in one write. A failed write loses the line, never
/// the request.
pub fn operation(route: &str, method: &str, status: u16, duration_us: u64) {
    let line = operation_line(route, method, status, duration_us);
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::operation_line;

    #[test]
    fn the_operation_line_is_one_json_object_and_a_newline() {
        let line = operation_line("get_cart", "GET", 200, 1513);
        assert_eq!(
            line,
            "{\"op\":\"get_cart\",\"method\":\"GET\",\"status\":200,\"durationUs\":1513}\n"
        );
        let parsed: serde_json::Value =
            serde_json::from_str(line.trim_end()).expect("the line is JSON");
        assert_eq!(parsed["op"], "get_cart");
        assert_eq!(parsed["durationUs"], 1513);
    }
}
