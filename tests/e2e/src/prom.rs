//! The Prometheus text exposition (format 0.0.4) as a scrape sees it: parsed into families
//! (HELP, TYPE, samples with their labels), not searched as text, and checked by `promtool
//! check metrics` and by `scripts/check-observability.sh` against a live scrape.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// One sample: the series name (a family name or its `_bucket`/`_sum`/`_count`), labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One metric family: `# HELP`, `# TYPE` and its samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Family {
    pub help: Option<String>,
    pub kind: Option<String>,
    pub samples: Vec<Sample>,
}

impl Family {
    /// The samples of one series name (e.g. `{family}_bucket`).
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

/// A parsed exposition, by family name.
#[derive(Debug, Default)]
pub struct Exposition {
    pub families: BTreeMap<String, Family>,
}

/// Why a line could not be read.
#[derive(Debug)]
pub struct ParseError {
    pub line: usize,
    pub text: String,
    pub why: &'static str,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {} ({:?})", self.line, self.why, self.text)
    }
}

impl Exposition {
    /// Parses the text. A sample belongs to the family whose `# TYPE` came last when its name
    /// is that family's or, for a histogram or summary, one of its suffixed series; otherwise
    /// to a family of its own name (untyped).
    pub fn parse(text: &str) -> Result<Exposition, ParseError> {
        let mut out = Exposition::default();
        let mut current: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let err = |why| ParseError {
                line: i + 1,
                text: raw.to_owned(),
                why,
            };
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                out.families.entry(name.to_owned()).or_default().help = Some(help.to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| err("TYPE without a type"))?;
                out.families.entry(name.to_owned()).or_default().kind = Some(kind.to_owned());
                current = Some(name.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let sample = parse_sample(line).ok_or_else(|| err("not a sample"))?;
            let family = current
                .as_ref()
                .filter(|f| {
                    sample.name == **f
                        || ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| sample.name == format!("{f}{s}"))
                })
                .cloned()
                .unwrap_or_else(|| sample.name.clone());
            out.families.entry(family).or_default().samples.push(sample);
        }
        Ok(out)
    }

    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.get(name)
    }

    /// The value of the one sample `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.families
            .values()
            .flat_map(|f| f.samples.iter())
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series, BTreeMap::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    if name.is_empty() || !name.chars().all(valid) {
        return None;
    }
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_labels(mut text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    while !text.is_empty() {
        let (name, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        labels.insert(name.trim().to_owned(), value);
        text = rest[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

/// `promtool check metrics` on an exposition. `scripts/test.sh` installs promtool (Debian
/// `prometheus`); without it the check is skipped with a notice, and fails under CI.
pub fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            skip_or_fail(&format!(
                "promtool not found ({e}); `bash scripts/test.sh` installs it"
            ));
            return;
        }
    };
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("write the exposition to promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n---- exposition\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `scripts/check-observability.sh` with a live scrape: besides its own checks, every family the
/// rules and the dashboard use must be in the scrape, and every family the registry lists too.
pub fn check_observability_against(text: &str, scratch: &Path) {
    if Command::new("promtool").arg("--version").output().is_err() {
        skip_or_fail("promtool not found; `bash scripts/test.sh` installs it");
        return;
    }
    let scrape = scratch.join("live-scrape.prom");
    std::fs::write(&scrape, text).expect("write the scrape");
    let root = crate::spin::workspace_root();
    let out = Command::new("bash")
        .arg(root.join("scripts/check-observability.sh"))
        .env("OBSERVABILITY_SCRAPE", &scrape)
        .current_dir(&root)
        .output()
        .expect("run scripts/check-observability.sh");
    assert!(
        out.status.success(),
        "check-observability against the live scrape failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn skip_or_fail(line: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("{line} (required under CI)");
    }
    eprintln!("{line} (check skipped)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_labels_and_values_are_parsed() {
        let text = "# HELP a_seconds Time.\n# TYPE a_seconds histogram\n\
            a_seconds_bucket{x=\"1\",le=\"0.1\"} 2\na_seconds_bucket{x=\"1\",le=\"+Inf\"} 3\n\
            a_seconds_sum{x=\"1\"} 0.25\na_seconds_count{x=\"1\"} 3\n\
            # HELP b_total Things with \"quotes\".\n# TYPE b_total counter\nb_total 0\n\
            c{l=\"a\\\"b,c\"} 1\n";
        let e = Exposition::parse(text).expect("parses");
        let a = e.family("a_seconds").expect("a");
        assert_eq!(a.kind.as_deref(), Some("histogram"));
        assert_eq!(a.series("a_seconds_bucket").count(), 2);
        assert_eq!(e.value("a_seconds_count", &[("x", "1")]), Some(3.0));
        assert_eq!(
            e.value("a_seconds_bucket", &[("x", "1"), ("le", "+Inf")]),
            Some(3.0)
        );
        assert_eq!(e.value("b_total", &[]), Some(0.0));
        assert_eq!(e.value("c", &[("l", "a\"b,c")]), Some(1.0));
        assert!(e.family("c").is_some_and(|f| f.kind.is_none()));
        assert!(Exposition::parse("x{y=\"1\" 2\n").is_err());
    }
}
