//! Typed plugin arguments: declaring them in `describe()` and reading them
//! in `scan()`.
//!
//! The host checks every `--plugin-arg` value against the declared kind
//! before the scan starts (a bad value is a usage error, exit 2) and fills
//! in defaults, so a plugin reads parsed values and never parses text:
//!
//! ```no_run
//! use wscan_sdk::prelude::*;
//! # fn f(options: ScanOptions) {
//! let info = PluginInfo::new("p", "1.0.0", "demo")
//!     .arg(ArgInfo::boolean("banner", "read a banner").default(true))
//!     .arg(ArgInfo::integer("bytes", "bytes to keep", 1..=65536).default(512));
//! // In scan(): every argument with a default has a value.
//! let banner = options.boolean("banner").unwrap_or(true);
//! let bytes: u32 = options.integer("bytes").unwrap_or(512);
//! # }
//! ```

use crate::bindings::wscan::plugin::types::{
    ArgInfo, ArgKind, ArgValue, IntRange, MillisRange, ScanOptions,
};
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::time::Duration;

impl ArgInfo {
    fn of(name: &str, description: &str, kind: ArgKind) -> Self {
        ArgInfo {
            name: name.to_string(),
            description: description.to_string(),
            kind,
            default: None,
        }
    }

    /// A yes/no argument: `true`/`false` (or `yes`/`no`, `on`/`off`, `1`/`0`).
    pub fn boolean(name: &str, description: &str) -> Self {
        Self::of(name, description, ArgKind::Boolean)
    }

    /// A whole number within `range`.
    pub fn integer(name: &str, description: &str, range: RangeInclusive<i64>) -> Self {
        let kind = ArgKind::Integer(IntRange {
            min: *range.start(),
            max: *range.end(),
        });
        Self::of(name, description, kind)
    }

    /// A duration written with a unit (`500ms`, `2s`, `1m`), within `range`
    /// (whole milliseconds, at most about 49 days).
    pub fn duration(name: &str, description: &str, range: RangeInclusive<Duration>) -> Self {
        let ms = |d: &Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let kind = ArgKind::Duration(MillisRange {
            min: ms(range.start()),
            max: ms(range.end()),
        });
        Self::of(name, description, kind)
    }

    /// Any text.
    pub fn text(name: &str, description: &str) -> Self {
        Self::of(name, description, ArgKind::Text)
    }

    /// Comma-separated text items (`a,b,c`).
    pub fn text_list(name: &str, description: &str) -> Self {
        Self::of(name, description, ArgKind::TextList)
    }

    /// One word out of `choices`, matched without regard to case; the
    /// plugin reads it in the spelling given here.
    pub fn choice(name: &str, description: &str, choices: &[&str]) -> Self {
        let choices = choices.iter().map(|c| c.to_string()).collect();
        Self::of(name, description, ArgKind::Choice(choices))
    }

    /// Comma-separated words, each one of `choices`.
    pub fn choice_list(name: &str, description: &str, choices: &[&str]) -> Self {
        let choices = choices.iter().map(|c| c.to_string()).collect();
        Self::of(name, description, ArgKind::ChoiceList(choices))
    }

    /// The value used when the user gives none, written as a user would
    /// write it (`true`, `512`, `2s`, `a,b`). It must be valid for the
    /// kind, or the host refuses to load the plugin.
    pub fn default(mut self, value: impl Display) -> Self {
        self.default = Some(value.to_string());
        self
    }
}

impl ScanOptions {
    /// The value of argument `name`: the user's, else its default; `None`
    /// when it has neither.
    pub fn value(&self, name: &str) -> Option<&ArgValue> {
        self.args.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A [`boolean`](ArgInfo::boolean) argument.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        match self.value(name)? {
            ArgValue::Boolean(b) => Some(*b),
            other => mismatch(name, "boolean", other),
        }
    }

    /// An [`integer`](ArgInfo::integer) argument, within its declared
    /// range, as the integer type the caller wants:
    /// `let bytes: u32 = options.integer("bytes").unwrap_or(512);`
    /// (Declare a range that fits that type: a value that does not fit is
    /// a bug in the plugin, and panics.)
    pub fn integer<T: TryFrom<i64>>(&self, name: &str) -> Option<T> {
        match self.value(name)? {
            ArgValue::Integer(n) => Some(T::try_from(*n).unwrap_or_else(|_| {
                panic!(
                    "argument {name:?} = {n} does not fit in {}: declare a range that fits",
                    std::any::type_name::<T>()
                )
            })),
            other => mismatch(name, "integer", other),
        }
    }

    /// A [`duration`](ArgInfo::duration) argument.
    pub fn duration(&self, name: &str) -> Option<Duration> {
        match self.value(name)? {
            ArgValue::Duration(ms) => Some(Duration::from_millis(u64::from(*ms))),
            other => mismatch(name, "duration", other),
        }
    }

    /// A [`text`](ArgInfo::text) or [`choice`](ArgInfo::choice) argument.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            ArgValue::Text(s) | ArgValue::Choice(s) => Some(s),
            other => mismatch(name, "text or choice", other),
        }
    }

    /// A [`text_list`](ArgInfo::text_list) or
    /// [`choice_list`](ArgInfo::choice_list) argument; empty when absent.
    pub fn list(&self, name: &str) -> &[String] {
        match self.value(name) {
            None => &[],
            Some(ArgValue::TextList(v) | ArgValue::ChoiceList(v)) => v,
            Some(other) => mismatch(name, "list", other),
        }
    }
}

/// Reading an argument as another kind than its declaration is a bug in the
/// plugin: say so plainly (the host records the panic as the unit's error).
fn mismatch<T>(name: &str, asked: &str, value: &ArgValue) -> T {
    panic!("argument {name:?} was read as a {asked}, but its declared kind gives {value:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: Vec<(&str, ArgValue)>) -> ScanOptions {
        ScanOptions {
            ports: Vec::new(),
            timeout_ms: 1000,
            args: args.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    #[test]
    fn declarations_carry_kind_and_default() {
        let a = ArgInfo::integer("bytes", "d", 1..=10).default(5);
        assert!(matches!(
            a.kind,
            ArgKind::Integer(IntRange { min: 1, max: 10 })
        ));
        assert_eq!(a.default.as_deref(), Some("5"));
        let d = ArgInfo::duration(
            "wait",
            "d",
            Duration::from_millis(1)..=Duration::from_secs(60),
        );
        assert!(matches!(
            d.kind,
            ArgKind::Duration(MillisRange {
                min: 1,
                max: 60_000
            })
        ));
        let c = ArgInfo::choice_list("types", "d", &["A", "MX"]).default("A,MX");
        assert!(matches!(&c.kind, ArgKind::ChoiceList(v) if v == &["A", "MX"]));
    }

    #[test]
    fn values_are_read_by_kind() {
        let o = options(vec![
            ("banner", ArgValue::Boolean(false)),
            ("bytes", ArgValue::Integer(7)),
            ("wait", ArgValue::Duration(250)),
            ("method", ArgValue::Choice("HEAD".into())),
            ("types", ArgValue::ChoiceList(vec!["A".into()])),
        ]);
        assert_eq!(o.boolean("banner"), Some(false));
        assert_eq!(o.integer::<u8>("bytes"), Some(7));
        assert_eq!(o.duration("wait"), Some(Duration::from_millis(250)));
        assert_eq!(o.text("method"), Some("HEAD"));
        assert_eq!(o.list("types"), ["A"]);
        assert_eq!(o.integer::<i64>("missing"), None);
        assert!(o.list("missing").is_empty());
    }

    #[test]
    #[should_panic(expected = "read as a boolean")]
    fn reading_the_wrong_kind_is_a_plugin_bug() {
        options(vec![("bytes", ArgValue::Integer(7))]).boolean("bytes");
    }

    #[test]
    #[should_panic(expected = "does not fit in u8")]
    fn an_integer_that_does_not_fit_the_asked_type_is_a_plugin_bug() {
        options(vec![("bytes", ArgValue::Integer(300))]).integer::<u8>("bytes");
    }
}
