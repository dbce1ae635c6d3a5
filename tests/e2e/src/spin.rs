//! Real Spin: find the CLI, build the app once, and run `spin up` on a free loopback port with a
//! state directory of its own, restartable on the same directory.
//!
//! Variables reach the app the way an operator sets them, as `SPIN_VARIABLE_<NAME>` in the
//! environment of `spin up`, so the suite also proves that backends switch by variables alone.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
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

/// How long a stopping `spin up` may take to shut its app down before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

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

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

extern "C" {
    /// POSIX `kill(2)` from the C library std already links (`pid_t` is `i32` on Linux).
    fn kill(pid: i32, signal: i32) -> i32;
}

/// Sends `signal` to every process of the group `group`.
fn signal_group(group: i32, signal: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative pid names
    // the process group we created for this `spin up` (its id is the child's pid).
    unsafe {
        kill(-group, signal);
    }
}

/// Whether any process of the group is left (signal 0 only checks).
fn group_alive(group: i32) -> bool {
    // SAFETY: as in `signal_group`; signal 0 delivers nothing.
    unsafe { kill(-group, 0) == 0 }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A client for the app on `port`, carrying the reference token the app runs with: the test's,
/// else the manifest's demo default.
fn client_for(port: u16, variables: &[(String, String)]) -> Client {
    let reference_token = variables
        .iter()
        .find(|(name, _)| name == "reference_token")
        .map(|(_, value)| value.clone())
        .or_else(|| manifest_default("reference_token"))
        .unwrap_or_default();
    Client::new(format!("http://127.0.0.1:{port}")).with_reference_token(&reference_token)
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

/// Readiness of the cart app: its own health route.
const CART_READY: &str = "/healthz";
/// Readiness of any Spin app: the health check Spin answers itself.
const SPIN_READY: &str = "/.well-known/spin/health";

/// One `spin up` of the app in `spin.toml`. Stopped on drop; if the test is failing, the tail of
/// Spin's own log and of each component's log is printed first.
pub struct SpinUp {
    child: Option<Child>,
    /// `None`: the app's own `spin.toml`.
    manifest: Option<PathBuf>,
    /// Answers 200 once the app serves: the cart's `/healthz`, or Spin's own health check for
    /// an app without the cart.
    ready_path: &'static str,
    /// More `spin up` arguments (e.g. `--runtime-config-file`), kept across a restart.
    args: Vec<String>,
    port: u16,
    state_dir: PathBuf,
    variables: Vec<(String, String)>,
    client: Client,
}

impl SpinUp {
    /// Starts the app with these variables on a fresh state directory.
    pub fn start(spin: &Path, label: &str, variables: &[(&str, &str)]) -> SpinUp {
        Self::start_in(spin, None, CART_READY, fresh_dir(label), owned(variables))
    }

    /// Starts the app with more `spin up` arguments, such as `--runtime-config-file PATH`.
    pub fn start_with_args(
        spin: &Path,
        label: &str,
        args: &[&str],
        variables: &[(&str, &str)],
    ) -> SpinUp {
        let mut up = Self::prepare(None, CART_READY, fresh_dir(label), owned(variables));
        up.args = args.iter().map(|a| a.to_string()).collect();
        up.launch_or_panic(spin);
        up
    }

    /// Starts another manifest (see [`variant_manifest`]) on a fresh state directory.
    pub fn start_manifest(
        spin: &Path,
        label: &str,
        manifest: &Path,
        variables: &[(&str, &str)],
    ) -> SpinUp {
        let manifest = Some(manifest.to_path_buf());
        Self::start_in(
            spin,
            manifest,
            CART_READY,
            fresh_dir(label),
            owned(variables),
        )
    }

    /// Starts a manifest without the cart component (such as `deploy/services/spin.toml`),
    /// ready once Spin answers its own health check.
    pub fn start_app(spin: &Path, label: &str, manifest: &Path) -> SpinUp {
        let manifest = Some(manifest.to_path_buf());
        Self::start_in(spin, manifest, SPIN_READY, fresh_dir(label), Vec::new())
    }

    fn start_in(
        spin: &Path,
        manifest: Option<PathBuf>,
        ready_path: &'static str,
        state_dir: PathBuf,
        variables: Vec<(String, String)>,
    ) -> SpinUp {
        let mut up = Self::prepare(manifest, ready_path, state_dir, variables);
        up.launch_or_panic(spin);
        up
    }

    fn prepare(
        manifest: Option<PathBuf>,
        ready_path: &'static str,
        state_dir: PathBuf,
        variables: Vec<(String, String)>,
    ) -> SpinUp {
        let port = free_port();
        let client = client_for(port, &variables);
        SpinUp {
            child: None,
            manifest,
            ready_path,
            args: Vec::new(),
            port,
            state_dir,
            variables,
            client,
        }
    }

    /// Launches Spin; when it does not become ready (most often because the free port it was
    /// given was taken by another process before Spin could bind it), stops it and tries again
    /// on another port, three times in all.
    fn launch_or_panic(&mut self, spin: &Path) {
        let mut last = None;
        for _ in 0..3 {
            match self.launch(spin) {
                Ok(()) => return,
                Err(e) => {
                    self.stop();
                    self.port = free_port();
                    self.client = client_for(self.port, &self.variables);
                    last = Some(e);
                }
            }
        }
        self.print_logs();
        if let Some(e) = last {
            panic!("spin up did not become ready: {e:#}");
        }
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
            .args(&self.args)
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            // A process group of its own: `spin up` serves the app from a child process
            // (`spin trigger http`), and stopping must reach that one too.
            .process_group(0);
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
            // Only this Spin's answer counts: a free port can be taken by another process
            // between `free_port` and Spin's bind (other suites start servers too), and that
            // process may well answer 200. Spin logs the address once it has bound it.
            if self.serving() {
                if let Ok(r) = self.client.get(self.ready_path).try_send() {
                    if r.status == 200 {
                        return Ok(());
                    }
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("no answer on {} within {READY_TIMEOUT:?}", self.ready_path);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether this launch of Spin logged that it serves on its port (the log holds every
    /// launch; only the part after the last launch header counts).
    fn serving(&self) -> bool {
        let Ok(log) = std::fs::read_to_string(self.log_path()) else {
            return false;
        };
        let this_launch = log.rsplit("==== spin up on port").next().unwrap_or("");
        this_launch.contains(&format!("Serving http://127.0.0.1:{}", self.port))
    }

    /// Stops Spin and starts it again on the same state directory, with these variables
    /// replacing the previous ones.
    pub fn restart(self, spin: &Path, variables: &[(&str, &str)]) -> SpinUp {
        self.restart_after(spin, variables, |_| {})
    }

    /// Like [`SpinUp::restart`], running `while_stopped` on the state directory between the
    /// stop and the start: the only safe moment to touch the files of Spin's stores.
    pub fn restart_after(
        mut self,
        spin: &Path,
        variables: &[(&str, &str)],
        while_stopped: impl FnOnce(&Path),
    ) -> SpinUp {
        self.stop();
        let state_dir = std::mem::take(&mut self.state_dir);
        while_stopped(&state_dir);
        let mut up = Self::prepare(
            self.manifest.take(),
            self.ready_path,
            state_dir,
            owned(variables),
        );
        up.args = std::mem::take(&mut self.args);
        up.launch_or_panic(spin);
        up
    }

    /// Stops `spin up` and the app process it started, and waits until both are gone, so the
    /// state directory is free for a restart. SIGTERM first: `spin up` then stops its
    /// `spin trigger http` child, whereas SIGKILL would leave that child serving, holding the
    /// store files, after the test. Killed only when the polite stop does not finish in time.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = child.id() as i32;
        signal_group(group, SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            signal_group(group, SIGKILL);
        }
        let _ = child.wait();
        // Whatever is left of the group (the app process, when `spin up` had to be killed)
        // has no parent to serve any more.
        if group_alive(group) {
            signal_group(group, SIGKILL);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while group_alive(group) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The state directory (`--state-dir`): Spin's key-value SQLite file and component logs.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
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
