//! The rules a configuration must satisfy before any service starts with it,
//! shared by `mamochi config check` (which prints them) and `mamochi run`
//! (which refuses to start on them).
//!
//! Guarantees: [`Settings::validate`] checks every rule and reports every
//! broken one at once, each named by its dotted path (`distributor.restock_quantity`)
//! and why; it never reports a secret's value. Outside `profile = "local"` no
//! built-in development secret is accepted ([`Settings::builtin_secrets_in_use`]);
//! a new setting with a built-in secret default must be added to that list.

use secrecy::ExposeSecret;

use super::{KafkaSecurity, Profile, RateLimit, Settings, SmtpTls};

/// The compiled-in admin token (see `DEFAULTS`).
/// The compiled-in email seal key (see `DEFAULTS`).
const BUILTIN_SEAL_KEY: &str = "6d616d6f6368692d6c6f63616c2d6465762d6b65792d6e6f742d736563726574";
/// The password of the compiled-in database URL and of the local stack's role.
const BUILTIN_DB_PASSWORD: &str = "mamochi-local";

/// One broken rule: which setting, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the setting, as in the TOML file (`gateway.listen`).
    pub path: String,
    /// What is wrong with it, for a person to read.
    pub problem: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

/// Every broken rule of one configuration.
#[derive(Debug, Clone, thiserror::Error)]
pub struct InvalidSettings {
    pub profile: Profile,
    pub errors: Vec<FieldError>,
}

impl std::fmt::Display for InvalidSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration (profile {}), {} problem(s):", self.profile, self.errors.len())?;
        for error in &self.errors {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

/// Collects broken rules in the order they are checked.
#[derive(Debug, Default)]
struct Report {
    errors: Vec<FieldError>,
}

impl Report {
    fn fail(&mut self, path: &str, problem: impl Into<String>) {
        self.errors.push(FieldError { path: path.to_string(), problem: problem.into() });
    }

    fn require(&mut self, ok: bool, path: &str, problem: &str) {
        if !ok {
            self.fail(path, problem);
        }
    }

    fn positive<T: PartialOrd + Default + std::fmt::Display>(&mut self, path: &str, value: T) {
        if value <= T::default() {
            self.fail(path, format!("must be greater than zero, got {value}"));
        }
    }

    fn listen(&mut self, path: &str, value: &str) {
        if let Err(problem) = host_port(value, true) {
            self.fail(path, format!("{problem} (expected host:port, such as 127.0.0.1:8080; port 0 picks a free one)"));
        }
    }

    fn http_url(&mut self, path: &str, value: &str) {
        match Url::parse(value) {
            Ok(url) if url.scheme == "http" || url.scheme == "https" => {}
            Ok(url) => self.fail(path, format!("scheme `{}` is not http or https", url.scheme)),
            Err(problem) => self.fail(path, format!("not a URL: {problem}")),
        }
    }
}

impl Settings {
    /// Checks every rule; `Err` lists each broken one.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        let mut report = Report::default();
        self.check_kafka(&mut report);
        self.check_database(&mut report);
        self.check_smtp(&mut report);
        self.check_http(&mut report);
        self.check_business(&mut report);
        self.check_secrets(&mut report);
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            report.fail("log.filter", format!("not a log filter directive: {error}"));
        }
        if report.errors.is_empty() {
            Ok(())
        } else {
            Err(InvalidSettings { profile: self.profile, errors: report.errors })
        }
    }

    /// Paths of the settings that still hold a built-in development secret.
    pub fn builtin_secrets_in_use(&self) -> Vec<&'static str> {
        let mut paths = Vec::new();
        if self.secrets.email_seal_key.expose_secret().trim().eq_ignore_ascii_case(BUILTIN_SEAL_KEY) {
            paths.push("secrets.email_seal_key");
        }
        if Url::parse(self.database.url()).is_ok_and(|url| url.password() == Some(BUILTIN_DB_PASSWORD)) {
            paths.push("database.url");
        }
        if self.smtp.password.as_ref().is_some_and(|password| password.expose_secret() == BUILTIN_DB_PASSWORD) {
            paths.push("smtp.password");
        }
        paths
    }

    /// What every service checks when it is built: outside the local
    /// profile, `Err` names each built-in secret still in use.
    pub fn refuse_builtin_secrets(&self) -> Result<(), InvalidSettings> {
        let mut report = Report::default();
        self.check_builtin_secrets(&mut report);
        if report.errors.is_empty() {
            Ok(())
        } else {
            Err(InvalidSettings { profile: self.profile, errors: report.errors })
        }
    }

    fn check_builtin_secrets(&self, report: &mut Report) {
        if self.profile == Profile::Local {
            return;
        }
        for path in self.builtin_secrets_in_use() {
            let variable = format!("MAMOCHI__{}", path.replace('.', "__").to_uppercase());
            report.fail(
                path,
                format!(
                    "holds the built-in development secret, accepted only with profile = \"local\"; \
                     set your own (in the file or {variable})"
                ),
            );
        }
    }

    fn check_secrets(&self, report: &mut Report) {
        self.check_builtin_secrets(report);
        let key = self.secrets.email_seal_key.expose_secret().trim();
        if key.is_empty() {
            report.fail("secrets.email_seal_key", "is missing (empty)");
        } else if key.len() != 64 || hex::decode(key).is_err() {
            report.fail(
                "secrets.email_seal_key",
                format!("must be 64 hex characters (32 bytes), got {} characters", key.len()),
            );
        }
    }

    fn check_kafka(&self, report: &mut Report) {
        let kafka = &self.kafka;
        let servers: Vec<&str> =
            kafka.bootstrap_servers.split(',').map(str::trim).filter(|server| !server.is_empty()).collect();
        if servers.is_empty() {
            report.fail("kafka.bootstrap_servers", "is empty: name at least one broker as host:port");
        }
        for server in servers {
            // librdkafka accepts an optional `protocol://` before each broker.
            let address = server.split_once("://").map_or(server, |(_, rest)| rest);
            if let Err(problem) = host_port(address, false) {
                report.fail("kafka.bootstrap_servers", format!("broker `{server}`: {problem}"));
            }
        }
        report.require(!kafka.client_id.trim().is_empty(), "kafka.client_id", "is empty");
        report.positive("kafka.message_timeout_ms", kafka.message_timeout_ms);
        if kafka.security_protocol == KafkaSecurity::SaslSsl {
            if !["SCRAM-SHA-512", "SCRAM-SHA-256"].contains(&kafka.sasl_mechanism.as_str()) {
                report.fail(
                    "kafka.sasl_mechanism",
                    format!("`{}` is not SCRAM-SHA-512 or SCRAM-SHA-256", kafka.sasl_mechanism),
                );
            }
            let has_own = kafka.sasl_username.is_some() && kafka.sasl_password.is_some();
            if !has_own && kafka.principals.is_empty() {
                report.fail(
                    "kafka.sasl_username",
                    "sasl_ssl needs a principal: kafka.sasl_username and kafka.sasl_password, or kafka.principals",
                );
            }
        }
        if kafka.sasl_username.is_some() != kafka.sasl_password.is_some() {
            report.fail("kafka.sasl_password", "kafka.sasl_username and kafka.sasl_password must be set together");
        }
        let mut services: Vec<&String> = kafka.principals.keys().collect();
        services.sort();
        for service in services {
            let principal = &kafka.principals[service];
            if principal.username.trim().is_empty() || principal.password.expose_secret().is_empty() {
                report.fail(&format!("kafka.principals.{service}"), "needs a non-empty username and password");
            }
        }
        // The consumers' session timeout is 10 s; librdkafka refuses a
        // smaller poll interval when it creates the consumer.
        if kafka.max_poll_interval_ms < 10_000 {
            report.fail(
                "kafka.max_poll_interval_ms",
                format!("must be at least 10000 (the session timeout), got {}", kafka.max_poll_interval_ms),
            );
        }
    }

    fn check_database(&self, report: &mut Report) {
        match Url::parse(self.database.url()) {
            Ok(url) if url.scheme == "postgres" || url.scheme == "postgresql" => {}
            Ok(url) => report.fail("database.url", format!("scheme `{}` is not postgres or postgresql", url.scheme)),
            // The problem text never quotes the URL: it may hold a password.
            Err(problem) => report.fail("database.url", format!("not a URL: {problem}")),
        }
        // The pool's own reading of `sslmode` and `sslrootcert` (the CA file
        // must exist and hold a certificate).
        if let Err(error) = crate::db_tls::TlsUrl::parse(self.database.url()) {
            report.fail("database.url", error.to_string());
        }
        report.positive("database.pool_size", self.database.pool_size);
    }

    fn check_smtp(&self, report: &mut Report) {
        let smtp = &self.smtp;
        if let Err(problem) = host_port(&format!("{}:{}", smtp.host, smtp.port), false) {
            report.fail("smtp.host", problem);
        }
        report.positive("smtp.port", smtp.port);
        let address = smtp.from.rsplit_once('<').map_or(smtp.from.as_str(), |(_, rest)| rest.trim_end_matches('>'));
        if address.split_once('@').is_none_or(|(local, domain)| local.is_empty() || domain.is_empty()) {
            report.fail("smtp.from", "is not an email address (`Name <user@domain>` or `user@domain`)");
        }
        if smtp.username.is_some() != smtp.password.is_some() {
            report.fail("smtp.username", "smtp.username and smtp.password must be set together");
        }
        if smtp.password.is_some() && smtp.tls == SmtpTls::None && self.profile != Profile::Local {
            report.fail("smtp.tls", "is `none` while a password is set: the password would cross the network in clear");
        }
    }

    fn check_http(&self, report: &mut Report) {
        report.listen("gateway.listen", &self.gateway.listen);
        report.listen("gateway.ops_listen", &self.gateway.ops_listen);
        report.http_url("gateway.public_url", &self.gateway.public_url);
        report.positive("gateway.max_body_bytes", self.gateway.max_body_bytes);
        report.positive("gateway.max_in_flight", self.gateway.max_in_flight);
        report.positive("gateway.db_wait_ms", self.gateway.db_wait_ms);
        report.positive("gateway.idempotency_retention_hours", self.gateway.idempotency_retention_hours);
        report.positive("gateway.location_max_age_secs", self.gateway.location_max_age_secs);
        let limits = &self.gateway.rate_limits;
        for (name, limit) in [
            ("registrations_per_ip", limits.registrations_per_ip),
            ("status_reads_per_ip", limits.status_reads_per_ip),
            ("sales_per_key", limits.sales_per_key),
            ("depletions_per_cart", limits.depletions_per_cart),
            ("locations_per_cart", limits.locations_per_cart),
            ("cart_reports_per_cart", limits.cart_reports_per_cart),
            ("vendor_requests_per_key", limits.vendor_requests_per_key),
            ("admin_per_token", limits.admin_per_token),
        ] {
            let RateLimit { requests, per_secs, .. } = limit;
            if requests > 0 && per_secs == 0 {
                report.fail(
                    &format!("gateway.rate_limits.{name}.per_secs"),
                    "must be greater than zero while requests is (requests = 0 turns the limit off)",
                );
            }
        }
        for proxy in limits.trusted_proxies.split(',').map(str::trim).filter(|proxy| !proxy.is_empty()) {
            if proxy.parse::<std::net::IpAddr>().is_err() {
                report.fail("gateway.rate_limits.trusted_proxies", format!("`{proxy}` is not an IP address"));
            }
        }
        report.http_url("registry.url", &self.registry.url);
        report.listen("registry.listen", &self.registry.listen);
        report.require(!self.registry.topic.trim().is_empty(), "registry.topic", "is empty");
        for (index, user) in self.registry.basic_auth_users.iter().enumerate() {
            // Named by position: the entry itself holds a password.
            let well_formed = user
                .expose_secret()
                .split_once(':')
                .is_some_and(|(name, password)| !name.trim().is_empty() && !password.is_empty());
            if !well_formed {
                report.fail("registry.basic_auth_users", format!("entry {} is not `user:password`", index + 1));
            }
        }
        report.listen("approval.ops_listen", &self.approval.ops_listen);
        report.listen("distributor.ops_listen", &self.distributor.ops_listen);
        report.listen("accounting.ops_listen", &self.accounting.ops_listen);
        report.listen("notifier.ops_listen", &self.notifier.ops_listen);
    }

    fn check_business(&self, report: &mut Report) {
        let distributor = &self.distributor;
        report.positive("distributor.initial_stock", distributor.initial_stock);
        report.positive("distributor.restock_quantity", distributor.restock_quantity);
        if distributor.low_stock_threshold < 0 {
            report.fail(
                "distributor.low_stock_threshold",
                format!("must not be negative, got {}", distributor.low_stock_threshold),
            );
        } else if distributor.low_stock_threshold > distributor.restock_quantity {
            // A cart restocked from empty would still be below the threshold:
            // every restock would raise a low-stock alert at once.
            report.fail(
                "distributor.low_stock_threshold",
                format!(
                    "{} is above distributor.restock_quantity ({}): a restocked cart would still be low",
                    distributor.low_stock_threshold, distributor.restock_quantity
                ),
            );
        }
        report.positive("distributor.max_batch", distributor.max_batch);
        let tracking = &self.tracking;
        report.positive("tracking.silence_after_secs", tracking.silence_after_secs);
        report.positive("tracking.sold_within_secs", tracking.sold_within_secs);
        if !(tracking.radius_m.is_finite() && tracking.radius_m > 0.0) {
            report.fail("tracking.radius_m", format!("must be a positive number of metres, got {}", tracking.radius_m));
        }
        if tracking.working_hours_end > 24 {
            report
                .fail("tracking.working_hours_end", format!("must be at most 24, got {}", tracking.working_hours_end));
        } else if tracking.working_hours_start >= tracking.working_hours_end {
            report.fail(
                "tracking.working_hours_start",
                format!(
                    "{} is not before tracking.working_hours_end ({}): there would be no working hours",
                    tracking.working_hours_start, tracking.working_hours_end
                ),
            );
        }
        report.positive("tracking.check_interval_secs", tracking.check_interval_secs);
        if !is_email_address(&tracking.staff_email) {
            report.fail("tracking.staff_email", "is not an email address (`user@domain`)");
        }
        report.positive("tracking.max_batch", tracking.max_batch);
        if self.accounting.grace_period_secs < 0 {
            report.fail(
                "accounting.grace_period_secs",
                format!("must not be negative, got {}", self.accounting.grace_period_secs),
            );
        }
        report.positive("accounting.close_check_interval_secs", self.accounting.close_check_interval_secs);
        report.positive("accounting.max_batch", self.accounting.max_batch);
        report.positive("notifier.max_attempts", self.notifier.max_attempts);
        report.positive("notifier.give_up_after_secs", self.notifier.give_up_after_secs);
        report.positive("retention.prune_interval_secs", self.retention.prune_interval_secs);
        report.positive("retention.chunk_rows", self.retention.chunk_rows);
        if !(self.time.scale.is_finite() && self.time.scale > 0.0) {
            report.fail("time.scale", format!("must be a positive number, got {}", self.time.scale));
        }
    }
}

/// A bare `user@domain`: one `@`, both sides non-empty, no spaces or angle
/// brackets (the address goes into an email's `To:` as it is).
fn is_email_address(value: &str) -> bool {
    value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !value.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    })
}

/// Checks `host:port` (`[v6]:port` too); `port_zero_ok` for listen addresses.
fn host_port(value: &str, port_zero_ok: bool) -> Result<(), String> {
    let value = value.trim();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("unclosed `[` in an IPv6 address")?;
        (host, after.strip_prefix(':').ok_or(format!("`{value}` has no port"))?)
    } else {
        value.rsplit_once(':').ok_or(format!("`{value}` has no port"))?
    };
    check_host(host).map_err(|problem| format!("`{value}`: {problem}"))?;
    match port.parse::<u16>() {
        Ok(0) if !port_zero_ok => Err(format!("`{value}`: port 0 is not a port to connect to")),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("`{value}`: port `{port}` is not a number from 0 to 65535")),
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    if host.chars().any(|c| c.is_whitespace() || "/?#@[]<>\"'".contains(c)) {
        return Err(format!("`{host}` is not a host name or address"));
    }
    Ok(())
}

/// The parts of `scheme://[user[:password]@]host[:port][/path][?query]` that
/// the rules need; enough for the URLs MAMOCHI reads, no more.
#[derive(Debug)]
struct Url<'a> {
    scheme: &'a str,
    password: Option<&'a str>,
}

impl<'a> Url<'a> {
    /// Parses `value`; an error never quotes the user information.
    fn parse(value: &'a str) -> Result<Self, String> {
        let (scheme, rest) = value.split_once("://").ok_or("no `scheme://`")?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !scheme_ok {
            return Err("the scheme is not a URL scheme".to_string());
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, host_port_part) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        let password = userinfo.and_then(|info| info.split_once(':')).map(|(_, password)| password);
        // libpq reads the host from `?host=` (a socket directory) when the
        // authority has none.
        let host_in_query = tail.contains("host=");
        if host_port_part.is_empty() && !host_in_query {
            return Err("the host is empty".to_string());
        }
        if !host_port_part.is_empty() {
            let has_port = if host_port_part.starts_with('[') {
                host_port_part.contains("]:")
            } else {
                host_port_part.contains(':')
            };
            if has_port {
                host_port(host_port_part, false)?;
            } else {
                check_host(host_port_part.trim_start_matches('[').trim_end_matches(']'))?;
            }
        }
        if tail.chars().any(char::is_whitespace) {
            return Err("the path or query holds white space".to_string());
        }
        Ok(Self { scheme, password })
    }

    fn password(&self) -> Option<&'a str> {
        self.password
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(env: &[(&str, &str)]) -> Settings {
        let env = env.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect::<HashMap<_, _>>();
        Settings::load_with_env(None, Some(env)).expect("settings load")
    }

    fn paths(settings: &Settings) -> Vec<String> {
        match settings.validate() {
            Ok(()) => Vec::new(),
            Err(invalid) => invalid.errors.into_iter().map(|error| error.path).collect(),
        }
    }

    /// Secrets of one's own, so that only the rule under test can fail.
    const OWN_SECRETS: [(&str, &str); 2] = [
        ("MAMOCHI__SECRETS__EMAIL_SEAL_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
        ("MAMOCHI__DATABASE__URL", "postgres://mamochi:s3cret@db.internal:5432/mamochi"),
    ];

    fn production(extra: &[(&str, &str)]) -> Settings {
        let mut env = OWN_SECRETS.to_vec();
        env.extend_from_slice(extra);
        load(&env)
    }

    #[test]
    fn the_builtin_secrets_are_the_compiled_in_defaults() {
        let defaults = load(&[]);

        assert_eq!(defaults.profile, Profile::Production, "the default profile is not the local one");
        assert_eq!(defaults.builtin_secrets_in_use(), vec!["secrets.email_seal_key", "database.url"]);
    }

    #[test]
    fn the_defaults_are_refused_outside_the_local_profile_naming_each_secret() {
        let invalid = load(&[]).validate().expect_err("built-in secrets in production");

        let named: Vec<&str> = invalid.errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(named, vec!["secrets.email_seal_key", "database.url"]);
        assert!(invalid.to_string().contains("MAMOCHI__SECRETS__EMAIL_SEAL_KEY"), "{invalid}");
        assert!(!invalid.to_string().contains(BUILTIN_DB_PASSWORD), "no secret value in the message: {invalid}");
        assert!(load(&[]).refuse_builtin_secrets().is_err());
    }

    #[test]
    fn the_local_profile_accepts_the_defaults() {
        let local = load(&[("MAMOCHI__PROFILE", "local")]);

        assert_eq!(local.validate().map_err(|invalid| invalid.to_string()), Ok(()));
        assert!(local.refuse_builtin_secrets().is_ok());
    }

    #[test]
    fn own_secrets_pass_in_production() {
        let settings = production(&[]);

        assert_eq!(settings.validate().map_err(|invalid| invalid.to_string()), Ok(()));
    }

    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let settings = production(&[
            ("MAMOCHI__DISTRIBUTOR__INITIAL_STOCK", "-1"),
            ("MAMOCHI__DISTRIBUTOR__RESTOCK_QUANTITY", "0"),
            ("MAMOCHI__GATEWAY__LISTEN", "127.0.0.1:http"),
            ("MAMOCHI__REGISTRY__URL", "registry:8081"),
            ("MAMOCHI__KAFKA__BOOTSTRAP_SERVERS", " , "),
        ]);

        let found = paths(&settings);

        for expected in [
            "distributor.initial_stock",
            "distributor.restock_quantity",
            "distributor.low_stock_threshold",
            "gateway.listen",
            "registry.url",
            "kafka.bootstrap_servers",
        ] {
            assert!(found.iter().any(|path| path == expected), "{expected} missing from {found:?}");
        }
        assert_eq!(found.len(), 6, "nothing else is reported: {found:?}");
    }

    #[test]
    fn tracking_needs_positive_values_working_hours_and_a_staff_address() {
        let broken = production(&[
            ("MAMOCHI__TRACKING__SILENCE_AFTER_SECS", "0"),
            ("MAMOCHI__TRACKING__RADIUS_M", "-1"),
            ("MAMOCHI__TRACKING__WORKING_HOURS_START", "21"),
            ("MAMOCHI__TRACKING__WORKING_HOURS_END", "8"),
            ("MAMOCHI__TRACKING__STAFF_EMAIL", "guardia"),
        ]);
        let too_late = production(&[("MAMOCHI__TRACKING__WORKING_HOURS_END", "25")]);
        let all_day = production(&[
            ("MAMOCHI__TRACKING__WORKING_HOURS_START", "0"),
            ("MAMOCHI__TRACKING__WORKING_HOURS_END", "24"),
        ]);

        assert_eq!(
            paths(&broken),
            vec![
                "tracking.silence_after_secs",
                "tracking.radius_m",
                "tracking.working_hours_start",
                "tracking.staff_email"
            ]
        );
        assert_eq!(paths(&too_late), vec!["tracking.working_hours_end"]);
        assert_eq!(paths(&all_day), Vec::<String>::new());
    }

    #[test]
    fn a_threshold_above_the_restock_quantity_is_refused_and_equal_is_accepted() {
        let above = production(&[("MAMOCHI__DISTRIBUTOR__LOW_STOCK_THRESHOLD", "11")]);
        let equal = production(&[("MAMOCHI__DISTRIBUTOR__LOW_STOCK_THRESHOLD", "10")]);

        assert_eq!(paths(&above), vec!["distributor.low_stock_threshold"]);
        assert_eq!(paths(&equal), Vec::<String>::new());
    }

    #[test]
    fn a_seal_key_must_be_32_bytes_of_hex() {
        for bad in ["abc", "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", ""] {
            let settings = production(&[("MAMOCHI__SECRETS__EMAIL_SEAL_KEY", bad)]);
            assert_eq!(paths(&settings), vec!["secrets.email_seal_key"], "key {bad:?}");
        }
    }

    #[test]
    fn the_database_url_is_checked_without_quoting_it() {
        let settings = production(&[("MAMOCHI__DATABASE__URL", "mysql://root:hunter2@db:3306/x")]);

        let invalid = settings.validate().expect_err("wrong scheme");

        assert_eq!(invalid.errors.len(), 1);
        assert_eq!(invalid.errors[0].path, "database.url");
        assert!(!invalid.to_string().contains("hunter2"), "{invalid}");
    }

    #[test]
    fn a_built_in_database_password_is_found_in_any_url() {
        let settings = production(&[("MAMOCHI__DATABASE__URL", "postgresql://app:mamochi-local@db.internal/app")]);

        assert_eq!(paths(&settings), vec!["database.url"]);
    }

    #[test]
    fn listen_addresses_and_broker_lists() {
        assert!(host_port("127.0.0.1:0", true).is_ok());
        assert!(host_port("[::1]:8080", true).is_ok());
        assert!(host_port("0.0.0.0:70000", true).is_err());
        assert!(host_port("localhost", true).is_err());
        assert!(host_port("broker:0", false).is_err());
        let settings = production(&[("MAMOCHI__KAFKA__BOOTSTRAP_SERVERS", "SASL_SSL://b1:9093,b2:x")]);
        let invalid = settings.validate().expect_err("b2 has no port number");
        assert_eq!(invalid.errors.len(), 1);
        assert!(invalid.errors[0].problem.contains("b2:x"), "{invalid}");
    }

    #[test]
    fn urls() {
        assert!(Url::parse("http://127.0.0.1:8081").is_ok());
        assert!(Url::parse("https://api.mamochi.cl/base").is_ok());
        assert!(Url::parse("postgres://u@/db?host=/run/postgresql").is_ok());
        assert!(Url::parse("127.0.0.1:8081").is_err());
        assert!(Url::parse("http://").is_err());
        assert!(Url::parse("http://host:99999").is_err());
        assert_eq!(Url::parse("postgres://u:p@h:1/d").map(|url| url.password()), Ok(Some("p")));
    }

    #[test]
    fn registry_users_are_user_colon_password_and_never_quoted() {
        let settings = production(&[("MAMOCHI__REGISTRY__BASIC_AUTH_USERS", "ops:pw1,no-password-here,:pw3")]);

        let invalid = settings.validate().expect_err("two bad entries");

        let problems: Vec<&str> = invalid.errors.iter().map(|error| error.problem.as_str()).collect();
        assert_eq!(problems, vec!["entry 2 is not `user:password`", "entry 3 is not `user:password`"]);
        assert!(!invalid.to_string().contains("no-password-here"), "{invalid}");
    }

    #[test]
    fn sasl_ssl_needs_a_principal_and_a_scram_mechanism() {
        let without = production(&[("MAMOCHI__KAFKA__SECURITY_PROTOCOL", "sasl_ssl")]);
        let with = production(&[
            ("MAMOCHI__KAFKA__SECURITY_PROTOCOL", "sasl_ssl"),
            ("MAMOCHI__KAFKA__SASL_USERNAME", "admin"),
            ("MAMOCHI__KAFKA__SASL_PASSWORD", "pw"),
            ("MAMOCHI__KAFKA__SASL_MECHANISM", "PLAIN"),
        ]);

        assert_eq!(paths(&without), vec!["kafka.sasl_username"]);
        assert_eq!(paths(&with), vec!["kafka.sasl_mechanism"]);
    }

    #[test]
    fn database_tls_parameters_are_read_as_the_pool_reads_them() {
        let settings = production(&[("MAMOCHI__DATABASE__URL", "postgres://m:pw@db:5432/m?sslmode=verify-full")]);

        let invalid = settings.validate().expect_err("verify-full without a CA");

        assert_eq!(invalid.errors.len(), 1);
        assert!(invalid.errors[0].problem.contains("sslrootcert"), "{invalid}");
    }

    #[test]
    fn a_rate_limit_needs_a_period_and_proxies_are_addresses() {
        let settings = production(&[
            ("MAMOCHI__GATEWAY__RATE_LIMITS__SALES_PER_KEY__PER_SECS", "0"),
            ("MAMOCHI__GATEWAY__RATE_LIMITS__TRUSTED_PROXIES", "10.0.0.1, proxy.internal"),
        ]);

        assert_eq!(
            paths(&settings),
            vec!["gateway.rate_limits.sales_per_key.per_secs", "gateway.rate_limits.trusted_proxies"]
        );
    }

    #[test]
    fn smtp_credentials_in_clear_are_refused_outside_local() {
        let settings = production(&[("MAMOCHI__SMTP__USERNAME", "relay"), ("MAMOCHI__SMTP__PASSWORD", "pw")]);

        assert_eq!(paths(&settings), vec!["smtp.tls"]);
    }
}
