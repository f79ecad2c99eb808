//! An SMTP relay the tests control, on a loopback port: it accepts mail,
//! refuses chosen recipients for good (`550` to `RCPT TO`, as a relay does
//! for an unknown mailbox), keeps every accepted message in memory, and can
//! be started on a port the notifier already points at (the relay coming
//! back after an outage). It speaks just the SMTP that lettre uses.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

/// One message the relay accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub recipients: Vec<String>,
    pub data: String,
}

#[derive(Debug, Default)]
struct State {
    refuse: HashSet<String>,
    accepted: Vec<Accepted>,
    refusals: Vec<String>,
}

/// A running relay; stops listening when dropped.
#[derive(Debug)]
pub struct TestRelay {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestRelay {
    /// A relay on a free port that refuses `refuse` (exact addresses).
    pub async fn start(refuse: &[&str]) -> Self {
        Self::start_on(0, refuse).await
    }

    /// A relay on `port` (0 for any free port).
    pub async fn start_on(port: u16, refuse: &[&str]) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("relay binds");
        let port = listener.local_addr().expect("relay address").port();
        let state = Arc::new(Mutex::new(State {
            refuse: refuse.iter().map(|address| address.to_string()).collect(),
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Self { port, state, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Accepted messages whose Message-ID is the request's.
    pub fn accepted_with_id(&self, message_id: Uuid) -> usize {
        let header = format!("Message-ID: <{message_id}@mamochi.cl>");
        self.accepted().iter().filter(|mail| mail.data.lines().any(|line| line.trim_end() == header)).count()
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.state.lock().expect("relay state").accepted.clone()
    }

    /// Every `RCPT TO` answered 550, in order.
    pub fn refusals(&self) -> Vec<String> {
        self.state.lock().expect("relay state").refusals.clone()
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One SMTP session: greeting, then command by command until QUIT or EOF.
async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader);
    if writer.write_all(b"220 test-relay ESMTP\r\n").await.is_err() {
        return;
    }
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_string();
        let verb = command.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" | "HELO" => "250 test-relay\r\n".to_string(),
            "MAIL" => {
                recipients.clear();
                "250 2.1.0 OK\r\n".to_string()
            }
            "RCPT" => {
                let address = address_of(&command);
                let mut state = state.lock().expect("relay state");
                if state.refuse.contains(&address) {
                    state.refusals.push(address.clone());
                    format!("550 5.1.1 <{address}>: mailbox unavailable\r\n")
                } else {
                    recipients.push(address);
                    "250 2.1.5 OK\r\n".to_string()
                }
            }
            "DATA" => {
                if writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.is_err() {
                    return;
                }
                let mut data = String::new();
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let accepted = Accepted { recipients: std::mem::take(&mut recipients), data };
                state.lock().expect("relay state").accepted.push(accepted);
                "250 2.0.0 queued\r\n".to_string()
            }
            "RSET" => {
                recipients.clear();
                "250 2.0.0 OK\r\n".to_string()
            }
            "NOOP" => "250 2.0.0 OK\r\n".to_string(),
            "QUIT" => {
                let _ = writer.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            }
            _ => "502 5.5.2 command not implemented\r\n".to_string(),
        };
        if writer.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The address inside `RCPT TO:<address>`.
fn address_of(command: &str) -> String {
    let start = command.find('<').map_or(0, |at| at + 1);
    let end = command[start..].find('>').map_or(command.len(), |at| start + at);
    command[start..end].to_string()
}
