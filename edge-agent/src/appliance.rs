//! The agent's duties as the appliance's own software on the edge image:
//! first-boot provisioning from the kit IT puts on the data partition, and
//! the boot health check that confirms (or refuses) a freshly updated slot.
//!
//! Must not: write outside the state directory it is given, or decide
//! anything about boot slots beyond reading which one is running and whether
//! it is still on trial (installing updates is `update`'s job).

use std::{
    fs,
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use net::Bundle;

use crate::{config::Config, metrics, store::Store};

/// Files of a provisioning kit: the agent settings, the uplink identity central
/// issued for this facility, and optionally the facility CA and device
/// registrations prepared on an IT workstation (`pki/`, `edge.db`).
pub const KIT_CONFIG: &str = "edge.toml";

#[derive(Debug, thiserror::Error)]
pub enum FirstBootError {
    #[error("the kit has no {KIT_CONFIG}: nothing to provision from {0}")]
    NoConfig(PathBuf),
    #[error("the kit's {KIT_CONFIG} is not valid: {0}")]
    BadConfig(String),
    #[error("the kit's uplink identity {path} is not usable: {reason}")]
    BadUplink { path: PathBuf, reason: String },
    #[error("user {0} does not exist on this system")]
    UnknownOwner(String),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("recording the provisioning in the audit log: {0}")]
    Audit(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FirstBootError {
    let path = path.to_path_buf();
    move |source| FirstBootError::Io { what, path, source }
}

/// What a first boot did, for the console and the audit log.
#[derive(Debug, serde::Serialize)]
pub struct Provisioned {
    pub facility: String,
    pub files: Vec<String>,
    pub state_dir: PathBuf,
}

/// Turns a provisioning kit into the agent's state directory. Everything is
/// validated before anything is written; `edge.toml` is written last, so a
/// power cut part-way leaves the box unprovisioned and the next boot simply
/// runs this again.
pub fn first_boot(kit: &Path, state_dir: &Path, owner: Option<&str>) -> Result<Provisioned, FirstBootError> {
    let kit_config = kit.join(KIT_CONFIG);
    if !kit_config.is_file() {
        return Err(FirstBootError::NoConfig(kit.to_path_buf()));
    }
    let text = fs::read_to_string(&kit_config).map_err(io("reading", &kit_config))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| FirstBootError::BadConfig(e.to_string()))?;
    table.insert("state_dir".into(), toml::Value::String(state_dir.display().to_string()));
    let rewritten = toml::to_string(&table).map_err(|e| FirstBootError::BadConfig(e.to_string()))?;
    let config: Config = toml::from_str(&rewritten).map_err(|e| FirstBootError::BadConfig(e.to_string()))?;
    let uplink = kit.join(&config.uplink_bundle);
    Bundle::load(&uplink)
        .map_err(|e| FirstBootError::BadUplink { path: uplink.clone(), reason: e.to_string() })?;
    let owner_ids = owner.map(lookup_user).transpose()?;

    fs::create_dir_all(state_dir).map_err(io("creating", state_dir))?;
    let mut files = Vec::new();
    copy_tree(kit, state_dir, Path::new(""), &mut files)?;
    files.retain(|f| f != KIT_CONFIG);

    let now = jiff::Timestamp::now();
    {
        let mut store = Store::open(&config.db_path()).map_err(|e| FirstBootError::Audit(e.to_string()))?;
        store
            .audit_append(
                "system:firstboot",
                "provisioned",
                &serde_json::json!({"facility": config.facility, "files": files}),
                now,
            )
            .map_err(|e| FirstBootError::Audit(e.to_string()))?;
    }
    let config_path = state_dir.join(KIT_CONFIG);
    write_synced(&config_path, rewritten.as_bytes(), 0o600)?;
    if let Some((uid, gid)) = owner_ids {
        chown_tree(state_dir, uid, gid)?;
    }
    sync_dir(state_dir)?;
    Ok(Provisioned { facility: config.facility, files, state_dir: state_dir.to_path_buf() })
}

fn copy_tree(from: &Path, to: &Path, rel: &Path, files: &mut Vec<String>) -> Result<(), FirstBootError> {
    let dir = from.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(io("listing", &dir))?
        .collect::<Result<_, _>>()
        .map_err(io("listing", &dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = rel.join(entry.file_name());
        let src = from.join(&rel);
        let kind = entry.file_type().map_err(io("reading", &src))?;
        if kind.is_dir() {
            fs::create_dir_all(to.join(&rel)).map_err(io("creating", &to.join(&rel)))?;
            copy_tree(from, to, &rel, files)?;
        } else if kind.is_file() {
            if rel == Path::new(KIT_CONFIG) {
                continue;
            }
            let bytes = fs::read(&src).map_err(io("reading", &src))?;
            write_synced(&to.join(&rel), &bytes, 0o600)?;
            files.push(rel.display().to_string());
        }
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FirstBootError> {
    let tmp = path.with_extension("firstboot-tmp");
    let mut file = fs::File::create(&tmp).map_err(io("creating", &tmp))?;
    file.write_all(bytes).map_err(io("writing", &tmp))?;
    file.set_permissions(fs::Permissions::from_mode(mode)).map_err(io("setting permissions of", &tmp))?;
    file.sync_all().map_err(io("syncing", &tmp))?;
    fs::rename(&tmp, path).map_err(io("renaming into place", path))
}

fn sync_dir(dir: &Path) -> Result<(), FirstBootError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("syncing", dir))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), FirstBootError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io("changing the owner of", path))?;
    if path.is_dir() {
        for entry in fs::read_dir(path).map_err(io("listing", path))? {
            chown_tree(&entry.map_err(io("listing", path))?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Reads `/etc/passwd` rather than calling into libc: the image has no NSS
/// modules beyond files, and this keeps the lookup testable.
fn lookup_user(name: &str) -> Result<(u32, u32), FirstBootError> {
    let passwd = Path::new("/etc/passwd");
    let text = fs::read_to_string(passwd).map_err(io("reading", passwd))?;
    parse_passwd(&text, name).ok_or_else(|| FirstBootError::UnknownOwner(name.to_string()))
}

fn parse_passwd(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// Which slot the running system booted from and whether systemd-boot is still
/// counting its tries (an update not yet confirmed by this health check).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootSlot {
    pub slot: Option<String>,
    pub on_trial: bool,
}

impl BootSlot {
    /// `cmdline` is `/proc/cmdline`; `entries` the file names in the ESP's
    /// `loader/entries`.
    pub fn detect(cmdline: &str, entries: &[String]) -> BootSlot {
        let slot =
            cmdline.split_whitespace().find_map(|arg| arg.strip_prefix("facility.slot=")).map(String::from);
        let on_trial = slot.as_deref().is_some_and(|slot| {
            let counted = format!("facility-edge-{slot}+");
            entries.iter().any(|name| name.starts_with(&counted))
        });
        BootSlot { slot, on_trial }
    }

    pub fn read(esp: &Path) -> BootSlot {
        let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let entries: Vec<String> = fs::read_dir(esp.join("loader/entries"))
            .map(|dir| {
                dir.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
            })
            .unwrap_or_default();
        BootSlot::detect(&cmdline, &entries)
    }
}

/// The image version from os-release, or "unknown" off the image.
pub fn image_version() -> String {
    fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("IMAGE_VERSION=").map(|v| v.trim_matches('"').to_string()))
        })
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Health {
    /// The agent answers on its metrics endpoint with its store open.
    Healthy,
    /// No provisioning yet: nothing to check beyond the system being up.
    Unprovisioned,
    Unhealthy(String),
}

/// Waits up to `timeout` for the agent to answer on its metrics endpoint.
pub fn check(config: Option<&Config>, timeout: Duration) -> Health {
    let Some(config) = config else { return Health::Unprovisioned };
    let started = Instant::now();
    let mut last_error = String::from("no answer yet");
    while started.elapsed() < timeout {
        match metrics::scrape(config.metrics_listen) {
            Ok(text) if metrics::parse(&text).iter().any(|(name, _)| name == "edge_outbox_live") => {
                return Health::Healthy
            }
            Ok(_) => last_error = "metrics endpoint answered without the agent's figures".into(),
            Err(error) => last_error = error.to_string(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Health::Unhealthy(format!(
        "the agent did not answer on {} within {} s: {last_error}",
        config.metrics_listen,
        timeout.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_is_read_from_the_running_slot_entry_only() {
        let cmdline = "root=PARTLABEL=root-b ro facility.slot=b console=ttyAMA0";
        let entries = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let on_trial =
            BootSlot::detect(cmdline, &entries(&["facility-edge-a.conf", "facility-edge-b+2-1.conf"]));
        assert_eq!(on_trial, BootSlot { slot: Some("b".into()), on_trial: true });
        let confirmed =
            BootSlot::detect(cmdline, &entries(&["facility-edge-a+0-3.conf", "facility-edge-b.conf"]));
        assert_eq!(confirmed, BootSlot { slot: Some("b".into()), on_trial: false });
        assert_eq!(BootSlot::detect("quiet", &[]), BootSlot { slot: None, on_trial: false });
    }

    #[test]
    fn passwd_lookup() {
        let text =
            "root:x:0:0:root:/root:/bin/sh\nedge:x:998:997::/data/edge:/usr/sbin/nologin\nbad:x:zz:1\n";
        assert_eq!(parse_passwd(text, "edge"), Some((998, 997)));
        assert_eq!(parse_passwd(text, "bad"), None);
        assert_eq!(parse_passwd(text, "nobody"), None);
    }

    fn kit(dir: &Path) -> PathBuf {
        let kit = dir.join("kit");
        fs::create_dir_all(kit.join("pki")).unwrap();
        let ca = net::Authority::load_or_create(&kit.join("pki"), "test CA").unwrap();
        ca.issue_client("edge uplink").unwrap().save(&kit.join("uplink.pem")).unwrap();
        fs::write(kit.join(KIT_CONFIG), "facility = \"f-9\"\nstate_dir = \"/elsewhere\"\n").unwrap();
        kit
    }

    #[test]
    fn first_boot_copies_the_kit_and_writes_the_config_last_with_its_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let kit = kit(dir.path());
        let state = dir.path().join("state");
        let done = first_boot(&kit, &state, None).unwrap();
        assert_eq!(done.facility, "f-9");
        assert!(done.files.contains(&"uplink.pem".to_string()));
        let config = Config::load(Some(&state.join(KIT_CONFIG))).unwrap();
        assert_eq!(config.state_dir, state);
        assert_eq!(config.facility, "f-9");
        assert!(state.join("uplink.pem").is_file() && state.join("pki").is_dir());
        let store = Store::open(&config.db_path()).unwrap();
        assert!(store.audit_verify().unwrap().is_intact());
    }

    #[test]
    fn a_bad_kit_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let kit = kit(dir.path());
        let state = dir.path().join("state");
        fs::write(kit.join("uplink.pem"), "not a pem").unwrap();
        assert!(matches!(first_boot(&kit, &state, None), Err(FirstBootError::BadUplink { .. })));
        fs::write(kit.join(KIT_CONFIG), "facilty = \"typo\"\n").unwrap();
        assert!(matches!(first_boot(&kit, &state, None), Err(FirstBootError::BadConfig(_))));
        fs::remove_file(kit.join(KIT_CONFIG)).unwrap();
        assert!(matches!(first_boot(&kit, &state, None), Err(FirstBootError::NoConfig(_))));
        assert!(!state.exists());
    }

    #[test]
    fn health_of_an_unprovisioned_box_and_of_a_silent_agent() {
        assert_eq!(check(None, Duration::from_secs(1)), Health::Unprovisioned);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let config = Config { metrics_listen: addr, ..Config::default() };
        assert!(matches!(check(Some(&config), Duration::from_millis(300)), Health::Unhealthy(_)));
    }
}
