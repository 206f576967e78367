//! The service's API tokens: bearer tokens kept in the store as SHA-256
//! hashes (a token is 256 random bits, so a fast hash is enough; the token
//! itself is shown once, when it is created), each with a role.

use super::{Store, StoreError};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{OptionalExtension, params};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read: every GET.
    Read,
    /// Read, and start and cancel scans.
    Scan,
    /// Everything: delete scans, plugins, tokens.
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Scan => "scan",
            Role::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "read" => Some(Role::Read),
            "scan" => Some(Role::Scan),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as stored: never the token itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRow {
    /// Its name, for people (`ci`, `dashboard`).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created, RFC 3339.
    pub created: String,
}

/// The prefix of every token, so a leaked one is recognisable (secret
/// scanners key on prefixes).
const PREFIX: &str = "wscan_";

fn hash(token: &str) -> String {
    digest(&SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `a` and `b` are equal, taking the same time wherever they
/// differ (a token check must not tell how much of a guess was right).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Store {
    /// Create token `name` with `role`; the token, which is not stored and
    /// cannot be shown again.
    pub fn create_token(&self, name: &str, role: Role) -> Result<String, StoreError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StoreError::Random)?;
        let token: String = std::iter::once(PREFIX.to_string())
            .chain(bytes.iter().map(|b| format!("{b:02x}")))
            .collect();
        let inserted = self.conn.execute(
            "INSERT OR IGNORE INTO tokens (name, role, hash, created) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), hash(&token), crate::output::now()],
        )?;
        if inserted == 0 {
            return Err(StoreError::TokenExists(name.to_string()));
        }
        Ok(token)
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, role, created FROM tokens ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut tokens = Vec::new();
        for row in rows {
            let (name, role, created) = row?;
            let role = Role::parse(&role).ok_or(StoreError::BadRole(role))?;
            tokens.push(TokenRow {
                name,
                role,
                created,
            });
        }
        Ok(tokens)
    }

    /// Whether any token exists (the service then asks for one).
    pub fn has_tokens(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM tokens LIMIT 1", [], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Delete token `name`; whether there was one.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM tokens WHERE name = ?1", [name])?
            > 0)
    }

    /// The token `token` is, if it is one: its hash compared with every
    /// stored one, each in constant time.
    pub fn check_token(&self, token: &str) -> Result<Option<TokenRow>, StoreError> {
        let presented = hash(token);
        let mut stmt = self
            .conn
            .prepare("SELECT name, role, hash, created FROM tokens")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut found = None;
        for row in rows {
            let (name, role, stored, created) = row?;
            if same(presented.as_bytes(), stored.as_bytes()) {
                let role = Role::parse(&role).ok_or(StoreError::BadRole(role))?;
                found = Some(TokenRow {
                    name,
                    role,
                    created,
                });
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_shown_once_stored_hashed_and_checked_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        assert!(!store.has_tokens().unwrap());
        let token = store.create_token("ci", Role::Scan).unwrap();
        assert!(
            token.starts_with("wscan_") && token.len() == 6 + 64,
            "{token}"
        );
        assert!(matches!(
            store.create_token("ci", Role::Read),
            Err(StoreError::TokenExists(_))
        ));
        let stored: String = store
            .conn
            .query_row("SELECT hash FROM tokens", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, token);
        let found = store.check_token(&token).unwrap().unwrap();
        assert_eq!((found.name.as_str(), found.role), ("ci", Role::Scan));
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push('x');
        assert!(store.check_token(&wrong).unwrap().is_none());
        assert!(store.revoke_token("ci").unwrap());
        assert!(store.check_token(&token).unwrap().is_none());
        assert!(!store.revoke_token("ci").unwrap());
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }
}
