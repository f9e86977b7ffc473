//! The one way tests run the `meshctl` binary: a `#[must_use]` builder shaped
//! like [`std::process::Command`], with no ambient configuration leaking in
//! from the developer's environment and every run bounded in time.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Lines, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

/// Environment variables meshctl reads; removed so a test sees only its flags.
const AMBIENT: [&str; 7] = [
    "MESHCTL_TARGET",
    "MESHCTL_FILE",
    "MESHCTL_CONTEXT",
    "MESHCTL_NAMESPACE",
    "MESHCTL_TEMPLATES",
    "KUBECONFIG",
    "RUST_LOG",
];

/// How long [`Meshctl::run`] and [`Meshctl::output`] wait for the process.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A `meshctl` invocation under construction.
#[must_use]
#[derive(Debug)]
pub struct Meshctl {
    cmd: Command,
}

// === impl Meshctl ===

impl Meshctl {
    /// Runs the binary at `bin` (meshctl's own tests pass
    /// `env!("CARGO_BIN_EXE_meshctl")`).
    pub fn new(bin: impl AsRef<OsStr>) -> Self {
        let mut cmd = Command::new(bin);
        for var in AMBIENT {
            cmd.env_remove(var);
        }
        Self { cmd }
    }

    /// Runs the `meshctl` that cargo built beside the running test, found the
    /// way assert_cmd's `cargo_bin` finds it: `CARGO_BIN_EXE_meshctl` when
    /// set, else the target directory of the test executable.
    pub fn from_cargo() -> Self {
        Self::new(cargo_bin("meshctl"))
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// `--target local:DIR`.
    pub fn local(&mut self, dir: &Path) -> &mut Self {
        self.arg("--target").arg(format!("local:{}", dir.display()))
    }

    /// `--kubeconfig PATH` (the target defaults to `kube`).
    pub fn kubeconfig(&mut self, path: &Path) -> &mut Self {
        self.arg("--kubeconfig").arg(path)
    }

    /// Sets the working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Sets an environment variable.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    /// Where standard input comes from (for [`Meshctl::spawn`]).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.cmd.stdin(cfg);
        self
    }

    /// Where standard output goes (for [`Meshctl::spawn`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.cmd.stdout(cfg);
        self
    }

    /// Where standard error goes (for [`Meshctl::spawn`]).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.cmd.stderr(cfg);
        self
    }

    /// Starts meshctl in the background (a rollout driver, say).
    ///
    /// # Errors
    /// When the process cannot be started.
    pub fn spawn(&mut self) -> std::io::Result<Child> {
        self.cmd.spawn()
    }

    /// Starts a driver in the background with its output discarded.
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn spawn_quiet(&mut self) -> Child {
        self.cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning meshctl")
    }

    /// Starts meshctl in the background with stderr discarded; the child and
    /// its stdout, line by line.
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn spawn_lines(&mut self) -> (Child, Lines<BufReader<ChildStdout>>) {
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning meshctl");
        let stdout = child.stdout.take().expect("meshctl's stdout");
        (child, BufReader::new(stdout).lines())
    }

    /// Runs to completion (bounded by [`RUN_LIMIT`]) and returns the output.
    ///
    /// # Errors
    /// When the process cannot be started.
    ///
    /// # Panics
    /// When meshctl does not exit within [`RUN_LIMIT`].
    pub fn output(&mut self) -> std::io::Result<Output> {
        let mut child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let status = wait_exit(&mut child, RUN_LIMIT);
        Ok(Output {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }

    /// Runs to completion (bounded) and fails the test, showing stderr,
    /// unless meshctl exits 0; the output.
    ///
    /// # Panics
    /// When meshctl cannot be started or fails.
    pub fn output_ok(&mut self) -> Output {
        let out = self.output().expect("spawning meshctl");
        assert!(
            out.status.success(),
            "{:?} failed: {}",
            self.cmd,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs to completion (bounded): exit code (-1 for a signal), stdout, stderr.
    ///
    /// # Panics
    /// When meshctl cannot be started or does not exit within [`RUN_LIMIT`].
    pub fn run(&mut self) -> (i32, String, String) {
        let out = self.output().expect("spawning meshctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs to completion (bounded) and fails the test, showing both
    /// outputs, unless meshctl exits with `code`; stdout and stderr.
    ///
    /// # Panics
    /// When meshctl cannot be started or exits with another code.
    pub fn run_code(&mut self, code: i32) -> (String, String) {
        let (actual, out, err) = self.run();
        assert_eq!(
            actual, code,
            "{:?} exited {actual}, expected {code}\nstdout:\n{out}\nstderr:\n{err}",
            self.cmd
        );
        (out, err)
    }

    /// Runs to completion and fails the test unless meshctl exits 0; stdout.
    ///
    /// # Panics
    /// When meshctl fails, with its arguments and both outputs.
    pub fn run_ok(&mut self) -> String {
        let (code, out, err) = self.run();
        assert_eq!(
            code, 0,
            "{:?} exited {code}\nstdout:\n{out}\nstderr:\n{err}",
            self.cmd
        );
        out
    }
}

/// A command line's words: `words("--steps 20,50 --threshold 1")` for the
/// flags of [`Meshctl::args`] and the harnesses that take `&[&str]`.
#[must_use]
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Waits (bounded) for a child to exit; kills it and fails past `limit`.
///
/// # Panics
/// When the child does not exit within `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let steps = limit.as_millis() / 50;
    for _ in 0..steps {
        if let Some(status) = child.try_wait().expect("waiting for meshctl") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("meshctl did not exit within {limit:?}");
}

/// The path of binary `name` of this workspace, as assert_cmd's `cargo_bin`
/// resolves it.
fn cargo_bin(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .map(|d| {
            if d.ends_with("deps") {
                d.parent().unwrap_or(d)
            } else {
                d
            }
        })
        .expect("the test executable's directory");
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}
