//! Reading the configuration file: every problem at once, each with its key and line.
//!
//! Serde stops at the first error, so each key is first checked on its own: the
//! defaults with only that key replaced must deserialize. The file without its bad
//! keys is then deserialized with `deny_unknown_fields`, which must then succeed.

use std::collections::HashMap;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::{Problem, Settings};

/// The settings `path` describes over the defaults, and every problem in it (its bad
/// keys are left at their defaults, so that the rest can still be checked).
pub fn read(path: &Path) -> (Settings, Vec<Problem>) {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) => (
            Settings::default(),
            vec![Problem::new(
                "config",
                format!("cannot read {}: {e}", path.display()),
            )],
        ),
    }
}

/// The settings `text` (TOML) describes over the defaults, and every problem in it.
pub fn parse(text: &str) -> (Settings, Vec<Problem>) {
    let (document, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let problems = errors.iter().map(|e| syntax_problem(text, e)).collect();
        return (Settings::default(), problems);
    }
    let lines = key_lines(text, document.get_ref());
    let mut table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => return (Settings::default(), vec![syntax_problem(text, &e)]),
    };
    let schema = match toml::Table::try_from(Settings::default()) {
        Ok(schema) => schema,
        Err(e) => {
            let problem = Problem::new("defaults", e.to_string());
            return (Settings::default(), vec![problem]);
        }
    };

    let mut problems = Vec::new();
    table.retain(|section, value| {
        let line = lines.get(section).copied();
        let Some(known) = schema.get(section).and_then(toml::Value::as_table) else {
            problems.push(
                Problem::new(
                    section,
                    format!("unknown section; the sections are {}", list(&schema)),
                )
                .at_line(line),
            );
            return false;
        };
        let type_str = value.type_str();
        let Some(given) = value.as_table_mut() else {
            problems.push(
                Problem::new(
                    section,
                    format!("must be a section, [{section}], not a {type_str}"),
                )
                .at_line(line),
            );
            return false;
        };
        given.retain(|key, value| {
            let path = format!("{section}.{key}");
            let line = lines.get(path.as_str()).copied();
            let Some(default) = known.get(key) else {
                problems.push(
                    Problem::new(
                        path,
                        format!("unknown key; [{section}] has {}", list(known)),
                    )
                    .at_line(line),
                );
                return false;
            };
            match check_one(&schema, section, key, value) {
                Ok(()) => true,
                Err(why) => {
                    problems.push(
                        Problem::new(path, format!("{why} (the default is {default})"))
                            .at_line(line),
                    );
                    false
                }
            }
        });
        true
    });
    // In the file's order, whatever order the table keeps.
    problems.sort_by(|a, b| (a.line, &a.key).cmp(&(b.line, &b.key)));
    match toml::Value::Table(table).try_into::<Settings>() {
        Ok(settings) => (settings, problems),
        Err(e) => {
            problems.push(Problem::new("config", e.message().trim().to_string()));
            (Settings::default(), problems)
        }
    }
}

/// Whether `value` is acceptable for `section.key`, everything else at its default.
fn check_one(
    schema: &toml::Table,
    section: &str,
    key: &str,
    value: &toml::Value,
) -> Result<(), String> {
    let mut probe = schema.clone();
    if let Some(toml::Value::Table(s)) = probe.get_mut(section) {
        s.insert(key.to_string(), value.clone());
    }
    toml::Value::Table(probe)
        .try_into::<Settings>()
        .map(|_| ())
        .map_err(|e| e.message().trim().to_string())
}

fn list(table: &toml::Table) -> String {
    table
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let (line, column) = match e.span() {
        Some(span) => line_column(text, span.start),
        None => (None, None),
    };
    let message = e.message().trim();
    let message = match column {
        Some(c) => format!("column {c}: {message}"),
        None => message.to_string(),
    };
    Problem::new("syntax", message).at_line(line)
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    let Some(before) = text.get(..offset) else {
        return (None, None);
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (Some(line), Some(column))
}

/// The line of each `section` and `section.key` as written in the file.
fn key_lines(text: &str, document: &DeTable<'_>) -> HashMap<String, usize> {
    let mut lines = HashMap::new();
    for (section, value) in document {
        let name = section.get_ref().to_string();
        if let (Some(line), _) = line_column(text, section.span().start) {
            lines.insert(name.clone(), line);
        }
        if let DeValue::Table(keys) = value.get_ref() {
            for (key, _) in keys {
                if let (Some(line), _) = line_column(text, key.span().start) {
                    lines.insert(format!("{name}.{}", key.get_ref()), line);
                }
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(parse(""), (Settings::default(), vec![]));
    }

    #[test]
    fn a_key_overrides_its_default_only() {
        let (s, problems) = parse("[grpc]\nmax_message_bytes = 1024\n");
        assert_eq!(problems, []);
        assert_eq!(s.grpc.max_message_bytes, 1024);
        assert_eq!(
            s.grpc.drain_timeout_secs,
            Settings::default().grpc.drain_timeout_secs
        );
        assert_eq!(s.listen, Settings::default().listen);
    }

    #[test]
    fn every_problem_is_reported_with_its_key_and_line() {
        let text = "[grpc]\nmax_mesage_bytes = 1\nmax_concurrent_streams = \"many\"\n[listen]\nterminals = \"nowhere\"\n[colour]\nx = 1\n[search]\nttl_secs = 60\n";
        let (settings, problems) = parse(text);
        let found: Vec<_> = problems.iter().map(|p| (p.key.as_str(), p.line)).collect();
        assert_eq!(
            found,
            [
                ("grpc.max_mesage_bytes", Some(2)),
                ("grpc.max_concurrent_streams", Some(3)),
                ("listen.terminals", Some(5)),
                ("colour", Some(6)),
            ]
        );
        assert!(problems[0].message.contains("unknown key"), "{problems:?}");
        assert!(problems[1].message.contains("\"many\""), "{problems:?}");
        // The bad keys keep their defaults; the rest of the file still counts.
        assert_eq!(settings.listen, Settings::default().listen);
        assert_eq!(
            settings.grpc.max_concurrent_streams,
            Settings::default().grpc.max_concurrent_streams
        );
        assert_eq!(settings.search.ttl_secs, 60);
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let (_, problems) = parse("[grpc]\nmax_message_bytes = = 3\n");
        assert_eq!(problems[0].key, "syntax");
        assert_eq!(problems[0].line, Some(2));
        assert!(problems[0].message.starts_with("column "), "{problems:?}");
    }

    #[test]
    fn a_section_given_as_a_value_is_refused() {
        let (_, problems) = parse("log = \"debug\"\n");
        assert_eq!(problems[0].key, "log");
        assert!(
            problems[0].message.contains("must be a section"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_empty_string_leaves_an_optional_setting_unset() {
        let (s, problems) =
            parse("[store]\ndatabase_url = \"\"\n[upstream]\nurl = \"http://10.0.0.5:50052\"\n");
        assert_eq!(problems, []);
        assert_eq!(s.store.database_url, None);
        assert_eq!(s.upstream.url.as_deref(), Some("http://10.0.0.5:50052"));
    }
}
