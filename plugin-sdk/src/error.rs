//! The error a plugin's `scan` ends with.
//!
//! Host errors ([`ErrorCode`]) convert into it with `?` and keep their
//! readable message (`connection refused`, not `ErrorCode::ConnectionRefused`),
//! as do strings and the common parse errors; [`Context::context`] says
//! what was being done:
//!
//! ```no_run
//! use wscan_sdk::prelude::*;
//! # async fn f(ip: std::net::IpAddr) -> Result<(), Error> {
//! let conn = tcp::connect(ip, 6379, None).await.context("connect")?;
//! # Ok(()) }
//! ```

use crate::ErrorCode;
use std::fmt;

/// Why a scan of one subject failed: a message for the unit's `error`
/// record. Build one with `?`, `.into()` from a string, or [`Error::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ErrorCode> for Error {
    fn from(e: ErrorCode) -> Self {
        Error(e.message())
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error(message.to_string())
    }
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.0
    }
}

/// Errors of the standard library and serde_json that plugins meet when
/// they parse what a service said, converted by their own message.
macro_rules! from_display {
    ($($ty:ty),* $(,)?) => {
        $(impl From<$ty> for Error {
            fn from(e: $ty) -> Self {
                Error(e.to_string())
            }
        })*
    };
}

from_display!(
    std::net::AddrParseError,
    std::num::ParseIntError,
    std::num::ParseFloatError,
    std::str::Utf8Error,
    std::string::FromUtf8Error,
    std::fmt::Error,
    serde_json::Error,
);

/// Say what was being done when an error happened:
/// `.context("connect")?` gives `connect: connection refused`.
pub trait Context<T> {
    /// Prefix the error's message with `what` and a colon.
    fn context(self, what: impl fmt::Display) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|e| Error(format!("{what}: {}", e.into().0)))
    }
}

impl<T> Context<T> for Option<T> {
    /// `None` becomes an error that says `what` (no colon: nothing follows).
    fn context(self, what: impl fmt::Display) -> Result<T, Error> {
        self.ok_or_else(|| Error(what.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> Result<(), ErrorCode> {
        Err(ErrorCode::ConnectionRefused)
    }

    fn scan() -> Result<(), Error> {
        refused()?;
        Ok(())
    }

    #[test]
    fn host_errors_keep_their_readable_message() {
        assert_eq!(scan().unwrap_err().message(), "connection refused");
        assert_eq!(
            refused().context("connect 127.0.0.1:6379").unwrap_err(),
            Error::new("connect 127.0.0.1:6379: connection refused")
        );
    }

    #[test]
    fn strings_parse_errors_and_options_convert() {
        let e: Error = "bad reply".into();
        assert_eq!(e.to_string(), "bad reply");
        let parse = || -> Result<u16, Error> { Ok("70000".parse::<u16>()?) };
        assert!(parse().unwrap_err().message().contains("too large"));
        let none: Option<u8> = None;
        assert_eq!(none.context("no reply").unwrap_err().message(), "no reply");
        let formatted: Result<(), String> = Err(format!("got {}", 3));
        assert_eq!(
            formatted.context("read").unwrap_err().message(),
            "read: got 3"
        );
    }
}
