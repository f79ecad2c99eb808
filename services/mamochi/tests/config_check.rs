//! `mamochi config check` and the start-up refusal, through the real binary:
//! a bad file is refused with every bad setting named, the local stack's own
//! environment (as `deploy/local/stack env` prints it) is accepted, and
//! `mamochi run` refuses the built-in secrets outside the local profile.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mamochi() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mamochi"));
    // Only what each test sets: no MAMOCHI__ variable of the caller leaks in.
    command.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mamochi-config-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write the file");
    path
}

/// The variables `deploy/local/stack env` exports, read from the script itself.
fn stack_env() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(root.join("deploy/local/stack")).arg("env").output().expect("stack env runs");
    assert!(output.status.success(), "stack env failed: {}", text(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(key, value)| (key.to_string(), value.trim_matches('\'').to_string()))
        .collect()
}

#[test]
fn a_bad_file_is_refused_naming_every_bad_setting() {
    // Arrange
    let file = temp_file(
        "bad.toml",
        r#"
[distributor]
initial_stock = -5
restock_quantity = 4
low_stock_threshold = 9

[gateway]
listen = "0.0.0.0:80800"
public_url = "api.mamochi.cl"

[registry]
url = "ftp://registry:8081"

[kafka]
bootstrap_servers = ""

[secrets]
email_seal_key = "not-hex"
"#,
    );

    // Act
    let output = mamochi().arg("config").arg("check").arg("--config").arg(&file).output().expect("runs");

    // Assert
    let said = text(&output);
    assert!(!output.status.success(), "a bad configuration exits non-zero: {said}");
    for path in [
        "distributor.initial_stock",
        "distributor.low_stock_threshold",
        "gateway.listen",
        "gateway.public_url",
        "registry.url",
        "kafka.bootstrap_servers",
        "secrets.email_seal_key",
        // No profile in the file or the environment: production, so the
        // built-in secrets left in place are named too.
        "database.url",
    ] {
        assert!(said.contains(&format!("  - {path}: ")), "{path} not named in:\n{said}");
    }
    assert!(said.contains("profile production"), "{said}");
    assert!(!said.contains("mamochi-local"), "a secret's value was printed:\n{said}");
}

#[test]
fn a_value_of_the_wrong_type_is_refused_naming_it() {
    let file = temp_file("wrong-type.toml", "[smtp]\nport = \"twenty-five\"\n");

    let output = mamochi().args(["config", "check"]).arg("--config").arg(&file).output().expect("runs");

    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("smtp.port"), "{said}");
}

#[test]
fn the_local_stacks_environment_is_valid_under_the_local_profile() {
    let output = mamochi().envs(stack_env()).args(["config", "check"]).output().expect("runs");

    let said = text(&output);
    assert!(output.status.success(), "the stack's env is refused:\n{said}");
    assert!(said.starts_with("configuration OK, profile local"), "{said}");
}

#[test]
fn own_secrets_are_valid_in_production() {
    let output = mamochi()
        .env("MAMOCHI__SECRETS__EMAIL_SEAL_KEY", "0f".repeat(32))
        .env("MAMOCHI__DATABASE__URL", "postgres://mamochi:another-password@db.internal:5432/mamochi")
        .args(["config", "check"])
        .output()
        .expect("runs");

    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert_eq!(said.trim(), "configuration OK, profile production");
}

#[test]
fn run_refuses_to_start_with_built_in_secrets_outside_the_local_profile() {
    // Arrange: the local stack's addresses, but not its profile.
    let env: Vec<(String, String)> = stack_env().into_iter().filter(|(key, _)| key != "MAMOCHI__PROFILE").collect();
    let mut child = mamochi()
        .envs(env)
        .env("MAMOCHI__GATEWAY__LISTEN", "127.0.0.1:0")
        .env("MAMOCHI__GATEWAY__OPS_LISTEN", "127.0.0.1:0")
        .args(["run", "gateway"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");

    // Act: it must exit by itself; one still running after the deadline has
    // started the gateway, which is the failure.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };

    // Assert
    let output = child.wait_with_output().expect("output");
    let said = text(&output);
    let status = status.unwrap_or_else(|| panic!("`mamochi run gateway` started with built-in secrets:\n{said}"));
    assert!(!status.success(), "{said}");
    for path in ["secrets.email_seal_key", "database.url"] {
        assert!(said.contains(path), "{path} not named in:\n{said}");
    }
}
