//! The shared SMTP sink's mail: the `.eml` files it writes into
//! `MAMOCHI_MAIL_DIR` (set by `deploy/local/stack env`), found by their
//! Message-ID, with their headers and quoted-printable-decoded body.

use std::path::{Path, PathBuf};

use uuid::Uuid;

/// The shared SMTP sink's directory.
pub fn mail_dir() -> PathBuf {
    PathBuf::from(std::env::var("MAMOCHI_MAIL_DIR").expect("MAMOCHI_MAIL_DIR is set (deploy/local/stack env)"))
}

/// Every `.eml` in `dir` (finished files only; the sink renames when done).
pub fn eml_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".eml"))
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .collect()
}

/// The `.eml` files in `dir` whose Message-ID is the request's.
pub fn emails_with_id(dir: &Path, message_id: Uuid) -> Vec<String> {
    let header = format!("Message-ID: <{message_id}@mamochi.cl>");
    eml_files(dir).into_iter().filter(|text| text.lines().any(|line| line.trim_end() == header)).collect()
}

/// The value of a header of a raw message.
pub fn header<'a>(eml: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    eml.lines().find_map(|line| line.strip_prefix(prefix.as_str())).map(str::trim_end)
}

/// The body of a raw message, quoted-printable decoded, with `\n` line ends.
pub fn body(eml: &str) -> String {
    let raw = eml.split_once("\r\n\r\n").or_else(|| eml.split_once("\n\n")).map(|(_, body)| body).unwrap_or("");
    decode_quoted_printable(raw)
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Some(byte) = joined.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_decodes_quoted_printable_and_soft_breaks() {
        let eml = "Subject: x\r\n\r\nSe=C3=B1ora, tu semana=\r\n cerr=C3=B3.\r\n";
        assert_eq!(body(eml), "Señora, tu semana cerró.\n");
        assert_eq!(header(eml, "Subject"), Some("x"));
    }
}
