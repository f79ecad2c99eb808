//! Watches the SMTP sink's mail directory for new messages, reading each
//! `.eml` file once.
//!
//! The directory keeps every message of the stack's life (thousands after a
//! few runs), so parsing all of it on every poll would cost more than the
//! thing measured. Files present when the watcher starts are skipped; new
//! ones are parsed once and indexed by recipient. The sink writes a file and
//! renames it into place, so a visible `.eml` is complete, and its
//! modification time is when the message arrived.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use mail_parser::MessageParser;

/// A message that arrived after the watcher started.
#[derive(Debug, Clone)]
pub struct Arrived {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The file's modification time: when the sink stored the message.
    pub at: SystemTime,
}

/// Indexes new messages by recipient (lower case).
#[derive(Debug)]
pub struct MailWatcher {
    dir: PathBuf,
    seen: HashSet<PathBuf>,
    by_recipient: HashMap<String, Vec<Arrived>>,
}

impl MailWatcher {
    /// Starts watching `dir`; what is there already is ignored.
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        let seen = eml_files(dir)?.into_iter().collect();
        Ok(Self { dir: dir.to_path_buf(), seen, by_recipient: HashMap::new() })
    }

    /// Reads messages that arrived since the last poll; returns how many.
    pub fn poll(&mut self) -> std::io::Result<usize> {
        let mut fresh = 0;
        for file in eml_files(&self.dir)? {
            if self.seen.contains(&file) {
                continue;
            }
            let Ok(raw) = std::fs::read(&file) else { continue };
            let at = std::fs::metadata(&file).and_then(|meta| meta.modified()).unwrap_or_else(|_| SystemTime::now());
            self.seen.insert(file);
            if let Some(mail) = parse(&raw, at) {
                self.by_recipient.entry(mail.to.to_lowercase()).or_default().push(mail);
                fresh += 1;
            }
        }
        Ok(fresh)
    }

    /// Messages to `recipient` seen so far.
    pub fn to(&self, recipient: &str) -> &[Arrived] {
        self.by_recipient.get(&recipient.to_lowercase()).map_or(&[], Vec::as_slice)
    }
}

fn eml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

fn parse(raw: &[u8], at: SystemTime) -> Option<Arrived> {
    let message = MessageParser::default().parse(raw)?;
    let to =
        message.to().and_then(|to| to.first()).and_then(|address| address.address()).unwrap_or_default().to_string();
    Some(Arrived {
        to,
        subject: message.subject().unwrap_or_default().to_string(),
        body: message.body_text(0).map(|body| body.into_owned()).unwrap_or_default(),
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_after_the_start_are_indexed() {
        let dir = std::env::temp_dir().join(format!("mamochi-bench-mail-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mail = |to: &str| format!("From: a@b\r\nTo: {to}\r\nSubject: hola\r\n\r\nclave\r\n");
        std::fs::write(dir.join("1-000001.eml"), mail("old@example.cl")).expect("old");
        let mut watcher = MailWatcher::start(&dir).expect("start");

        std::fs::write(dir.join("2-000002.eml"), mail("New@Example.cl")).expect("new");
        std::fs::write(dir.join("2-000003.eml.partial"), mail("new@example.cl")).expect("partial");

        assert_eq!(watcher.poll().expect("poll"), 1);
        assert_eq!(watcher.poll().expect("poll again"), 0, "each file is read once");
        assert_eq!(watcher.to("new@example.cl").len(), 1);
        assert_eq!(watcher.to("new@example.cl")[0].body.trim(), "clave");
        assert!(watcher.to("old@example.cl").is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
