//! Which metric families a dashboard or an alert rule queries, read from its
//! PromQL with a small tokenizer, and which families a `/metrics` page
//! exports, read from its `# TYPE` lines.
//!
//! The tokenizer knows just enough PromQL to tell metric names from
//! everything else: strings, label matchers (`{…}`), ranges and subqueries
//! (`[…]`), numbers and durations, Grafana variables (`$__rate_interval`),
//! functions and aggregations (a name followed by `(`, `by` or `without`),
//! keywords, and the label lists of `by`, `without`, `on`, `ignoring`,
//! `group_left` and `group_right`. What is left is a metric name; `_bucket`,
//! `_sum` and `_count` map to their histogram's family, and `up`
//! (Prometheus's own) is left out. It does not validate PromQL: `promtool`
//! and Grafana do that.

use std::collections::BTreeSet;

use serde_json::Value;

/// Keywords whose parenthesised list that follows holds label names.
const LABEL_LIST_KEYWORDS: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Other words that are not metric names (compared in lower case).
const KEYWORDS: [&str; 8] = ["and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"];

/// Series Prometheus makes itself, not exported by any service.
const PROMETHEUS_OWN: [&str; 1] = ["up"];

/// The metric families `expr` queries.
pub fn metric_families(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut families = BTreeSet::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        match c {
            '"' | '\'' | '`' => at = skip_string(&chars, at),
            '#' => at = skip_while(&chars, at, |c| c != '\n'),
            '{' => at = skip_group(&chars, at, '{', '}'),
            '[' => at = skip_group(&chars, at, '[', ']'),
            '$' => at = skip_variable(&chars, at),
            _ if c.is_ascii_digit() || (c == '.' && chars.get(at + 1).is_some_and(char::is_ascii_digit)) => {
                // Numbers and durations (0.95, 1e3, 10m, 1h30m).
                at = skip_while(&chars, at, |c| c.is_ascii_alphanumeric() || c == '.');
            }
            _ if is_name_start(c) => {
                let end = skip_while(&chars, at, is_name_char);
                let name: String = chars[at..end].iter().collect();
                let lower = name.to_ascii_lowercase();
                let next = skip_while(&chars, end, char::is_whitespace);
                at = end;
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    if chars.get(next) == Some(&'(') {
                        at = skip_group(&chars, next, '(', ')');
                    }
                } else if KEYWORDS.contains(&lower.as_str())
                    || chars.get(next) == Some(&'(')
                    || grouping_follows(&chars, next)
                {
                    // A keyword, a function or aggregation being called, or an
                    // aggregation whose grouping comes first (`sum by (x) (…)`).
                } else if !PROMETHEUS_OWN.contains(&name.as_str()) {
                    families.insert(family(&name).to_string());
                }
            }
            _ => at += 1,
        }
    }
    families
}

/// The family a sample name belongs to: a histogram's `_bucket`, `_sum` and
/// `_count` series share their histogram's name.
pub fn family(name: &str) -> &str {
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(name)
}

/// The metric families a Grafana template variable's query reads:
/// `label_values(selector, label)` reads the selector's, `query_result(expr)`
/// the expression's; `label_values(label)`, `label_names()` and `metrics(…)`
/// name no metric.
pub fn variable_families(query: &str) -> BTreeSet<String> {
    let query = query.trim();
    if let Some(inner) = query.strip_prefix("label_values(").and_then(|rest| rest.strip_suffix(')')) {
        let arguments = split_top_level(inner, ',');
        return match arguments.as_slice() {
            [selector, _label] => metric_families(selector),
            _ => BTreeSet::new(),
        };
    }
    if let Some(inner) = query.strip_prefix("query_result(").and_then(|rest| rest.strip_suffix(')')) {
        return metric_families(inner);
    }
    BTreeSet::new()
}

/// Every PromQL expression in a Grafana dashboard: each `expr` of a query
/// target, wherever it sits (panels, rows' panels), and each template
/// variable's query.
pub fn dashboard_queries(dashboard: &Value) -> (Vec<String>, Vec<String>) {
    let mut exprs = Vec::new();
    collect_exprs(dashboard, &mut exprs);
    let variables = dashboard["templating"]["list"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|variable| variable["type"] == "query")
                .filter_map(|variable| match &variable["query"] {
                    Value::String(query) => Some(query.clone()),
                    Value::Object(query) => query.get("query").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    (exprs, variables)
}

fn collect_exprs(value: &Value, exprs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => exprs.push(expr.clone()),
                    _ => collect_exprs(value, exprs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, exprs)),
        _ => {}
    }
}

/// Every `expr:` of a Prometheus rule file: plain or quoted on its line, or a
/// block scalar (`|`, `>`) on the more indented lines below. Enough YAML for
/// rule files; not a YAML parser.
pub fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start().trim_start_matches("- ");
        let Some(value) = trimmed.strip_prefix("expr:") else { continue };
        let key_indent = line.len() - line.trim_start().len();
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let block: Vec<&str> = lines[index + 1..]
                .iter()
                .take_while(|next| next.trim().is_empty() || next.len() - next.trim_start().len() > key_indent)
                .map(|next| next.trim())
                .collect();
            exprs.push(block.join("\n").trim().to_string());
        } else if let Some(quoted) = value.strip_prefix('\'').and_then(|rest| rest.strip_suffix('\'')) {
            exprs.push(quoted.replace("''", "'"));
        } else if let Some(quoted) = value.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')) {
            exprs.push(quoted.replace("\\\"", "\"").replace("\\\\", "\\"));
        } else {
            exprs.push(value.to_string());
        }
    }
    exprs
}

/// The metric families a `/metrics` page (Prometheus text format) exports:
/// those with a `# TYPE` line, and the families of untyped samples.
pub fn exported_families(text: &str) -> BTreeSet<String> {
    let mut families = BTreeSet::new();
    for line in text.lines() {
        if let Some(declaration) = line.strip_prefix("# TYPE ") {
            if let Some(name) = declaration.split_whitespace().next() {
                families.insert(name.to_string());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let name: String = line.chars().take_while(|c| is_name_char(*c)).collect();
            if !name.is_empty() {
                families.insert(family(&name).to_string());
            }
        }
    }
    families
}

/// Whether the word at `at` is `by` or `without` (any case).
fn grouping_follows(chars: &[char], at: usize) -> bool {
    let end = skip_while(chars, at, is_name_char);
    let word: String = chars[at..end].iter().collect::<String>().to_ascii_lowercase();
    word == "by" || word == "without"
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn skip_while(chars: &[char], mut at: usize, keep: impl Fn(char) -> bool) -> usize {
    while at < chars.len() && keep(chars[at]) {
        at += 1;
    }
    at
}

/// Past the string opening at `at`; backslash escapes in `"` and `'` strings.
fn skip_string(chars: &[char], at: usize) -> usize {
    let quote = chars[at];
    let mut at = at + 1;
    while at < chars.len() {
        match chars[at] {
            '\\' if quote != '`' => at += 2,
            c if c == quote => return at + 1,
            _ => at += 1,
        }
    }
    at
}

/// Past the group opening at `at` and its matching close, nested groups and
/// strings included.
fn skip_group(chars: &[char], at: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    let mut at = at;
    while at < chars.len() {
        match chars[at] {
            '"' | '\'' | '`' => {
                at = skip_string(chars, at);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return at + 1;
                }
            }
            _ => {}
        }
        at += 1;
    }
    at
}

/// Past a Grafana variable: `$name`, `$__rate_interval` or `${name:format}`.
fn skip_variable(chars: &[char], at: usize) -> usize {
    if chars.get(at + 1) == Some(&'{') {
        skip_group(chars, at + 1, '{', '}')
    } else {
        skip_while(chars, at + 1, is_name_char)
    }
}

/// `text` split at `separator` where it is not inside brackets or a string.
fn split_top_level(text: &str, separator: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0_i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(open) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == open {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' | '{' | '[' => depth += 1,
                ')' | '}' | ']' => depth -= 1,
                _ if c == separator && depth == 0 => {
                    parts.push(std::mem::take(&mut current).trim().to_string());
                    continue;
                }
                _ => {}
            },
        }
        current.push(c);
    }
    parts.push(current.trim().to_string());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_families(expr).into_iter().collect()
    }

    #[test]
    fn a_bare_metric_is_its_own_family() {
        assert_eq!(names("mamochi_kafka_consumer_lag"), ["mamochi_kafka_consumer_lag"]);
    }

    #[test]
    fn functions_aggregations_and_grouping_labels_are_not_metrics() {
        let expr =
            r#"sum by (group, topic) (rate(mamochi_kafka_records_consumed_total{job="accounting"}[$__rate_interval]))"#;
        assert_eq!(names(expr), ["mamochi_kafka_records_consumed_total"]);
    }

    #[test]
    fn a_grouping_clause_after_the_aggregation_is_skipped_too() {
        let expr = "sum(rate(mamochi_gateway_http_requests_total[5m])) without (instance, method)";
        assert_eq!(names(expr), ["mamochi_gateway_http_requests_total"]);
    }

    #[test]
    fn histogram_series_map_to_their_family() {
        let expr = "histogram_quantile(0.95, sum by (le, lane) (rate(mamochi_approval_wait_seconds_bucket[5m]))) \
                    + rate(mamochi_accounting_end_to_end_seconds_sum[5m]) / rate(mamochi_accounting_end_to_end_seconds_count[5m])";
        assert_eq!(names(expr), ["mamochi_accounting_end_to_end_seconds", "mamochi_approval_wait_seconds"]);
    }

    #[test]
    fn label_matchers_strings_and_regexes_are_skipped() {
        let expr = r#"mamochi_gateway_http_requests_total{status=~"5..", route!="/v1/{id}", method='PO\'ST'}"#;
        assert_eq!(names(expr), ["mamochi_gateway_http_requests_total"]);
        let expr = r#"label_replace(mamochi_kafka_consumer_lag, "lane", "paid", "partition", "0")"#;
        assert_eq!(names(expr), ["mamochi_kafka_consumer_lag"]);
    }

    #[test]
    fn binary_operators_keywords_offsets_and_matching_are_understood() {
        let expr = "sum by (job, topic) (a_total unless a_total offset 10m) > 0 \
                    or on (job) group_left (topic) b_total / ignoring (reason) c_total \
                    AND bool d_gauge > Inf";
        assert_eq!(names(expr), ["a_total", "b_total", "c_total", "d_gauge"]);
    }

    #[test]
    fn prometheus_own_up_is_left_out_but_names_containing_it_are_not() {
        assert!(names("up == 0").is_empty());
        assert_eq!(names(r#"up{job="gateway"} * on (job) group_left up_time_seconds"#), ["up_time_seconds"]);
    }

    #[test]
    fn numbers_durations_and_grafana_variables_are_not_metrics() {
        let expr =
            "deriv(x_lag[5m:30s]) * 60 + 1e3 - 0.5 > ${threshold} + $__range_s and topk(5, y_total) @ 1609746000";
        assert_eq!(names(expr), ["x_lag", "y_total"]);
    }

    #[test]
    fn multi_line_expressions_with_comments_are_read_whole() {
        let expr = "sum by (group) (x_lag) > 1000 # the backlog\nand on (group)\nsum by (group) (deriv(x_lag[5m])) > 0";
        assert_eq!(names(expr), ["x_lag"]);
    }

    #[test]
    fn label_values_variables_read_their_selector_only() {
        let query = r#"label_values(mamochi_kafka_consumer_lag{job=~"a|b", topic="t"}, group)"#;
        assert_eq!(variable_families(query).into_iter().collect::<Vec<_>>(), ["mamochi_kafka_consumer_lag"]);
        assert!(variable_families("label_values(group)").is_empty());
        assert!(variable_families("label_names()").is_empty());
        let query = "query_result(topk(3, sum by (topic) (mamochi_kafka_records_produced_total)))";
        assert_eq!(variable_families(query).into_iter().collect::<Vec<_>>(), ["mamochi_kafka_records_produced_total"]);
    }

    #[test]
    fn rule_files_give_plain_quoted_and_block_expressions() {
        let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m\n\
                    \x20     - alert: B\n        expr: |\n          sum(a_total)\n          > 0\n\n        labels:\n          severity: x\n\
                    \x20     - alert: C\n        expr: 'b_total{x=''y''} > 1'\n      - record: r\n        expr: \"c_total{x=\\\"y\\\"}\"\n";
        assert_eq!(rule_exprs(yaml), ["up == 0", "sum(a_total)\n> 0", "b_total{x='y'} > 1", "c_total{x=\"y\"}"]);
    }

    #[test]
    fn dashboards_give_every_target_expression_and_variable_query() {
        let dashboard = serde_json::json!({
            "panels": [
                {"type": "row", "panels": [{"targets": [{"expr": "a_total"}]}]},
                {"targets": [{"expr": "b_total"}, {"expr": "c_total"}]}
            ],
            "templating": {"list": [
                {"type": "query", "query": {"query": "label_values(d_gauge, group)", "refId": "x"}},
                {"type": "query", "query": "label_values(e_gauge, topic)"},
                {"type": "custom", "query": "paid,standard"}
            ]}
        });

        let (exprs, variables) = dashboard_queries(&dashboard);

        assert_eq!(exprs, ["a_total", "b_total", "c_total"]);
        assert_eq!(variables, ["label_values(d_gauge, group)", "label_values(e_gauge, topic)"]);
    }

    #[test]
    fn exported_families_come_from_type_lines_and_samples() {
        let text = "# HELP a_seconds A histogram.\n# TYPE a_seconds histogram\na_seconds_bucket{le=\"+Inf\"} 1\n\
                    a_seconds_sum 0.1\na_seconds_count 1\n# TYPE b_total counter\nb_total{topic=\"t\"} 2\nc_untyped 3\n";
        let families: Vec<String> = exported_families(text).into_iter().collect();
        assert_eq!(families, ["a_seconds", "b_total", "c_untyped"]);
    }
}
