//! Reads the SMTP sink's mail directory: one `.eml` file per message, in
//! arrival order, parsed with mail-parser so encoded bodies (quoted-printable,
//! base64) read as the text the recipient sees.

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

/// Every message in `dir`, oldest first; files being written are skipped.
pub fn read_all(dir: &Path) -> std::io::Result<Vec<Mail>> {
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
    let mut mails = Vec::with_capacity(files.len());
    for file in files {
        let raw = std::fs::read(&file)?;
        if let Some(mail) = parse(&raw) {
            mails.push(Mail { file, ..mail });
        }
    }
    Ok(mails)
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
