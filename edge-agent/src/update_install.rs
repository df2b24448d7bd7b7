//! The privileged half of updates: `edge-agent update install`, run as root
//! by a one-shot unit when `STATE/updates/staged.bundle` appears.
//!
//! Owns: verifying the staged bundle with the image's trusted keys, planning
//! (`edge_image::plan_install`) from the booted slot and its boot entries,
//! streaming it into the other slot's partition and ESP directory, the verdict
//! in `STATE/updates/last-install.json`, and moving a refused bundle aside as
//! `rejected-<version>.bundle` so that it is neither retried nor fetched
//! again. Must not: fetch anything, touch the running slot (edge_image refuses
//! by construction), or decide when to reboot (the caller's `--reboot`).

use std::path::{Path, PathBuf};

use edge_image::{BundleError, KeyError, PlanError, Slot};
use serde::Serialize;

use crate::{
    config::Config,
    running::{self, InstallRecord, RunningError},
};

/// Trusted update keys on the image.
pub const DEFAULT_KEYS: &str = "/usr/share/facility-edge/update-keys";
pub const DEFAULT_DEVICE_PATTERN: &str = "/dev/disk/by-partlabel/root-{slot}";
pub const DEFAULT_COMPATIBLE: &str = "facility-edge-aarch64";

#[derive(Debug, Clone)]
pub struct InstallArgs {
    pub bundle: PathBuf,
    pub keys: PathBuf,
    /// `{slot}` is replaced by the target slot (`a` or `b`).
    pub device_pattern: String,
    pub compatible: String,
    /// Kernel options for the new entry besides root/ro/facility.slot;
    /// `None`: the running ones, from the command line.
    pub kernel_options: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The box's own state: not booted from a slot, unreadable entries.
    #[error(transparent)]
    Running(#[from] RunningError),
    #[error("cannot load the trusted update keys: {0}")]
    Keys(#[from] KeyError),
    /// The bundle is refused (unsigned, wrongly signed, corrupt, incompatible).
    #[error("bundle refused: {0}")]
    Bundle(#[source] BundleError),
    #[error("install refused: {0}")]
    Plan(#[from] PlanError),
    #[error("install failed: {0}")]
    Install(#[source] BundleError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("device pattern {0:?} has no {{slot}} placeholder")]
    DevicePattern(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct InstallOutcome {
    pub record: InstallRecord,
    /// The record's file.
    pub record_path: PathBuf,
}

/// Kernel options of the running entry, without what `entry_text` writes
/// itself (root, ro/rw, facility.slot) and what the boot loader adds.
pub fn carried_kernel_options(cmdline: &str) -> String {
    cmdline
        .split_whitespace()
        .filter(|w| {
            !(w.starts_with("root=")
                || w.starts_with("facility.slot=")
                || w.starts_with("initrd=")
                || w.starts_with("BOOT_IMAGE=")
                || *w == "ro"
                || *w == "rw")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn device_for(pattern: &str, slot: Slot) -> Result<PathBuf, InstallError> {
    if !pattern.contains("{slot}") {
        return Err(InstallError::DevicePattern(pattern.to_owned()));
    }
    Ok(PathBuf::from(pattern.replace("{slot}", slot.as_str())))
}

/// Installs the bundle, records the verdict, and on a refusal moves the
/// bundle aside. Returns the record on success; on failure the record is
/// written too and the typed error returned.
pub fn install(config: &Config, args: &InstallArgs) -> Result<InstallOutcome, InstallError> {
    let dir = running::updates_dir(config);
    std::fs::create_dir_all(&dir)
        .map_err(|source| InstallError::Io { context: dir.display().to_string(), source })?;
    // Central read this label unverified too; it only names files here.
    let label = edge_image::read_manifest_unverified(&args.bundle).ok().map(|m| m.version.to_string());
    let result = try_install(config, args);
    let now = jiff::Timestamp::now().to_string();
    let (record, error) = match result {
        Ok((slot, entry, version)) => (
            InstallRecord {
                version: Some(version),
                ok: true,
                slot: Some(slot.to_string()),
                entry: Some(entry),
                error: None,
                moved_to: None,
                at: now,
            },
            None,
        ),
        Err(error) => {
            let moved_to = set_aside(&dir, &args.bundle, label.as_deref(), &error);
            let record = InstallRecord {
                version: label.clone(),
                ok: false,
                slot: None,
                entry: None,
                error: Some(error.to_string()),
                moved_to,
                at: now,
            };
            (record, Some(error))
        }
    };
    let record_path = dir.join(running::LAST_INSTALL);
    write_record(&record_path, &record)?;
    if record.ok {
        // The bundle's bytes now live in the slot; the staged copy goes so
        // the path unit does not fire again.
        if let Err(source) = std::fs::remove_file(&args.bundle) {
            tracing::warn!(%source, bundle = %args.bundle.display(), "cannot remove the installed bundle");
        }
    }
    match error {
        Some(error) => Err(error),
        None => Ok(InstallOutcome { record, record_path }),
    }
}

fn try_install(config: &Config, args: &InstallArgs) -> Result<(Slot, PathBuf, String), InstallError> {
    let state = running::boot_state(config)?;
    let keys = edge_image::load_verifying_keys(&args.keys)?;
    let header = edge_image::open_bundle(&args.bundle, &keys).map_err(InstallError::Bundle)?;
    header.check_compatible(&args.compatible).map_err(InstallError::Bundle)?;
    let plan = edge_image::plan_install(&state, header.manifest.version)?;
    let kernel_options = match &args.kernel_options {
        Some(options) => options.clone(),
        None => {
            let cmdline = std::fs::read_to_string(&config.cmdline_path).map_err(|source| {
                InstallError::Io { context: config.cmdline_path.display().to_string(), source }
            })?;
            carried_kernel_options(&cmdline)
        }
    };
    let target = edge_image::SlotTarget {
        rootfs_device: device_for(&args.device_pattern, plan.target())?,
        esp_dir: config.esp_dir.clone(),
        slot: plan.target(),
        compatible: args.compatible.clone(),
        kernel_options,
    };
    tracing::info!(version = %plan.version(), slot = %plan.target(), device = %target.rootfs_device.display(),
        "installing the staged update");
    let mut last_percent = 0;
    let installed = edge_image::install(&args.bundle, &keys, &plan, &target, &mut |done, total| {
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        if percent >= last_percent + 10 {
            last_percent = percent;
            tracing::info!(percent, "installing");
        }
    })
    .map_err(|error| match error {
        // A payload that does not match its signed hashes is the bundle's fault.
        e @ (BundleError::BlockHashMismatch { .. }
        | BundleError::BlockDecode { .. }
        | BundleError::ImageHashMismatch { .. }
        | BundleError::Truncated(_)
        | BundleError::TrailingData { .. }) => InstallError::Bundle(e),
        e => InstallError::Install(e),
    })?;
    Ok((installed.slot, installed.entry_path, installed.version.to_string()))
}

/// Moves a refused bundle out of the staged name. A running slot on trial
/// is no fault of the bundle: it goes back to its partial name, complete,
/// so that the agent stages it again once the slot is confirmed. Anything
/// else becomes `rejected-<version>.bundle` and is not fetched again.
fn set_aside(dir: &Path, bundle: &Path, label: Option<&str>, error: &InstallError) -> Option<PathBuf> {
    if !bundle.exists() {
        return None;
    }
    let label = label.unwrap_or("unknown");
    let dest = match error {
        InstallError::Plan(PlanError::TrialInProgress { .. }) => running::partial_path(dir, label),
        // Not the bundle's fault, and nothing to retry without a fix on the
        // box: set aside all the same, so the path unit does not loop on it.
        _ => running::rejected_path(dir, label),
    };
    match std::fs::rename(bundle, &dest) {
        Ok(()) => {
            tracing::warn!(%error, bundle = %bundle.display(), moved_to = %dest.display(), "update not installed");
            Some(dest)
        }
        Err(source) => {
            tracing::error!(%source, bundle = %bundle.display(), "cannot move the refused bundle aside");
            None
        }
    }
}

fn write_record(path: &Path, record: &InstallRecord) -> Result<(), InstallError> {
    let io = |source| InstallError::Io { context: path.display().to_string(), source };
    let text = serde_json::to_string_pretty(record).map_err(|e| io(std::io::Error::other(e)))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

/// `update status` and the `update` part of `status`: the slot report and
/// what lies in `STATE/updates/`.
pub fn status(config: &Config) -> serde_json::Value {
    let dir = running::updates_dir(config);
    let (slots, report, failure) = match running::boot_state(config) {
        Ok(state) => {
            let report = edge_image::report(&state);
            let failure = running::last_update_failure(&report, running::last_install(&dir).as_ref());
            let slots = serde_json::json!({
                "running_slot": report.running_slot.to_string(),
                "running_version": report.running_version.to_string(),
                "on_trial": !report.running_confirmed,
                "other_version": report.other_version.map(|v| v.to_string()),
            });
            (slots, serde_json::json!(report.to_string()), failure)
        }
        Err(error) => (serde_json::Value::Null, serde_json::json!(format!("unknown: {error}")), None),
    };
    let scan = running::scan_updates(&dir).unwrap_or_default();
    serde_json::json!({
        "report": report,
        "slots": slots,
        "last_update_failure": failure,
        "staged": scan.staged,
        "partial": scan.partials.iter().map(|(v, len)| serde_json::json!({"version": v, "bytes": len})).collect::<Vec<_>>(),
        "last_install": scan.last_install,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_options_keep_only_what_the_entry_does_not_write() {
        assert_eq!(
            carried_kernel_options(
                "initrd=\\slots\\a\\initrd.img root=PARTLABEL=root-a ro facility.slot=a console=ttyAMA0 quiet\n"
            ),
            "console=ttyAMA0 quiet"
        );
    }

    #[test]
    fn the_device_pattern_needs_the_slot() {
        assert_eq!(
            device_for(DEFAULT_DEVICE_PATTERN, Slot::B).unwrap(),
            PathBuf::from("/dev/disk/by-partlabel/root-b")
        );
        assert!(matches!(device_for("/dev/sda2", Slot::B), Err(InstallError::DevicePattern(_))));
    }
}
