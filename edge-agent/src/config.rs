//! Edge agent settings: embedded defaults, overridden by an optional TOML
//! file, overridden by command-line flags.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database, the facility CA and the uplink identity live.
    pub state_dir: PathBuf,
    /// The facility this box serves.
    pub facility: String,
    /// Where tablets connect (QUIC). A facility LAN deployment sets its LAN address.
    pub tablet_listen: SocketAddr,
    /// DNS names and IPs in the edge's server certificate.
    pub server_names: Vec<String>,
    /// Local Prometheus text endpoint, also read by `edge-agent status`.
    pub metrics_listen: SocketAddr,
    /// central's API (QUIC).
    pub central_addr: SocketAddr,
    pub central_server_name: String,
    /// The front-panel supervisor MCU (`[supervisor]`); absent: none fitted.
    pub supervisor: Option<crate::supervisor::SupervisorConfig>,
    /// The edge's uplink identity issued by central (cert, key, central's CA).
    /// Relative paths are under `state_dir`.
    pub uplink_bundle: PathBuf,
    /// Seconds between change-feed polls once caught up.
    pub sync_interval_secs: u64,
    /// The running image's version; unset: `IMAGE_VERSION` from
    /// /etc/os-release, or 0.0.0 off-image.
    pub image_version: Option<String>,
    /// Where the ESP (boot entries with their try counters) is mounted.
    pub esp_dir: PathBuf,
    /// The kernel command line, which names the booted slot (`facility.slot=`).
    pub cmdline_path: PathBuf,
    /// Seconds between Hellos that ask central for a newer release.
    pub update_check_secs: u64,
    /// Cap on the update download rate (bytes per second, 0: none), so an
    /// update does not crowd out calls on a thin facility uplink.
    pub update_max_bytes_per_sec: u64,
    /// How long the boot health check waits for the agent to answer before a
    /// slot on trial is declared bad (each failed try costs one boot).
    pub health_timeout_secs: u64,
    /// The central MoQ relay video and voice calls are bridged to (QUIC,
    /// ALPN `moqt-18`). Unset: calls ring and run without media.
    pub media_relay: Option<SocketAddr>,
    pub media_relay_server_name: String,
    /// CA certificate(s) the relay's certificate chains to (PEM). Relative
    /// paths are under `state_dir`.
    pub media_relay_ca: PathBuf,
    /// Most bytes of contacts' photos and VideoGrams the edge keeps for the
    /// tablet (the oldest messages' media is evicted first).
    pub media_cache_max_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("state/edge"),
            facility: "demo-ca-01".into(),
            tablet_listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            central_addr: SocketAddr::from(([127, 0, 0, 1], 7400)),
            central_server_name: "localhost".into(),
            supervisor: None,
            uplink_bundle: PathBuf::from("uplink.pem"),
            sync_interval_secs: 2,
            image_version: None,
            esp_dir: PathBuf::from("/efi"),
            cmdline_path: PathBuf::from("/proc/cmdline"),
            update_check_secs: 300,
            update_max_bytes_per_sec: 0,
            health_timeout_secs: 90,
            media_relay: None,
            media_relay_server_name: "localhost".into(),
            media_relay_ca: PathBuf::from("relay-ca.pem"),
            media_cache_max_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source })
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir.join("edge.db")
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.state_dir.join("pki")
    }

    pub fn server_bundle_path(&self) -> PathBuf {
        self.pki_dir().join("server.pem")
    }

    pub fn media_relay_ca_path(&self) -> PathBuf {
        self.state_dir.join(&self.media_relay_ca)
    }

    pub fn uplink_bundle_path(&self) -> PathBuf {
        self.state_dir.join(&self.uplink_bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.toml");
        std::fs::write(&path, "facility = \"x-1\"\nsync_interval_secs = 9\n").unwrap();
        let config = Config::load(Some(&path)).unwrap();
        assert_eq!(config.facility, "x-1");
        assert_eq!(config.sync_interval_secs, 9);
        assert_eq!(config.tablet_listen, Config::default().tablet_listen);

        std::fs::write(&path, "facilty = \"typo\"\n").unwrap();
        assert!(matches!(Config::load(Some(&path)), Err(ConfigError::Parse { .. })));
    }
}
