//! Real Spin: find the CLI, build the app once, and run `spin up` on a free loopback port with a
//! state directory of its own, restartable on the same directory.
//!
//! Variables reach the app the way an operator sets them, as `SPIN_VARIABLE_<NAME>` in the
//! environment of `spin up`, so the suite also proves that backends switch by variables alone.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::http::Client;

/// How long `spin up` may take to prepare the Wasm modules and start listening. Generous: on a
/// loaded 2-core CI machine Cranelift compilation of four components takes several seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// The repository root (this crate lives in `tests/e2e`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `spin` from `PATH`, else the project's `../shared/tools/spin`.
pub fn find_spin() -> Option<PathBuf> {
    on_path("spin").or_else(|| {
        let shared = workspace_root().join("../shared/tools/spin");
        shared.is_file().then_some(shared)
    })
}

/// The Spin CLI with the app built by `spin build`, once per test binary; `None` when there is
/// no Spin CLI and this is not CI (a one-line notice says the suite was skipped). Under
/// `CI=true` a missing CLI or a failed build fails the test.
pub fn spin_cli() -> Option<&'static Path> {
    static CLI: OnceLock<Option<PathBuf>> = OnceLock::new();
    CLI.get_or_init(|| {
        let Some(spin) = find_spin() else {
            let line = "real-Spin suite: no `spin` on PATH and no ../shared/tools/spin; install the Spin CLI 4.x to run it";
            if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
                panic!("{line} (required under CI)");
            }
            eprintln!("{line} (skipped)");
            return None;
        };
        // For quick local iterations on the suite itself, when the components are already
        // built; the test command never sets it.
        let skip_build = std::env::var_os("CART_E2E_SKIP_SPIN_BUILD").is_some();
        if skip_build {
            eprintln!("real-Spin suite: CART_E2E_SKIP_SPIN_BUILD set, using the built components");
        } else if let Err(e) = spin_build(&spin) {
            panic!("`spin build` failed: {e:#}");
        }
        Some(spin)
    })
    .as_deref()
}

/// `spin build` in the repository root: the same build a user runs before `spin up`.
fn spin_build(spin: &Path) -> Result<()> {
    let out = Command::new(spin)
        .arg("build")
        .current_dir(workspace_root())
        .output()
        .context("running spin build")?;
    if !out.status.success() {
        bail!(
            "exit {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A fresh directory under `target/e2e-state/` (kept after a failure for inspection).
pub fn fresh_dir(label: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = workspace_root()
        .join("target/e2e-state")
        .join(format!("{label}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the state directory");
    dir
}

fn owned(variables: &[(&str, &str)]) -> Vec<(String, String)> {
    variables
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The default of a variable in the app's `spin.toml` (`name = { default = "…"`), e.g. the
/// demo `reference_token` the suite sends to the reference services unless a test sets one.
pub fn manifest_default(name: &str) -> Option<String> {
    let manifest = fs::read_to_string(workspace_root().join("spin.toml")).ok()?;
    let start = format!("{name} = {{ default = \"");
    manifest.lines().find_map(|line| {
        let rest = line.trim().strip_prefix(&start)?;
        Some(rest.split('"').next()?.to_owned())
    })
}

/// A variant of the app's `spin.toml`, written to a fresh folder: `edit` applied to the text,
/// then the component paths made absolute so it resolves from there.
pub fn variant_manifest(label: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let root = workspace_root();
    let shipped = fs::read_to_string(root.join("spin.toml")).expect("read spin.toml");
    let absolute = edit(shipped).replace(
        "\"target/wasm32-wasip2/",
        &format!("\"{}/target/wasm32-wasip2/", root.display()),
    );
    let path = fresh_dir(label).join("spin.toml");
    fs::write(&path, absolute).expect("write the variant manifest");
    path
}

/// One `spin up` of the app in `spin.toml`. Stopped on drop; if the test is failing, the tail of
/// Spin's own log and of each component's log is printed first.
pub struct SpinUp {
    child: Option<Child>,
    /// `None`: the app's own `spin.toml`.
    manifest: Option<PathBuf>,
    port: u16,
    state_dir: PathBuf,
    variables: Vec<(String, String)>,
    client: Client,
}

impl SpinUp {
    /// Starts the app with these variables on a fresh state directory.
    pub fn start(spin: &Path, label: &str, variables: &[(&str, &str)]) -> SpinUp {
        Self::start_in(spin, None, fresh_dir(label), owned(variables))
    }

    /// Starts another manifest (see [`variant_manifest`]) on a fresh state directory.
    pub fn start_manifest(
        spin: &Path,
        label: &str,
        manifest: &Path,
        variables: &[(&str, &str)],
    ) -> SpinUp {
        let manifest = Some(manifest.to_path_buf());
        Self::start_in(spin, manifest, fresh_dir(label), owned(variables))
    }

    fn start_in(
        spin: &Path,
        manifest: Option<PathBuf>,
        state_dir: PathBuf,
        variables: Vec<(String, String)>,
    ) -> SpinUp {
        let port = free_port();
        // The reference token the app runs with: the test's, else the manifest's demo default.
        let reference_token = variables
            .iter()
            .find(|(name, _)| name == "reference_token")
            .map(|(_, value)| value.clone())
            .or_else(|| manifest_default("reference_token"))
            .unwrap_or_default();
        let mut up = SpinUp {
            child: None,
            manifest,
            port,
            state_dir,
            variables,
            client: Client::new(format!("http://127.0.0.1:{port}"))
                .with_reference_token(&reference_token),
        };
        if let Err(e) = up.launch(spin) {
            up.print_logs();
            panic!("spin up did not become ready: {e:#}");
        }
        up
    }

    fn log_path(&self) -> PathBuf {
        self.state_dir.join("spin-up.log")
    }

    fn launch(&mut self, spin: &Path) -> Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        writeln!(
            log,
            "==== spin up on port {} with {:?}",
            self.port, self.variables
        )?;
        let err_log: File = log.try_clone()?;
        let mut cmd = Command::new(spin);
        cmd.arg("up");
        if let Some(manifest) = &self.manifest {
            cmd.arg("-f").arg(manifest);
        }
        cmd.arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--state-dir")
            .arg(&self.state_dir)
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log));
        for (name, value) in &self.variables {
            cmd.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        let child = cmd.spawn().context("spawning spin up")?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("spin up exited with {status} before serving");
                }
            }
            if let Ok(r) = self.client.get("/healthz").try_send() {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("no answer on /healthz within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops Spin and starts it again on the same state directory, with these variables
    /// replacing the previous ones.
    pub fn restart(mut self, spin: &Path, variables: &[(&str, &str)]) -> SpinUp {
        self.stop();
        let state_dir = std::mem::take(&mut self.state_dir);
        Self::start_in(spin, self.manifest.take(), state_dir, owned(variables))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The HTTP client for this instance.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last lines of Spin's log and of each component's stdout/stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        let mut files = vec![self.log_path()];
        if let Ok(entries) = fs::read_dir(self.state_dir.join("logs")) {
            let mut logs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            logs.sort();
            files.extend(logs);
        }
        for file in files {
            let text = fs::read_to_string(&file).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            out.push_str(&format!(
                "---- {} (last {} lines)\n",
                file.display(),
                tail.len()
            ));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn print_logs(&self) {
        eprintln!("{}", self.log_tail(40));
    }
}

impl Drop for SpinUp {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            self.print_logs();
            eprintln!("state kept in {}", self.state_dir.display());
        } else if !self.state_dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.state_dir);
        }
    }
}
