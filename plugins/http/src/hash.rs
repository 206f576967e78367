//! The hashes other tools key web content on, so wscan's records join
//! with theirs: SHA-256 of a body, and the favicon hash of Shodan and
//! httpx (`http.favicon.hash`): MurmurHash3 (x86, 32-bit, seed 0, as a
//! signed integer) of the icon's base64 text in MIME form, 76 characters a
//! line, each line ending in a newline (Python's `base64.encodebytes`).

use base64::Engine;
use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The favicon hash of an icon's bytes, as Shodan's `http.favicon.hash`.
pub fn favicon_mmh3(icon: &[u8]) -> i32 {
    let text = base64::engine::general_purpose::STANDARD.encode(icon);
    let mut mime = String::with_capacity(text.len() + text.len() / 76 + 1);
    for line in text.as_bytes().chunks(76) {
        // Base64 text is ASCII: every chunk is whole characters.
        mime.push_str(std::str::from_utf8(line).unwrap_or_default());
        mime.push('\n');
    }
    let hash = murmur3::murmur3_32(&mut std::io::Cursor::new(mime.as_bytes()), 0).unwrap_or(0);
    // Reading from memory cannot fail; the hash is read as signed, as the
    // tools that publish it do.
    hash as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from Python's `mmh3` 5.x and `hashlib`:
    // mmh3.hash(codecs.encode(icon, "base64")), hashlib.sha256(icon).hexdigest()
    #[test]
    fn hashes_match_the_reference_implementations() {
        // icon = bytes(range(256)) * 3: 1,024 base64 characters, 14 lines.
        let icon: Vec<u8> = (0..3).flat_map(|_| 0..=255u8).collect();
        assert_eq!(favicon_mmh3(&icon), 1_836_528_006);
        // bytes(range(256)): a negative hash, as Shodan prints it.
        let short: Vec<u8> = (0..=255u8).collect();
        assert_eq!(favicon_mmh3(&short), -757_223_386);
        assert_eq!(
            sha256(&icon),
            "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363"
        );
    }
}
