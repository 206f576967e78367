//! Typed plugin arguments: what a plugin declares, and the check of the
//! text a user gives (`--plugin-arg NAME.KEY=VALUE`) against it.
//!
//! The host checks every value before a scan sends anything, so a typo is
//! a usage error (exit 2) rather than one error record per unit; the plugin
//! gets parsed values and never parses argument text itself.

use serde::Serialize;
use std::fmt;
use std::time::Duration;
use thiserror::Error;

/// The type of an argument's value, as a plugin declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ArgKind {
    /// `true` or `false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
    Boolean,
    /// A whole number from `min` to `max`, inclusive.
    Integer {
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// A duration with a unit, from `min_ms` to `max_ms` milliseconds.
    Duration {
        /// The shortest duration allowed, in milliseconds.
        min_ms: u32,
        /// The longest duration allowed, in milliseconds.
        max_ms: u32,
    },
    /// Any text.
    Text,
    /// Comma-separated text items; empty items are dropped.
    TextList,
    /// One of `choices`, matched without regard to case.
    Choice {
        /// The words allowed, in the plugin's spelling.
        choices: Vec<String>,
    },
    /// Comma-separated words, each one of `choices`.
    ChoiceList {
        /// The words allowed, in the plugin's spelling.
        choices: Vec<String>,
    },
}

/// A value checked against its [`ArgKind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ArgValue {
    /// Of [`ArgKind::Boolean`].
    Boolean(bool),
    /// Of [`ArgKind::Integer`].
    Integer(i64),
    /// Of [`ArgKind::Duration`], in milliseconds.
    Duration(u32),
    /// Of [`ArgKind::Text`].
    Text(String),
    /// Of [`ArgKind::TextList`].
    TextList(Vec<String>),
    /// Of [`ArgKind::Choice`], in the declared spelling.
    Choice(String),
    /// Of [`ArgKind::ChoiceList`], in the declared spelling.
    ChoiceList(Vec<String>),
}

/// Why a plugin's declaration of its arguments, or a user's argument, was
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArgError {
    /// The plugin declares no argument of that name.
    #[error("{plugin}.{key}: plugin {plugin} takes no argument {key:?} (it takes: {known})")]
    Unknown {
        /// The plugin's name.
        plugin: String,
        /// The key given.
        key: String,
        /// The keys it does take, comma-separated, or `none`.
        known: String,
    },
    /// The value does not fit the argument's kind.
    #[error("{plugin}.{key}={value}: expected {expected}")]
    BadValue {
        /// The plugin's name.
        plugin: String,
        /// The argument's key.
        key: String,
        /// The value given (shortened when long).
        value: String,
        /// What the kind accepts, in words.
        expected: String,
    },
    /// The plugin's own declaration is inconsistent (found at load time).
    #[error("argument {key:?}: {why}")]
    Declaration {
        /// The argument's key.
        key: String,
        /// What is wrong with it.
        why: String,
    },
}

const TRUE_WORDS: [&str; 4] = ["true", "yes", "on", "1"];
const FALSE_WORDS: [&str; 4] = ["false", "no", "off", "0"];

impl ArgKind {
    /// Parse `text` as a value of this kind; the error says, in words,
    /// what the kind accepts.
    pub fn parse(&self, text: &str) -> Result<ArgValue, String> {
        let trimmed = text.trim();
        let value = match self {
            ArgKind::Boolean => {
                let word = trimmed.to_ascii_lowercase();
                if TRUE_WORDS.contains(&word.as_str()) {
                    Some(ArgValue::Boolean(true))
                } else if FALSE_WORDS.contains(&word.as_str()) {
                    Some(ArgValue::Boolean(false))
                } else {
                    None
                }
            }
            ArgKind::Integer { min, max } => trimmed
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(&n))
                .map(ArgValue::Integer),
            // Whole milliseconds only: `1500us` is refused, not cut to 1ms.
            ArgKind::Duration { min_ms, max_ms } => humantime::parse_duration(trimmed)
                .ok()
                .filter(|d| d.subsec_nanos() % 1_000_000 == 0)
                .and_then(|d| u32::try_from(d.as_millis()).ok())
                .filter(|ms| (min_ms..=max_ms).contains(&ms))
                .map(ArgValue::Duration),
            ArgKind::Text => Some(ArgValue::Text(text.to_string())),
            ArgKind::TextList => Some(ArgValue::TextList(
                items(text).map(str::to_string).collect(),
            )),
            ArgKind::Choice { choices } => choose(choices, trimmed).map(ArgValue::Choice),
            ArgKind::ChoiceList { choices } => items(text)
                .map(|item| choose(choices, item))
                .collect::<Option<Vec<_>>>()
                .map(ArgValue::ChoiceList),
        };
        value.ok_or_else(|| self.expected())
    }

    /// What this kind accepts, in words: "expected {this}".
    pub fn expected(&self) -> String {
        match self {
            ArgKind::Boolean => "a boolean: true or false (or yes/no, on/off, 1/0)".into(),
            ArgKind::Integer { min, max } => format!("a whole number from {min} to {max}"),
            ArgKind::Duration { min_ms, max_ms } => format!(
                "a duration with a unit from {} to {}, such as 500ms or 2s",
                millis_text(*min_ms),
                millis_text(*max_ms)
            ),
            ArgKind::Text => "text".into(),
            ArgKind::TextList => "comma-separated text".into(),
            ArgKind::Choice { choices } => format!("one of {}", choices.join(", ")),
            ArgKind::ChoiceList { choices } => {
                format!("comma-separated words, each one of {}", choices.join(", "))
            }
        }
    }

    /// A short label for tables: `bool`, `int 1..65536`, `a|b|c`...
    pub fn label(&self) -> String {
        match self {
            ArgKind::Boolean => "bool".into(),
            ArgKind::Integer { min, max } => format!("int {min}..{max}"),
            ArgKind::Duration { min_ms, max_ms } => {
                format!(
                    "duration {}..{}",
                    millis_text(*min_ms),
                    millis_text(*max_ms)
                )
            }
            ArgKind::Text => "text".into(),
            ArgKind::TextList => "list".into(),
            ArgKind::Choice { choices } => choices.join("|"),
            ArgKind::ChoiceList { choices } => format!("list of {}", choices.join("|")),
        }
    }

    /// Is the declaration itself usable? (A range that is empty, or a
    /// choice nobody could type, would make every value an error.)
    fn check(&self) -> Result<(), String> {
        match self {
            ArgKind::Integer { min, max } if min > max => {
                Err(format!("integer range {min}..{max} is empty"))
            }
            ArgKind::Duration { min_ms, max_ms } if min_ms > max_ms => {
                Err(format!("duration range {min_ms}ms..{max_ms}ms is empty"))
            }
            ArgKind::Choice { choices } | ArgKind::ChoiceList { choices } => {
                if choices.is_empty() {
                    return Err("a choice needs at least one word".into());
                }
                for (i, c) in choices.iter().enumerate() {
                    if c.is_empty() || c.trim() != c || c.contains(',') {
                        return Err(format!(
                            "choice {c:?} must be non-empty, without commas or outer spaces"
                        ));
                    }
                    if choices[..i].iter().any(|d| d.eq_ignore_ascii_case(c)) {
                        return Err(format!("choice {c:?} is given twice"));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The non-empty, trimmed items of a comma-separated list.
fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn choose(choices: &[String], word: &str) -> Option<String> {
    choices
        .iter()
        .find(|c| c.eq_ignore_ascii_case(word))
        .cloned()
}

fn millis_text(ms: u32) -> String {
    humantime::format_duration(Duration::from_millis(ms.into())).to_string()
}

impl fmt::Display for ArgValue {
    /// The value as a user would write it, which parses back to itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgValue::Boolean(b) => write!(f, "{b}"),
            ArgValue::Integer(n) => write!(f, "{n}"),
            ArgValue::Duration(ms) => f.write_str(&millis_text(*ms)),
            ArgValue::Text(s) | ArgValue::Choice(s) => f.write_str(s),
            ArgValue::TextList(v) | ArgValue::ChoiceList(v) => f.write_str(&v.join(",")),
        }
    }
}

/// One argument a plugin accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgInfo {
    /// The key, as in `--plugin-arg PLUGIN.KEY=VALUE`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The type of its value.
    pub kind: ArgKind,
    /// The value used when it is not given, as text valid for `kind`.
    pub default: Option<String>,
}

/// Check a plugin's declared arguments: names that can be typed, given
/// once, usable kinds, and defaults valid for their kinds.
pub fn check_declared(args: &[ArgInfo]) -> Result<(), ArgError> {
    for (i, a) in args.iter().enumerate() {
        let refuse = |why: String| ArgError::Declaration {
            key: a.name.clone(),
            why,
        };
        if !super::valid_name(&a.name) {
            return Err(refuse(
                "use 1-64 lowercase letters, digits and '-' for a name".into(),
            ));
        }
        if args[..i].iter().any(|b| b.name == a.name) {
            return Err(refuse("declared twice".into()));
        }
        a.kind.check().map_err(refuse)?;
        if let Some(default) = &a.default {
            a.kind
                .parse(default)
                .map_err(|expected| refuse(format!("default {default:?} is not {expected}")))?;
        }
    }
    Ok(())
}

/// Check the user's `(key, text)` pairs for `plugin` against its declared
/// arguments, and give every declared argument that has a value (the
/// user's, else its default) in declaration order. A key given twice takes
/// the later value, as with most command-line flags.
pub fn resolve(
    plugin: &str,
    declared: &[ArgInfo],
    given: &[(String, String)],
) -> Result<Vec<(String, ArgValue)>, ArgError> {
    // Each value is parsed once, in the order given; a later one for the
    // same key replaces the earlier (every one is checked).
    let mut values: Vec<Option<ArgValue>> = vec![None; declared.len()];
    for (key, text) in given {
        let Some(at) = declared.iter().position(|a| &a.name == key) else {
            let known: Vec<&str> = declared.iter().map(|a| a.name.as_str()).collect();
            return Err(ArgError::Unknown {
                plugin: plugin.to_string(),
                key: key.clone(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        };
        let value = declared[at]
            .kind
            .parse(text)
            .map_err(|expected| ArgError::BadValue {
                plugin: plugin.to_string(),
                key: key.clone(),
                value: super::excerpt(text),
                expected,
            })?;
        values[at] = Some(value);
    }
    let mut resolved = Vec::new();
    for (arg, value) in declared.iter().zip(values) {
        // A default was checked when the plugin was loaded.
        let value = value.or_else(|| arg.default.as_deref().and_then(|d| arg.kind.parse(d).ok()));
        if let Some(value) = value {
            resolved.push((arg.name.clone(), value));
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str, kind: ArgKind, default: Option<&str>) -> ArgInfo {
        ArgInfo {
            name: name.into(),
            description: String::new(),
            kind,
            default: default.map(Into::into),
        }
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_kind_parses_good_text_and_refuses_bad_text() {
        let b = ArgKind::Boolean;
        assert_eq!(b.parse("Yes"), Ok(ArgValue::Boolean(true)));
        assert_eq!(b.parse("off"), Ok(ArgValue::Boolean(false)));
        assert!(b.parse("maybe").unwrap_err().contains("true or false"));

        let i = ArgKind::Integer { min: 1, max: 10 };
        assert_eq!(i.parse(" 10 "), Ok(ArgValue::Integer(10)));
        assert_eq!(i.parse("0").unwrap_err(), "a whole number from 1 to 10");
        assert!(i.parse("1.5").is_err());
        assert!(i.parse("99999999999999999999").is_err());

        let d = ArgKind::Duration {
            min_ms: 1,
            max_ms: 60_000,
        };
        assert_eq!(d.parse("1500ms"), Ok(ArgValue::Duration(1500)));
        assert_eq!(d.parse("1m"), Ok(ArgValue::Duration(60_000)));
        assert!(d.parse("5").unwrap_err().contains("1ms to 1m"));
        assert!(d.parse("2m").is_err());
        assert!(d.parse("0s").is_err());
        assert!(d.parse("1500us").is_err());

        assert_eq!(
            ArgKind::Text.parse(" a b "),
            Ok(ArgValue::Text(" a b ".into()))
        );
        assert_eq!(
            ArgKind::TextList.parse("a, ,b,"),
            Ok(ArgValue::TextList(words(&["a", "b"])))
        );

        let c = ArgKind::Choice {
            choices: words(&["GET", "HEAD"]),
        };
        assert_eq!(c.parse("head"), Ok(ArgValue::Choice("HEAD".into())));
        assert_eq!(c.parse("POST").unwrap_err(), "one of GET, HEAD");

        let l = ArgKind::ChoiceList {
            choices: words(&["A", "AAAA", "MX"]),
        };
        assert_eq!(
            l.parse("a,mx"),
            Ok(ArgValue::ChoiceList(words(&["A", "MX"])))
        );
        assert!(l.parse("a,TXT").is_err());
    }

    #[test]
    fn values_print_as_they_parse() {
        let kinds = [
            (ArgKind::Boolean, "no"),
            (ArgKind::Integer { min: -5, max: 5 }, "-3"),
            (
                ArgKind::Duration {
                    min_ms: 1,
                    max_ms: 10_000_000,
                },
                "90s",
            ),
            (ArgKind::TextList, "x,y"),
        ];
        for (kind, text) in kinds {
            let value = kind.parse(text).unwrap();
            assert_eq!(kind.parse(&value.to_string()).unwrap(), value, "{text}");
        }
    }

    #[test]
    fn declarations_are_checked() {
        let ok = [arg("banner", ArgKind::Boolean, Some("true"))];
        assert!(check_declared(&ok).is_ok());
        let cases = [
            (
                vec![arg("Banner", ArgKind::Boolean, None)],
                "lowercase letters",
            ),
            (
                vec![
                    arg("a", ArgKind::Boolean, None),
                    arg("a", ArgKind::Text, None),
                ],
                "declared twice",
            ),
            (
                vec![arg("n", ArgKind::Integer { min: 5, max: 1 }, None)],
                "is empty",
            ),
            (
                vec![arg("c", ArgKind::Choice { choices: vec![] }, None)],
                "at least one",
            ),
            (
                vec![arg(
                    "c",
                    ArgKind::ChoiceList {
                        choices: words(&["a,b"]),
                    },
                    None,
                )],
                "without commas",
            ),
            (
                vec![arg("b", ArgKind::Boolean, Some("perhaps"))],
                "default \"perhaps\" is not a boolean",
            ),
        ];
        for (args, why) in cases {
            let e = check_declared(&args).unwrap_err().to_string();
            assert!(e.contains(why), "{e} lacks {why}");
        }
    }

    #[test]
    fn resolve_fills_defaults_takes_the_last_value_and_names_bad_ones() {
        let declared = [
            arg("banner", ArgKind::Boolean, Some("true")),
            arg("bytes", ArgKind::Integer { min: 1, max: 100 }, Some("10")),
            arg("path", ArgKind::Text, None),
        ];
        let given = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            resolve("port", &declared, &given(&[("bytes", "5"), ("bytes", "7")])).unwrap(),
            vec![
                ("banner".into(), ArgValue::Boolean(true)),
                ("bytes".into(), ArgValue::Integer(7)),
            ]
        );
        assert_eq!(
            resolve("port", &declared, &given(&[("banner", "maybe")]))
                .unwrap_err()
                .to_string(),
            "port.banner=maybe: expected a boolean: true or false (or yes/no, on/off, 1/0)"
        );
        assert_eq!(
            resolve("port", &declared, &given(&[("colour", "red")]))
                .unwrap_err()
                .to_string(),
            "port.colour: plugin port takes no argument \"colour\" (it takes: banner, bytes, path)"
        );
        // A bad value is refused even when a later good one would win:
        // each --plugin-arg is checked as given.
        assert!(resolve("port", &declared, &given(&[("bytes", "0"), ("bytes", "5")])).is_err());
    }
}
