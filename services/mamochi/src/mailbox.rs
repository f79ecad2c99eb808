//! Reads the SMTP sink's mail directory: one `.eml` file per message, in
//! arrival order, parsed with mail-parser so encoded bodies (quoted-printable,
//! base64) read as the text the recipient sees. [`Mailbox`] follows the
//! directory from a moment on, parsing each new file once, so polling a sink
//! that holds tens of thousands of messages stays cheap.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use mail_parser::MessageParser;

/// One received email.
#[derive(Debug, Clone)]
pub struct Mail {
    pub file: PathBuf,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub body: String,
}

/// The `.eml` files in `dir`, oldest first (the sink names them by arrival);
/// files being written are skipped (they have another name until complete).
fn eml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    files.sort();
    Ok(files)
}

/// Every message in `dir`, oldest first; files being written are skipped.
pub fn read_all(dir: &Path) -> std::io::Result<Vec<Mail>> {
    let files = eml_files(dir)?;
    let mut mails = Vec::with_capacity(files.len());
    for file in files {
        let raw = std::fs::read(&file)?;
        if let Some(mail) = parse(&raw) {
            mails.push(Mail { file, ..mail });
        }
    }
    Ok(mails)
}

/// The messages that reach a mail directory from a moment on, in arrival
/// order: what was there when it was made is never read, and each later
/// file is parsed once, by the first [`Mailbox::refresh`] that sees it.
#[derive(Debug)]
pub struct Mailbox {
    dir: PathBuf,
    known: HashSet<PathBuf>,
    mails: Vec<Mail>,
}

impl Mailbox {
    /// Follows `dir` from now: the messages already there are left out.
    pub fn from_now(dir: &Path) -> std::io::Result<Self> {
        Ok(Self { dir: dir.to_path_buf(), known: eml_files(dir)?.into_iter().collect(), mails: Vec::new() })
    }

    /// Reads the files that arrived since the last call; returns every
    /// message since [`Mailbox::from_now`], oldest first.
    pub fn refresh(&mut self) -> std::io::Result<&[Mail]> {
        for file in eml_files(&self.dir)? {
            if self.known.contains(&file) {
                continue;
            }
            let raw = std::fs::read(&file)?;
            if let Some(mail) = parse(&raw) {
                self.mails.push(Mail { file: file.clone(), ..mail });
            }
            self.known.insert(file);
        }
        Ok(&self.mails)
    }

    /// The directory followed.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Messages addressed to `to` (case-insensitive).
pub fn for_recipient(dir: &Path, to: &str) -> std::io::Result<Vec<Mail>> {
    Ok(read_all(dir)?.into_iter().filter(|mail| mail.to.eq_ignore_ascii_case(to)).collect())
}

fn parse(raw: &[u8]) -> Option<Mail> {
    let message = MessageParser::default().parse(raw)?;
    let to =
        message.to().and_then(|to| to.first()).and_then(|address| address.address()).unwrap_or_default().to_string();
    Some(Mail {
        file: PathBuf::new(),
        to,
        subject: message.subject().unwrap_or_default().to_string(),
        message_id: message.message_id().unwrap_or_default().to_string(),
        body: message.body_text(0).map(|body| body.into_owned()).unwrap_or_default(),
    })
}

/// The API key in a credentials email, if there is one.
pub fn api_key(body: &str) -> Option<String> {
    body.split_whitespace()
        .map(|word| word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_'))
        .find(|word| word.starts_with("mamochi_") && word.len() == "mamochi_".len() + 64)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_mail(dir: &Path, name: &str, to: &str, subject: &str) {
        let raw = format!("From: MAMOCHI <no-reply@mamochi.cl>\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nhola\r\n");
        std::fs::write(dir.join(name), raw).expect("mail written");
    }

    #[test]
    fn a_mailbox_reads_only_what_arrived_after_it_was_made_each_file_once() {
        let dir = std::env::temp_dir().join(format!("mamochi-mailbox-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("directory");
        write_mail(&dir, "1000-000001.eml", "old@example.cl", "before");
        let mut mailbox = Mailbox::from_now(&dir).expect("mailbox");
        assert!(mailbox.refresh().expect("refresh").is_empty());

        write_mail(&dir, "1001-000002.eml", "rosa@example.cl", "first");
        write_mail(&dir, ".1002-000003.eml.part", "rosa@example.cl", "being written");
        let subjects: Vec<String> =
            mailbox.refresh().expect("refresh").iter().map(|mail| mail.subject.clone()).collect();
        assert_eq!(subjects, ["first"]);

        write_mail(&dir, "1002-000003.eml", "rosa@example.cl", "second");
        let subjects: Vec<String> =
            mailbox.refresh().expect("refresh").iter().map(|mail| mail.subject.clone()).collect();
        assert_eq!(subjects, ["first", "second"]);
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }

    #[test]
    fn a_quoted_printable_spanish_email_reads_as_text() {
        let raw = b"X-Sink-Mail-From: a@b\r\nFrom: MAMOCHI <no-reply@mamochi.cl>\r\nTo: rosa@example.cl\r\nSubject: =?utf-8?q?Inscripci=C3=B3n?=\r\nMessage-ID: <m1@mamochi.cl>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSu clave: mamochi_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef =C3=91u=C3=B1oa\r\n";

        let mail = parse(raw).expect("parses");

        assert_eq!(mail.to, "rosa@example.cl");
        assert_eq!(mail.subject, "Inscripción");
        assert_eq!(mail.message_id, "m1@mamochi.cl");
        assert!(mail.body.contains("Ñuñoa"));
        assert_eq!(
            api_key(&mail.body).as_deref(),
            Some("mamochi_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        );
    }
}
