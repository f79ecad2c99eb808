//! `mamochi run …` children of a test: started with arguments and
//! `MAMOCHI__…` settings in their environment, their ops endpoints on a free
//! loopback port, waited on until `/readyz` answers 200, signalled by PID,
//! and killed when dropped, so no process outlives a failing test.

use std::ffi::OsStr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A child process killed (SIGKILL) and reaped on drop unless stopped before.
#[derive(Debug)]
pub struct Mamochi {
    child: Option<Child>,
    /// The loopback port of its ops endpoints (`/readyz`, `/metrics`), if
    /// the starter gave it one.
    pub ops_port: Option<u16>,
}

impl Mamochi {
    /// Starts `binary` (the test's `env!("CARGO_BIN_EXE_mamochi")`) with
    /// `args` and `envs`, stdout discarded, stderr inherited.
    pub fn spawn<I, S, K, V>(binary: &str, args: I, envs: &[(K, V)]) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut command = Command::new(binary);
        command.args(args).stdout(Stdio::null());
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command.spawn().unwrap_or_else(|error| panic!("{binary} starts: {error}"));
        Self { child: Some(child), ops_port: None }
    }

    /// Records the ops port the child was told to listen on.
    pub fn with_ops_port(mut self, port: u16) -> Self {
        self.ops_port = Some(port);
        self
    }

    /// The child's process id.
    pub fn pid(&self) -> i32 {
        let child = self.child.as_ref().expect("the child is running");
        i32::try_from(child.id()).expect("a PID fits i32")
    }

    /// Sends `signal` to the child without waiting.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("signal sent");
    }

    /// Sends `signal` and reaps the child.
    pub fn stop(mut self, signal: Signal) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                kill(Pid::from_raw(pid), signal).expect("signal sent");
            }
            child.wait().expect("reaped");
        }
    }

    /// Sends `signal` and waits up to `within` for the child to exit;
    /// returns its exit code (`None` if a signal ended it).
    pub async fn stop_within(mut self, signal: Signal, within: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("the child is running");
        if let Ok(pid) = i32::try_from(child.id()) {
            kill(Pid::from_raw(pid), signal).expect("signal sent");
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("child status") {
                return status.code();
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child did not exit within {within:?} of {signal}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the child has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits until `GET /readyz` on the ops port answers 200; panics after
    /// `timeout` or if the child exits first.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let port = self.ops_port.expect("the child was given an ops port");
        let url = format!("http://127.0.0.1:{port}/readyz");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            assert!(self.is_running(), "the child exited before it was ready");
            if let Ok(response) = reqwest::get(&url).await {
                if response.status().as_u16() == 200 {
                    return;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "{url} not 200 within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Mamochi {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
