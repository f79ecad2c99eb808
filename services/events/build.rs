//! Generates the Rust event types from the Avro schemas in `schemas/`.
//!
//! `schemas/*.avsc` is the source of truth. rsgen-avro turns every schema into
//! serde types; this script adds, for each top-level schema, an
//! `AvroSchemaSource` impl carrying the raw `.avsc` text (registered as is,
//! never re-printed, so docs and defaults reach the registry intact) and the
//! file it came from. Cargo reruns it whenever a schema changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let schemas = manifest.join("../../schemas").canonicalize().expect("schemas/ exists at the workspace root");
    println!("cargo:rerun-if-changed={}", schemas.display());

    let mut files: Vec<PathBuf> = std::fs::read_dir(&schemas)
        .expect("schemas/ is readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "avsc"))
        .collect();
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let texts: Vec<String> =
        files.iter().map(|file| std::fs::read_to_string(file).expect("schema file is readable")).collect();
    let generator = rsgen_avro::Generator::builder().use_chrono_dates(true).build().expect("generator builds");
    let mut generated = Vec::new();
    let sources: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (file, text) in files.iter().zip(&sources) {
        generator
            .generate(&rsgen_avro::Source::SchemaStr(text), &mut generated)
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
    }
    let mut code = String::from_utf8(generated).expect("generated code is UTF-8");
    for (file, text) in files.iter().zip(&texts) {
        code.push_str(&schema_source_impl(file, text));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("events.rs");
    std::fs::write(out, code).expect("generated code is written");
}

/// `impl AvroSchemaSource for <Type>` for one schema file.
fn schema_source_impl(file: &Path, text: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
    let name = json["name"].as_str().unwrap_or_else(|| panic!("{}: a top-level named record", file.display()));
    let namespace = json["namespace"].as_str().unwrap_or_default();
    let file_name = file.file_name().and_then(|name| name.to_str()).expect("UTF-8 file name");
    let mut code = String::new();
    writeln!(
        code,
        "\nimpl crate::AvroSchemaSource for {name} {{\n    const SCHEMA: crate::SchemaSource = crate::SchemaSource {{\n        file: {file_name:?},\n        full_name: \"{namespace}.{name}\",\n        text: include_str!({path:?}),\n    }};\n}}",
        path = file.display().to_string(),
    )
    .expect("writing to a String");
    code
}
