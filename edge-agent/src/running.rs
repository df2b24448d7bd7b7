//! What the box runs: the image version, the booted slot and its boot
//! counting state, and the files of `STATE/updates/`.
//!
//! Owns: reading `/etc/os-release`, the kernel command line and the ESP's
//! boot entries (paths from the config, so host tests fake them), the
//! layout of `STATE/updates/`, and the `RunningImage` the agent reports to
//! central. Must not: write anything (the updater and the installer do).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use edge_image::{BootState, Slot, SlotReport, Version};
use proto::central::RunningImage;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// Where the image states its version.
pub const OS_RELEASE: &str = "/etc/os-release";
/// The bundle the agent hands to the privileged installer.
pub const STAGED: &str = "staged.bundle";
/// The installer's verdict on the last staged bundle.
pub const LAST_INSTALL: &str = "last-install.json";

#[derive(Debug, thiserror::Error)]
pub enum RunningError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} names no facility.slot=a|b (not booted from an A/B image?)")]
    NoSlot { path: PathBuf },
    #[error("image version {0:?} is not X.Y.Z")]
    BadVersion(String),
    #[error("cannot read the boot entries: {0}")]
    Entries(#[from] edge_image::BundleError),
}

/// `IMAGE_VERSION` from an os-release text.
pub fn os_release_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("IMAGE_VERSION=").map(|v| v.trim().trim_matches('"').to_string()))
}

/// The running image version: the config's `image_version`, else
/// os-release's `IMAGE_VERSION`, else 0.0.0 (a development box off-image,
/// which every release is newer than but which never stages one anyway:
/// without a slot on its command line it reports nothing to update).
pub fn image_version(config: &Config) -> Result<Version, RunningError> {
    let text = match &config.image_version {
        Some(v) => v.clone(),
        None => std::fs::read_to_string(OS_RELEASE)
            .ok()
            .and_then(|t| os_release_version(&t))
            .unwrap_or_else(|| "0.0.0".into()),
    };
    text.parse().map_err(|_| RunningError::BadVersion(text))
}

/// The booted slot from the kernel command line at `path`.
pub fn running_slot(path: &Path) -> Result<Slot, RunningError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| RunningError::Read { path: path.to_path_buf(), source })?;
    edge_image::slots::running_slot_from_cmdline(&text)
        .ok_or_else(|| RunningError::NoSlot { path: path.to_path_buf() })
}

/// Slot, version and boot entries, as the config's paths show them.
pub fn boot_state(config: &Config) -> Result<BootState, RunningError> {
    let slot = running_slot(&config.cmdline_path)?;
    let version = image_version(config)?;
    Ok(edge_image::read_boot_state(&config.esp_dir, slot, version)?)
}

pub fn updates_dir(config: &Config) -> PathBuf {
    config.state_dir.join("updates")
}

pub fn partial_path(dir: &Path, version: &str) -> PathBuf {
    dir.join(format!("{version}.partial"))
}

pub fn rejected_path(dir: &Path, version: &str) -> PathBuf {
    dir.join(format!("rejected-{version}.bundle"))
}

/// The installer's record of its last run (`STATE/updates/last-install.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallRecord {
    /// The bundle's version (from its manifest; unverified when refused).
    pub version: Option<String>,
    pub ok: bool,
    pub slot: Option<String>,
    pub entry: Option<PathBuf>,
    pub error: Option<String>,
    /// Where a refused bundle was moved.
    pub moved_to: Option<PathBuf>,
    pub at: String,
}

pub fn last_install(dir: &Path) -> Option<InstallRecord> {
    let text = std::fs::read_to_string(dir.join(LAST_INSTALL)).ok()?;
    serde_json::from_str(&text).ok()
}

/// What lies in `STATE/updates/`: the staged bundle, partial downloads, and
/// versions the installer already took (refused ones, and the last one it
/// installed), which are not fetched again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdatesDir {
    pub staged: bool,
    pub partials: Vec<(String, u64)>,
    pub handled: BTreeSet<Version>,
    pub last_install: Option<InstallRecord>,
}

pub fn scan_updates(dir: &Path) -> Result<UpdatesDir, RunningError> {
    let mut out = UpdatesDir::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => return Err(RunningError::Read { path: dir.to_path_buf(), source }),
    };
    for entry in entries {
        let entry = entry.map_err(|source| RunningError::Read { path: dir.to_path_buf(), source })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == STAGED {
            out.staged = true;
        } else if let Some(version) = name.strip_suffix(".partial") {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.partials.push((version.to_owned(), len));
        } else if let Some(v) = name.strip_prefix("rejected-").and_then(|n| n.strip_suffix(".bundle")) {
            if let Ok(v) = v.parse() {
                out.handled.insert(v);
            }
        }
    }
    out.partials.sort();
    out.last_install = last_install(dir);
    if let Some(v) = out.last_install.as_ref().and_then(|r| r.version.as_deref()).and_then(|v| v.parse().ok())
    {
        out.handled.insert(v);
    }
    Ok(out)
}

/// Why the last update did not take, in words: a slot that fell back, or a
/// bundle the installer refused (unless the box now runs that version).
pub fn last_update_failure(report: &SlotReport, last: Option<&InstallRecord>) -> Option<String> {
    if matches!(report.other, edge_image::OtherSlot::FellBack) {
        return Some(report.to_string());
    }
    let last = last.filter(|r| !r.ok)?;
    let running = report.running_version.to_string();
    if last.version.as_deref() == Some(running.as_str()) {
        return None;
    }
    let what = last.version.as_deref().unwrap_or("a staged bundle");
    Some(format!("update to {what} was refused: {}", last.error.as_deref().unwrap_or("unknown error")))
}

/// What `Hello` reports; `None` off-image (no slot on the command line).
pub fn running_image(config: &Config) -> Result<(RunningImage, BootState), RunningError> {
    let state = boot_state(config)?;
    let report = edge_image::report(&state);
    let last = last_install(&updates_dir(config));
    Ok((
        RunningImage {
            version: state.running_version.to_string(),
            slot: state.running_slot.to_string(),
            on_trial: !report.running_confirmed,
            last_update_failure: last_update_failure(&report, last.as_ref()),
        },
        state,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, cmdline: &str, entries: &[&str]) -> Config {
        std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        let loader = dir.join("esp/loader/entries");
        std::fs::create_dir_all(&loader).unwrap();
        for e in entries {
            std::fs::write(loader.join(e), "version 0.2.0\n").unwrap();
        }
        Config {
            state_dir: dir.join("state"),
            image_version: Some("0.1.0".into()),
            esp_dir: dir.join("esp"),
            cmdline_path: dir.join("cmdline"),
            ..Config::default()
        }
    }

    #[test]
    fn os_release_version_is_read_with_or_without_quotes() {
        assert_eq!(os_release_version("ID=x\nIMAGE_VERSION=\"0.3.1\"\n").as_deref(), Some("0.3.1"));
        assert_eq!(os_release_version("IMAGE_VERSION=0.3.1").as_deref(), Some("0.3.1"));
        assert_eq!(os_release_version("ID=x\n"), None);
    }

    #[test]
    fn running_image_reports_trial_and_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let c =
            config(dir.path(), "root=PARTLABEL=root-a ro facility.slot=a quiet", &["facility-edge-a.conf"]);
        let (r, _) = running_image(&c).unwrap();
        assert_eq!((r.version.as_str(), r.slot.as_str(), r.on_trial), ("0.1.0", "a", false));
        assert_eq!(r.last_update_failure, None);

        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), "facility.slot=a", &["facility-edge-a.conf", "facility-edge-b+0-3.conf"]);
        let (r, _) = running_image(&c).unwrap();
        let failure = r.last_update_failure.unwrap();
        assert!(failure.contains("update to 0.2.0 in slot b failed its boot checks"), "{failure}");

        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), "facility.slot=b", &["facility-edge-a.conf", "facility-edge-b+2-1.conf"]);
        let (r, _) = running_image(&c).unwrap();
        assert!(r.on_trial);

        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), "quiet", &[]);
        assert!(matches!(running_image(&c), Err(RunningError::NoSlot { .. })));
    }

    #[test]
    fn scan_finds_staged_partials_and_handled_versions() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(STAGED), b"x").unwrap();
        std::fs::write(d.join("0.3.0.partial"), b"abcd").unwrap();
        std::fs::write(d.join("rejected-0.2.0.bundle"), b"x").unwrap();
        let record = InstallRecord {
            version: Some("0.2.5".into()),
            ok: true,
            slot: Some("b".into()),
            entry: None,
            error: None,
            moved_to: None,
            at: "now".into(),
        };
        std::fs::write(d.join(LAST_INSTALL), serde_json::to_string(&record).unwrap()).unwrap();
        let scan = scan_updates(d).unwrap();
        assert!(scan.staged);
        assert_eq!(scan.partials, vec![("0.3.0".to_string(), 4)]);
        assert_eq!(scan.handled, [Version::new(0, 2, 0), Version::new(0, 2, 5)].into());
        assert_eq!(scan_updates(&d.join("missing")).unwrap(), UpdatesDir::default());
    }
}
