//! The real `telemetry-server` binary as a child process, with every line it writes collected.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Upper bound for the binary to start, stop or log an awaited line; a safety net against hanging,
/// not a speed claim.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Service {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    new_lines: mpsc::UnboundedReceiver<String>,
    collectors: [JoinHandle<()>; 2],
    pub port: u16,
}

/// Removes terminal colour codes, which could otherwise split a value in the log text.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    new_lines: mpsc::UnboundedSender<String>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let line = strip_ansi(&line);
            lines.lock().unwrap().push(line.clone());
            new_lines.send(line).ok();
        }
    })
}

/// Runs a one-shot command of the binary (`migrate`, `retention`, `migrate --distribute`, ...),
/// its words split at spaces, with only `env` as its
/// environment, and returns whether it succeeded and everything it wrote.
pub async fn run_command(command: &str, env: &[(&str, String)]) -> (bool, String) {
    let output = tokio::time::timeout(
        PROCESS_TIMEOUT,
        Command::new(env!("CARGO_BIN_EXE_telemetry-server"))
            .args(command.split_whitespace())
            .env_clear()
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the command finishes")
    .expect("the binary starts");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), strip_ansi(&text))
}

impl Service {
    /// Starts the binary with only `env` as its environment, listening on `[::]:0` (dual-stack,
    /// so IPv4 and IPv6 clients both connect), and returns once it listens.
    pub async fn start(env: &[(&str, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_telemetry-server"))
            .env_clear()
            .env("LISTEN_ADDR", "[::]:0")
            .env("SHUTDOWN_GRACE_SECS", "10")
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (sender, new_lines) = mpsc::unbounded_channel();
        let collectors = [
            collect(child.stdout.take().unwrap(), lines.clone(), sender.clone()),
            collect(child.stderr.take().unwrap(), lines.clone(), sender),
        ];
        let mut service = Self {
            child,
            lines,
            new_lines,
            collectors,
            port: 0,
        };
        let listening = service
            .wait_for_line(|line| line.contains("listening") && line.contains("addr"))
            .await;
        let (_, after) = listening
            .split_once("]:")
            .expect("the listening line has the port");
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        service.port = digits.parse().unwrap();
        service
    }

    /// Waits for the next line, from now on, that `matches`.
    pub async fn wait_for_line(&mut self, matches: impl Fn(&str) -> bool) -> String {
        tokio::time::timeout(PROCESS_TIMEOUT, async {
            while let Some(line) = self.new_lines.recv().await {
                if matches(&line) {
                    return line;
                }
            }
            panic!("the binary stopped before logging the line");
        })
        .await
        .expect("the binary logged the line")
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// SIGTERM, then wait for a clean exit; returns every line the binary wrote.
    pub async fn stop(mut self) -> Vec<String> {
        self.signal("TERM");
        let status = tokio::time::timeout(PROCESS_TIMEOUT, self.child.wait())
            .await
            .expect("the binary stops")
            .unwrap();
        assert!(status.success(), "exit status {status}");
        for collector in self.collectors {
            collector.await.unwrap();
        }
        Arc::into_inner(self.lines).unwrap().into_inner().unwrap()
    }
}
