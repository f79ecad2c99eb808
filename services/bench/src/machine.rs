//! What the benchmark ran on, read from `/proc`, so every report says how
//! big the machine was: figures from two shared cores and from a server are
//! not comparable.

use serde::{Deserialize, Serialize};

/// The machine, as the report describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs (`processor` entries in /proc/cpuinfo).
    pub cores: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// Whether this binary was built with debug assertions (a `cargo build`
    /// without `--release`): such a build is several times slower.
    pub debug_build: bool,
}

impl Machine {
    /// Reads /proc; a missing file leaves its fields empty rather than failing.
    pub fn detect() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let (cores, cpu_model) = parse_cpuinfo(&cpuinfo);
        let cores = if cores == 0 { std::thread::available_parallelism().map_or(0, usize::from) } else { cores };
        Self {
            cores,
            cpu_model,
            memory_gib: parse_meminfo_gib(&read("/proc/meminfo")).unwrap_or(0.0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            debug_build: cfg!(debug_assertions),
        }
    }
}

/// (logical CPUs, model name of the first one).
pub fn parse_cpuinfo(text: &str) -> (usize, String) {
    let value = |line: &str| line.split_once(':').map(|(_, value)| value.trim().to_string());
    let cores = text.lines().filter(|line| line.starts_with("processor")).count();
    let model = text.lines().find(|line| line.starts_with("model name")).and_then(value).unwrap_or_default();
    (cores, model)
}

/// MemTotal in GiB.
pub fn parse_meminfo_gib(text: &str) -> Option<f64> {
    let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_gives_count_and_model() {
        let text =
            "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpuinfo(text), (2, "AMD EPYC 7B13".to_string()));
    }

    #[test]
    fn meminfo_gives_gibibytes() {
        let gib = parse_meminfo_gib("MemTotal:       25165824 kB\nMemFree: 1 kB\n").expect("MemTotal");
        assert!((gib - 24.0).abs() < 1e-9);
        assert_eq!(parse_meminfo_gib("nothing"), None);
    }
}
