//! The facility PKI: a certificate authority kept as `ca.crt` / `ca.key` in a
//! directory, leaf certificates issued from it, and PEM bundles (leaf, key,
//! CA) that a device or an edge box carries.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{what} is not valid PEM: {detail}")]
    BadPem { what: String, detail: String },
    #[error(
        "{path}: bundle must hold a certificate, a private key and a CA certificate ({missing} missing)"
    )]
    IncompleteBundle { path: PathBuf, missing: &'static str },
    #[error("{path}: CA key exists without its certificate (or the reverse); refusing to replace a half-present CA")]
    HalfPresentAuthority { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

/// SHA-256 of a DER certificate, lowercase hex: how devices are named in
/// allow and revocation lists.
pub fn fingerprint_der(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// A PEM identity: leaf certificate, its private key, and the CA certificate
/// that the peer's certificate must chain to.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

impl Bundle {
    /// Reads a bundle file: the leaf certificate, its key, then the CA
    /// certificate, as concatenated PEM blocks.
    pub fn load(path: &Path) -> Result<Bundle, PkiError> {
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Bundle, PkiError> {
        let mut certs = Vec::new();
        let mut key = None;
        for block in split_pem_blocks(text) {
            if block.starts_with("-----BEGIN CERTIFICATE-----") {
                certs.push(block);
            } else if block.contains("PRIVATE KEY-----") {
                key = Some(block);
            }
        }
        let key_pem =
            key.ok_or(PkiError::IncompleteBundle { path: path.to_path_buf(), missing: "private key" })?;
        let mut certs = certs.into_iter();
        let cert_pem = certs
            .next()
            .ok_or(PkiError::IncompleteBundle { path: path.to_path_buf(), missing: "certificate" })?;
        let ca_pem = certs
            .next()
            .ok_or(PkiError::IncompleteBundle { path: path.to_path_buf(), missing: "CA certificate" })?;
        let bundle = Bundle { cert_pem, key_pem, ca_pem };
        bundle.cert_der()?;
        bundle.ca_der()?;
        bundle.key_der()?;
        Ok(bundle)
    }

    /// Writes the bundle readable by its owner only: it holds a private key.
    pub fn save(&self, path: &Path) -> Result<(), PkiError> {
        let text = format!(
            "{}{}{}",
            ensure_newline(&self.cert_pem),
            ensure_newline(&self.key_pem),
            ensure_newline(&self.ca_pem)
        );
        write_private(path, text.as_bytes())
    }

    pub fn cert_der(&self) -> Result<CertificateDer<'static>, PkiError> {
        parse_cert(&self.cert_pem, "bundle certificate")
    }

    pub fn ca_der(&self) -> Result<CertificateDer<'static>, PkiError> {
        parse_cert(&self.ca_pem, "bundle CA certificate")
    }

    pub fn key_der(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| PkiError::BadPem { what: "bundle private key".into(), detail: e.to_string() })
    }

    /// SHA-256 of the leaf certificate, lowercase hex.
    pub fn fingerprint(&self) -> Result<String, PkiError> {
        Ok(fingerprint_der(&self.cert_der()?))
    }
}

fn ensure_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

fn split_pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with("-----BEGIN ") {
            current = Some(format!("{line}\n"));
        } else if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                blocks.extend(current.take());
            }
        }
    }
    blocks
}

fn parse_cert(pem: &str, what: &str) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::BadPem { what: what.into(), detail: e.to_string() })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// A certificate authority kept as `ca.crt` / `ca.key` in a directory.
pub struct Authority {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

/// Leaf certificates live about two years: long enough that a facility is not
/// surprised by expiry, short enough that a lost tablet's certificate dies.
const LEAF_VALIDITY_DAYS: i64 = 825;
const CA_VALIDITY_DAYS: i64 = 3650;

impl Authority {
    /// Loads the CA in `dir`, or creates one on first run.
    pub fn load_or_create(dir: &Path, common_name: &str) -> Result<Authority, PkiError> {
        let cert_path = dir.join("ca.crt");
        let key_path = dir.join("ca.key");
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let ca_pem = std::fs::read_to_string(&cert_path).map_err(io_err(&cert_path))?;
                let key_pem = std::fs::read_to_string(&key_path).map_err(io_err(&key_path))?;
                let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadPem {
                    what: key_path.display().to_string(),
                    detail: e.to_string(),
                })?;
                let issuer = Issuer::from_ca_cert_pem(&ca_pem, key).map_err(|e| PkiError::BadPem {
                    what: cert_path.display().to_string(),
                    detail: e.to_string(),
                })?;
                Ok(Authority { ca_pem, issuer })
            }
            (false, false) => {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                params.distinguished_name = name(common_name);
                params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                set_validity(&mut params, CA_VALIDITY_DAYS);
                let cert = params.self_signed(&key)?;
                let ca_pem = cert.pem();
                std::fs::create_dir_all(dir).map_err(io_err(dir))?;
                write_private(&key_path, key.serialize_pem().as_bytes())?;
                std::fs::write(&cert_path, &ca_pem).map_err(io_err(&cert_path))?;
                let issuer = Issuer::new(params, key);
                Ok(Authority { ca_pem, issuer })
            }
            _ => Err(PkiError::HalfPresentAuthority { path: dir.to_path_buf() }),
        }
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A server leaf for the given DNS names and IP addresses.
    pub fn issue_server(&self, common_name: &str, names: &[String]) -> Result<Bundle, PkiError> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, common_name)
    }

    /// A client leaf (a tablet, a kiosk or an edge box) named `common_name`.
    pub fn issue_client(&self, common_name: &str) -> Result<Bundle, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, common_name)
    }

    fn issue(&self, mut params: CertificateParams, common_name: &str) -> Result<Bundle, PkiError> {
        params.distinguished_name = name(common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_VALIDITY_DAYS);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Bundle { cert_pem: cert.pem(), key_pem: key.serialize_pem(), ca_pem: self.ca_pem.clone() })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, days: i64) {
    // A day of slack backwards absorbs small clock differences between the
    // edge box and a freshly provisioned tablet.
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    params.not_before = (now - day).into();
    params.not_after = (now + day * u32::try_from(days).unwrap_or(u32::MAX)).into();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_persists_and_issues_verifiable_bundles() {
        let dir = std::env::temp_dir().join(format!("pki-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ca = Authority::load_or_create(&dir, "Test CA").unwrap();
        let again = Authority::load_or_create(&dir, "Test CA").unwrap();
        assert_eq!(ca.ca_pem(), again.ca_pem(), "second load must reuse the CA on disk");

        let bundle = again.issue_client("T-0001").unwrap();
        let path = dir.join("t.pem");
        bundle.save(&path).unwrap();
        let loaded = Bundle::load(&path).unwrap();
        assert_eq!(loaded, bundle);
        assert_eq!(loaded.fingerprint().unwrap().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn incomplete_bundle_is_a_typed_error() {
        let dir = std::env::temp_dir().join(format!("pki-test-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.pem");
        std::fs::write(&path, "not pem at all").unwrap();
        assert!(matches!(Bundle::load(&path), Err(PkiError::IncompleteBundle { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn half_present_authority_is_refused() {
        let dir = std::env::temp_dir().join(format!("pki-test-half-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.key"), "x").unwrap();
        assert!(matches!(Authority::load_or_create(&dir, "X"), Err(PkiError::HalfPresentAuthority { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
