//! ed25519 key files: PKCS#8 / SPKI PEM (what `openssl genpkey -algorithm ed25519`
//! writes) or a single line of 64 hex digits (32 bytes: the secret seed or the public
//! key, depending on which loader reads it).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an ed25519 {kind} key (expected PEM or 64 hex digits): {detail}")]
    Malformed { path: PathBuf, kind: &'static str, detail: String },
    #[error("{path}: no trusted keys found (expected *.pub or *.pem files)")]
    NoKeys { path: PathBuf },
    #[error("{path}: already exists; refusing to overwrite a key")]
    Exists { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_owned(), source }
}

/// Path of the public half written next to a secret key: `<path>.pub`.
pub fn public_key_path(secret: &Path) -> PathBuf {
    let mut s = secret.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Creates a new key: secret PKCS#8 PEM at `path` (mode 0600, never overwriting) and
/// the public SPKI PEM at `<path>.pub`.
pub fn generate_signing_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Malformed {
        path: path.to_owned(),
        kind: "secret",
        detail: e.to_string(),
    })?;
    let pub_path = public_key_path(path);
    let pub_pem = key.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::Malformed {
        path: pub_path.clone(),
        kind: "public",
        detail: e.to_string(),
    })?;
    for p in [path, pub_path.as_path()] {
        if p.exists() {
            return Err(KeyError::Exists { path: p.to_owned() });
        }
    }
    let mut f =
        fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io_err(path))?;
    f.write_all(pem.as_bytes()).and_then(|_| f.sync_all()).map_err(io_err(path))?;
    fs::write(&pub_path, pub_pem).map_err(io_err(&pub_path))?;
    Ok(key.verifying_key())
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let line: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("");
    let mut out = [0u8; 32];
    hex::decode_to_slice(line, &mut out).ok()?;
    Some(out)
}

pub fn parse_signing_key(text: &str) -> Result<SigningKey, String> {
    if text.contains("-----BEGIN") {
        return SigningKey::from_pkcs8_pem(text).map_err(|e| e.to_string());
    }
    parse_hex32(text)
        .map(|b| SigningKey::from_bytes(&b))
        .ok_or_else(|| "neither PEM nor 64 hex digits".into())
}

pub fn parse_verifying_key(text: &str) -> Result<VerifyingKey, String> {
    if text.contains("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text).map_err(|e| e.to_string());
    }
    let b = parse_hex32(text).ok_or_else(|| "neither PEM nor 64 hex digits".to_owned())?;
    VerifyingKey::from_bytes(&b).map_err(|e| e.to_string())
}

pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    parse_signing_key(&text).map_err(|detail| KeyError::Malformed {
        path: path.to_owned(),
        kind: "secret",
        detail,
    })
}

pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    parse_verifying_key(&text).map_err(|detail| KeyError::Malformed {
        path: path.to_owned(),
        kind: "public",
        detail,
    })
}

/// Loads one public key file, or every `*.pub` / `*.pem` file in a directory (sorted,
/// so errors name the same file on every run). A file that does not parse is an
/// error rather than skipped: a typo in the keyring must not go unnoticed.
pub fn load_verifying_keys(dir_or_file: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    let meta = fs::metadata(dir_or_file).map_err(io_err(dir_or_file))?;
    if !meta.is_dir() {
        return Ok(vec![load_verifying_key(dir_or_file)?]);
    }
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir_or_file).map_err(io_err(dir_or_file))? {
        let p = entry.map_err(io_err(dir_or_file))?.path();
        let ext_ok = matches!(p.extension().and_then(|e| e.to_str()), Some("pub" | "pem"));
        if ext_ok && p.is_file() {
            paths.push(p);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(KeyError::NoKeys { path: dir_or_file.to_owned() });
    }
    paths.iter().map(|p| load_verifying_key(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_then_load_pem_and_hex() {
        let dir = tempfile::tempdir().unwrap();
        let sk_path = dir.path().join("release.key");
        let vk = generate_signing_key(&sk_path).unwrap();
        let sk = load_signing_key(&sk_path).unwrap();
        assert_eq!(sk.verifying_key(), vk);
        assert_eq!(load_verifying_keys(&public_key_path(&sk_path)).unwrap(), vec![vk]);
        // Directory keyring: only *.pub / *.pem, the secret key file is not picked up.
        assert_eq!(load_verifying_keys(dir.path()).unwrap(), vec![vk]);
        assert!(matches!(generate_signing_key(&sk_path), Err(KeyError::Exists { .. })));

        let hex_path = dir.path().join("other.pub");
        fs::write(&hex_path, format!("# a comment\n{}\n", hex::encode(vk.as_bytes()))).unwrap();
        assert_eq!(load_verifying_key(&hex_path).unwrap(), vk);
        let sk_hex = dir.path().join("hex.key");
        fs::write(&sk_hex, hex::encode(sk.to_bytes())).unwrap();
        assert_eq!(load_signing_key(&sk_hex).unwrap().verifying_key(), vk);
    }

    #[test]
    fn bad_key_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("typo.pub"), "abcd\n").unwrap();
        let err = load_verifying_keys(dir.path()).unwrap_err();
        assert!(err.to_string().contains("typo.pub"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(load_verifying_keys(empty.path()), Err(KeyError::NoKeys { .. })));
    }
}
