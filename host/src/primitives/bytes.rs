//! Bytes in JSON as a person can read them: `{"text": ...}` when they are
//! UTF-8, else `{"base64": ...}`. Used by `plugin run --record` files for
//! what a connection read or wrote, a certificate's DER and a body; use it
//! on a field with `#[serde(with = "crate::primitives::bytes")]`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

/// `bytes` in the readable form.
pub fn to_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!({ "text": text }),
        Err(_) => json!({ "base64": STANDARD.encode(bytes) }),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Form {
    Text(String),
    Base64(String),
}

/// Serialize as [`to_json`] does.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    to_json(bytes).serialize(s)
}

/// Read either form back.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    match Form::deserialize(d)? {
        Form::Text(text) => Ok(text.into_bytes()),
        Form::Base64(b64) => STANDARD.decode(b64).map_err(serde::de::Error::custom),
    }
}
