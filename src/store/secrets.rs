//! Secrets at rest: provider credentials are sealed with AES-256-GCM under a master key; API
//! keys are kept only as SHA-256 hashes (they are random and long, so a slow hash adds nothing).

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::{StoreError, StoreResult};
use crate::env;

pub const MASTER_KEY_FILE: &str = "master.key";
const NONCE_LEN: usize = 12;

/// Encrypts and decrypts provider secrets. Its `Debug` never shows the key.
pub struct Cipher(Aes256Gcm);

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<redacted>)")
    }
}

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Cipher {
        Cipher(Aes256Gcm::new(key.into()))
    }

    /// The master key from `TOLLGATE_MASTER_KEY` (64 hex digits or base64 of 32 bytes), else from
    /// `master.key` in the data dir, created with mode 0600 on first start.
    pub fn load(data_dir: &Path) -> StoreResult<Cipher> {
        if let Some(text) = env::var(env::TOLLGATE_MASTER_KEY) {
            return decode_key(&text).map(|k| Cipher::new(&k)).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{} must be 32 bytes as 64 hex digits or base64",
                    env::TOLLGATE_MASTER_KEY
                ))
            });
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => decode_key(&text).map(|k| Cipher::new(&k)).ok_or_else(|| {
                StoreError::Invalid(format!("{} is not a valid master key", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                write_private(&path, hex(&key).as_bytes())
                    .map_err(|e| StoreError::Other(format!("writing {}: {e}", path.display())))?;
                Ok(Cipher::new(&key))
            }
            Err(e) => Err(StoreError::Other(format!(
                "reading {}: {e}",
                path.display()
            ))),
        }
    }

    /// `nonce || ciphertext`, bound to `context` (the owning record's id) so a sealed value
    /// cannot be moved to another record.
    pub fn seal(&self, context: &str, plaintext: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> StoreResult<String> {
        let fail = || {
            StoreError::Other("a stored secret could not be decrypted: is the master key the one it was sealed with?".into())
        };
        if sealed.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let plain = self
            .0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?
    };
    bytes.try_into().ok()
}

/// Lower-case hex; used on every request (key hashes, ids), so without `format!`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
}

/// Writes `contents` to `path` with mode 0600 via a temporary file and a rename, so a reader
/// never sees half a file.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Creates a directory (and its parents) that only its owner can enter.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Prefix of every tollgate API key, so one is recognisable in a log or a leak scanner.
pub const API_KEY_PREFIX: &str = "tgk_";

/// A new random API key: `tgk_` and 40 characters of `[A-Za-z0-9]` (about 238 bits).
pub fn new_api_key() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let body: String = (0..40)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("{API_KEY_PREFIX}{body}")
}

pub fn hash_api_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// The first characters up to a separator and the last four, e.g. `sk-…wxyz`, `tgk_…a1b2`.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        let tail: String = chars[chars.len().saturating_sub(2)..].iter().collect();
        return format!("…{tail}");
    }
    let head_len = chars
        .iter()
        .take(8)
        .position(|c| matches!(c, '-' | '_'))
        .map_or(3, |i| i + 1);
    let head: String = chars[..head_len].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_context() {
        let c = Cipher::new(&[7; 32]);
        let sealed = c.seal("id-1", "sk-secret");
        assert!(!sealed.windows(9).any(|w| w == b"sk-secret"));
        assert_eq!(c.open("id-1", &sealed).unwrap(), "sk-secret");
        assert!(c.open("id-2", &sealed).is_err());
        assert!(Cipher::new(&[8; 32]).open("id-1", &sealed).is_err());
    }

    #[test]
    fn masks_keep_prefix_and_last_four() {
        assert_eq!(mask("sk-proj-abcdefghijklwxyz"), "sk-…wxyz");
        assert_eq!(mask("tgk_abcdefghijklmnop1234"), "tgk_…1234");
        assert_eq!(mask("abcdefghijklmnop"), "abc…mnop");
        assert_eq!(mask("short"), "…rt");
    }

    #[test]
    fn api_keys_are_prefixed_and_hashed() {
        let k = new_api_key();
        assert!(k.starts_with(API_KEY_PREFIX) && k.len() == 44);
        assert_eq!(hash_api_key(&k), hash_api_key(&k));
        assert_ne!(hash_api_key(&k), hash_api_key(&new_api_key()));
    }

    #[test]
    fn master_key_accepts_hex_and_base64() {
        assert_eq!(decode_key(&"ab".repeat(32)), Some([0xab; 32]));
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert_eq!(decode_key(&b64), Some([1; 32]));
        assert_eq!(decode_key("nope"), None);
    }
}
