//! `SHA256SUMS` (sha256sum's format) for release artefacts, and `SHA256SUMS.sig`:
//! a detached ed25519 signature over the exact bytes of `SHA256SUMS`, in hex.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

pub const SUMS_FILE: &str = "SHA256SUMS";
pub const SIG_FILE: &str = "SHA256SUMS.sig";

#[derive(Debug, thiserror::Error)]
pub enum SumsError {
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("{file}, line {line}: not \"<sha256>  <name>\"")]
    Malformed { file: PathBuf, line: usize },
    #[error("{0}: not listed in SHA256SUMS")]
    NotListed(String),
    #[error("{0}: sha256 does not match SHA256SUMS")]
    Mismatch(String),
    #[error("{0}: missing, but a release key was given")]
    Missing(PathBuf),
    #[error("SHA256SUMS.sig is not 128 hex digits")]
    BadSignatureFile,
    #[error("SHA256SUMS signature does not verify with any of the {0} release key(s)")]
    UntrustedSignature(usize),
    #[error("{0}: file names in SHA256SUMS must be plain names in the same directory")]
    BadName(String),
}

/// `(file name, sha256)` per line of a sums file.
pub type Sums = Vec<(String, [u8; 32])>;

fn io_ctx(context: impl std::fmt::Display) -> impl FnOnce(io::Error) -> SumsError {
    let context = context.to_string();
    move |source| SumsError::Io { context, source }
}

pub fn sha256_file(path: &Path) -> Result<[u8; 32], SumsError> {
    let mut f = File::open(path).map_err(io_ctx(path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_ctx(path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Parses `sha256sum` output (text `"  "` or binary `" *"` separator).
pub fn parse_sums(text: &str, file: &Path) -> Result<Sums, SumsError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || SumsError::Malformed { file: file.to_owned(), line: i + 1 };
        let (h, rest) = line.split_at_checked(64).ok_or_else(bad)?;
        let name = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *")).ok_or_else(bad)?;
        let mut sum = [0u8; 32];
        hex::decode_to_slice(h, &mut sum).map_err(|_| bad())?;
        out.push((name.to_owned(), sum));
    }
    Ok(out)
}

/// Writes `SHA256SUMS` for `files` (all in one directory) into that directory, and
/// `SHA256SUMS.sig` when a key is given. Returns the sums path.
pub fn write_sums(files: &[PathBuf], key: Option<&SigningKey>) -> Result<PathBuf, SumsError> {
    let mut text = String::new();
    let mut dir: Option<PathBuf> = None;
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| SumsError::BadName(f.display().to_string()))?;
        let parent = f.parent().map(Path::to_path_buf).unwrap_or_default();
        match &dir {
            Some(d) if *d != parent => return Err(SumsError::BadName(f.display().to_string())),
            _ => dir = Some(parent),
        }
        text.push_str(&format!("{}  {name}\n", hex::encode(sha256_file(f)?)));
    }
    let dir = dir.unwrap_or_default();
    let sums = dir.join(SUMS_FILE);
    fs::write(&sums, &text).map_err(io_ctx(sums.display()))?;
    if let Some(k) = key {
        let sig = dir.join(SIG_FILE);
        fs::write(&sig, format!("{}\n", hex::encode(k.sign(text.as_bytes()).to_bytes())))
            .map_err(io_ctx(sig.display()))?;
    }
    Ok(sums)
}

pub fn verify_sums_signature(sums: &[u8], sig_text: &str, keys: &[VerifyingKey]) -> Result<(), SumsError> {
    let mut sig = [0u8; 64];
    hex::decode_to_slice(sig_text.trim(), &mut sig).map_err(|_| SumsError::BadSignatureFile)?;
    let sig = Signature::from_bytes(&sig);
    if keys.iter().any(|k| k.verify_strict(sums, &sig).is_ok()) {
        Ok(())
    } else {
        Err(SumsError::UntrustedSignature(keys.len()))
    }
}

/// Reads `dir/SHA256SUMS`; with release keys, `SHA256SUMS.sig` must exist and
/// verify. `Ok(None)` when there is no sums file and no key was given.
pub fn load_sums(dir: &Path, keys: Option<&[VerifyingKey]>) -> Result<Option<Sums>, SumsError> {
    let sums_path = dir.join(SUMS_FILE);
    let bytes = match fs::read(&sums_path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound && keys.is_none() => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SumsError::Missing(sums_path)),
        Err(e) => return Err(io_ctx(sums_path.display())(e)),
    };
    if let Some(keys) = keys {
        let sig_path = dir.join(SIG_FILE);
        let sig = match fs::read_to_string(&sig_path) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SumsError::Missing(sig_path)),
            Err(e) => return Err(io_ctx(sig_path.display())(e)),
        };
        verify_sums_signature(&bytes, &sig, keys)?;
    }
    let text = String::from_utf8_lossy(&bytes);
    Ok(Some(parse_sums(&text, &sums_path)?))
}

/// Checks `file` against its line in `sums`.
pub fn check_file(sums: &[(String, [u8; 32])], file: &Path) -> Result<(), SumsError> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let expected =
        sums.iter().find(|(n, _)| *n == name).map(|(_, s)| *s).ok_or(SumsError::NotListed(name.clone()))?;
    if sha256_file(file)? != expected {
        return Err(SumsError::Mismatch(name));
    }
    Ok(())
}

/// Verifies every file listed in `dir/SHA256SUMS`; returns the names checked.
pub fn verify_dir(dir: &Path, keys: Option<&[VerifyingKey]>) -> Result<Vec<String>, SumsError> {
    let sums = load_sums(dir, keys)?.ok_or_else(|| SumsError::Missing(dir.join(SUMS_FILE)))?;
    for (name, _) in &sums {
        if name.contains('/') || name == ".." {
            return Err(SumsError::BadName(name.clone()));
        }
        check_file(&sums, &dir.join(name))?;
    }
    Ok(sums.into_iter().map(|(n, _)| n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("disk.img.zst");
        let b = dir.path().join("disk.img.bmap");
        fs::write(&a, b"image").unwrap();
        fs::write(&b, b"bmap").unwrap();
        let key = SigningKey::from_bytes(&[3; 32]);
        let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
        write_sums(&[a.clone(), b.clone()], Some(&key)).unwrap();
        let text = fs::read_to_string(dir.path().join(SUMS_FILE)).unwrap();
        assert!(text.ends_with("  disk.img.bmap\n"), "{text}");

        assert_eq!(
            verify_dir(dir.path(), Some(&[key.verifying_key()])).unwrap(),
            ["disk.img.zst", "disk.img.bmap"]
        );
        assert!(matches!(verify_dir(dir.path(), Some(&[other])), Err(SumsError::UntrustedSignature(1))));

        fs::write(&a, b"imagf").unwrap();
        assert!(matches!(verify_dir(dir.path(), None), Err(SumsError::Mismatch(n)) if n == "disk.img.zst"));
        let sums = load_sums(dir.path(), None).unwrap().unwrap();
        check_file(&sums, &b).unwrap();
        let c = dir.path().join("c.img");
        fs::write(&c, b"").unwrap();
        assert!(matches!(check_file(&sums, &c), Err(SumsError::NotListed(_))));

        fs::remove_file(dir.path().join(SIG_FILE)).unwrap();
        assert!(matches!(load_sums(dir.path(), Some(&[key.verifying_key()])), Err(SumsError::Missing(_))));
        assert!(matches!(parse_sums("abc  x\n", Path::new("S")), Err(SumsError::Malformed { line: 1, .. })));
    }
}
