//! The state directory: database, central CA, server bundle and the edge
//! uplink bundles, and the idempotent `init` that creates them.
//!
//! Layout of `DIR`:
//! - `central.db` (+ WAL files): the feed ([`crate::db`]);
//! - `ca/`: the central CA ("Facility Edge Central CA");
//! - `server.pem`: central's server bundle (SANs `localhost`, `127.0.0.1`);
//! - `edge-<facility>.pem`: one uplink client bundle per facility (CN = id);
//! - `central.addr`: written by `serve` once it listens.
//!
//! Must not: overwrite anything that exists; re-running `init` only fills in
//! what is missing.

use std::path::{Path, PathBuf};

use net::pki::{Authority, Bundle};
use proto::domain::FacilityId;
use serde::Serialize;

use crate::db::{Db, DbError};
use crate::fixture::{Fixture, FixtureError};

pub const CA_DIR: &str = "ca";
pub const CA_NAME: &str = "Facility Edge Central CA";
pub const SERVER_BUNDLE: &str = "server.pem";
pub const ADDR_FILE: &str = "central.addr";
/// The server certificate's common name and the name edges connect with.
pub const SERVER_NAME: &str = "localhost";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("cannot read fixture {path}: {source}")]
    ReadFixture { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("PKI: {0}")]
    Pki(#[from] net::pki::PkiError),
}

pub fn server_bundle_path(state: &Path) -> PathBuf {
    state.join(SERVER_BUNDLE)
}

pub fn edge_bundle_path(state: &Path, facility: &FacilityId) -> PathBuf {
    state.join(format!("edge-{facility}.pem"))
}

/// The MoQ relay's TLS files (`cert.pem`, `key.pem`, and `ca.crt` for its
/// clients to trust), issued by central's CA for localhost and 127.0.0.1.
pub fn relay_dir(state: &Path) -> PathBuf {
    state.join("relay")
}

pub fn addr_path(state: &Path) -> PathBuf {
    state.join(ADDR_FILE)
}

/// What `init` did, printed as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitReport {
    pub state: PathBuf,
    /// Everything `init` created this time; empty when the state was complete.
    pub created: Vec<String>,
    pub already_present: Vec<String>,
    pub message: String,
}

/// Creates whatever is missing in `state`: database seeded from `fixture`
/// (or the embedded demo fixture), CA, server bundle, edge bundles.
pub fn init(state: &Path, fixture_path: Option<&Path>) -> Result<InitReport, StateError> {
    std::fs::create_dir_all(state).map_err(|source| StateError::Dir { path: state.to_path_buf(), source })?;
    let mut created = Vec::new();
    let mut present = Vec::new();

    let fixture = match fixture_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| StateError::ReadFixture { path: path.to_path_buf(), source })?;
            Fixture::from_json(&text)?
        }
        None => Fixture::embedded()?,
    };

    let mut db = Db::open(state)?;
    let facilities: Vec<FacilityId> = if db.is_seeded()? {
        present.push(crate::db::DB_FILE.to_string());
        // Bundles follow the facilities central already holds, not a fixture
        // that was ignored.
        db.live_of_kind("facility")?
            .into_iter()
            .filter_map(|e| match e {
                proto::central::Entity::Facility(f) => Some(f.id),
                _ => None,
            })
            .collect()
    } else {
        db.seed(&fixture)?;
        created.push(crate::db::DB_FILE.to_string());
        fixture.facilities.iter().map(|f| f.facility.id.clone()).collect()
    };

    let ca_existed = state.join(CA_DIR).join("ca.crt").exists();
    let authority = Authority::load_or_create(&state.join(CA_DIR), CA_NAME)?;
    if ca_existed { &mut present } else { &mut created }.push(format!("{CA_DIR}/"));

    // `None`: the server bundle; `Some(facility)`: that facility's uplink bundle.
    let mut wanted: Vec<(PathBuf, Option<&FacilityId>)> = vec![(server_bundle_path(state), None)];
    wanted.extend(facilities.iter().map(|f| (edge_bundle_path(state, f), Some(f))));
    for (path, facility) in wanted {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.exists() {
            present.push(name);
            continue;
        }
        let bundle: Bundle = match facility {
            None => {
                authority.issue_server(SERVER_NAME, &["localhost".to_string(), "127.0.0.1".to_string()])?
            }
            Some(facility) => authority.issue_client(facility.as_str())?,
        };
        bundle.save(&path)?;
        created.push(name);
    }

    let relay = relay_dir(state);
    if relay.join("key.pem").exists() {
        present.push("relay/".into());
    } else {
        let bundle = authority.issue_server("relay", &["localhost".to_string(), "127.0.0.1".to_string()])?;
        std::fs::create_dir_all(&relay).map_err(|source| StateError::Dir { path: relay.clone(), source })?;
        for (name, text) in
            [("cert.pem", &bundle.cert_pem), ("ca.crt", &bundle.ca_pem), ("key.pem", &bundle.key_pem)]
        {
            let path = relay.join(name);
            std::fs::write(&path, text).map_err(|source| StateError::Dir { path, source })?;
        }
        created.push("relay/".into());
    }

    let message = if created.is_empty() {
        if fixture_path.is_some() {
            "already initialized; nothing changed (the --fixture was not loaded: the database is seeded)"
                .to_string()
        } else {
            "already initialized; nothing changed".to_string()
        }
    } else {
        format!("initialized {} item(s)", created.len())
    };
    Ok(InitReport { state: state.to_path_buf(), created, already_present: present, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_idempotent_and_issues_one_uplink_bundle_per_facility() {
        let dir = tempfile::tempdir().unwrap();
        let first = init(dir.path(), None).unwrap();
        assert_eq!(first.created, vec!["central.db", "ca/", "server.pem", "edge-demo-ca-01.pem", "relay/"]);
        let facility = FacilityId::new("demo-ca-01");
        let edge = Bundle::load(&edge_bundle_path(dir.path(), &facility)).unwrap();
        let peer = net::PeerCert::from_der(&edge.cert_der().unwrap()).unwrap();
        assert_eq!(peer.common_name, "demo-ca-01");
        let server = Bundle::load(&server_bundle_path(dir.path())).unwrap();
        assert_eq!(server.ca_pem, edge.ca_pem, "both chain to the central CA");
        let relay_ca = std::fs::read_to_string(relay_dir(dir.path()).join("ca.crt")).unwrap();
        assert_eq!(relay_ca, edge.ca_pem, "the relay chains to the central CA too");

        let snapshot = |dir: &Path| {
            let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
                .unwrap()
                .chain(std::fs::read_dir(dir.join(CA_DIR)).unwrap())
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file() && !p.to_string_lossy().contains("central.db"))
                .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
                .collect();
            files.sort();
            files
        };
        let files = snapshot(dir.path());
        let head = Db::open(dir.path()).unwrap().head_info().unwrap();

        let second = init(dir.path(), None).unwrap();
        assert!(second.created.is_empty(), "{second:?}");
        assert_eq!(second.message, "already initialized; nothing changed");
        assert_eq!(snapshot(dir.path()), files);
        assert_eq!(Db::open(dir.path()).unwrap().head_info().unwrap(), head);
    }

    #[test]
    fn init_fills_in_a_missing_bundle_only() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), None).unwrap();
        let server = std::fs::read(server_bundle_path(dir.path())).unwrap();
        let edge = edge_bundle_path(dir.path(), &FacilityId::new("demo-ca-01"));
        std::fs::remove_file(&edge).unwrap();
        let again = init(dir.path(), None).unwrap();
        assert_eq!(again.created, vec!["edge-demo-ca-01.pem"]);
        assert_eq!(std::fs::read(server_bundle_path(dir.path())).unwrap(), server);
        assert!(edge.exists());
    }

    #[test]
    fn a_custom_fixture_seeds_and_a_broken_one_is_refused() {
        let mut fixture = crate::fixture::Fixture::embedded().unwrap();
        let small = &mut fixture.facilities[0];
        small.contacts.truncate(3);
        small.stamp_counts.retain(|s| s.contact.0 <= 3);
        small.mail.retain(|m| m.message.contact.0 <= 3);
        fixture.facilities[0].facility.id = FacilityId::new("small-01");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.json");
        std::fs::write(&path, fixture.to_json()).unwrap();
        let state = dir.path().join("state");
        init(&state, Some(&path)).unwrap();
        assert_eq!(Db::open(&state).unwrap().live_of_kind("contact").unwrap().len(), 3);
        assert!(edge_bundle_path(&state, &FacilityId::new("small-01")).exists());

        fixture.facilities[0].contacts[0].resident = proto::domain::ResidentId::new("R0000");
        std::fs::write(&path, fixture.to_json()).unwrap();
        let other = dir.path().join("other");
        let err = init(&other, Some(&path)).unwrap_err();
        assert!(matches!(err, StateError::Fixture(FixtureError::Inconsistent(_))), "{err}");
        assert!(!other.join(crate::db::DB_FILE).exists());
    }
}
