//! The facility CA on the edge box: the edge's own server certificate and
//! device provisioning.

use anyhow::Context;
use net::{Authority, Bundle};

use crate::{config::Config, store::Store};

pub const CA_NAME: &str = "Facility Edge device CA";

pub fn authority(config: &Config) -> anyhow::Result<Authority> {
    Authority::load_or_create(&config.pki_dir(), &format!("{CA_NAME} ({})", config.facility))
        .context("loading the facility CA")
}

/// The edge's server identity for tablets, issued on first run.
pub fn server_identity(config: &Config) -> anyhow::Result<Bundle> {
    let path = config.server_bundle_path();
    if path.exists() {
        return Bundle::load(&path).context("loading the edge server certificate");
    }
    let bundle = authority(config)?
        .issue_server(&format!("edge {}", config.facility), &config.server_names)
        .context("issuing the edge server certificate")?;
    bundle.save(&path).context("saving the edge server certificate")?;
    tracing::info!(path = %path.display(), "issued the edge server certificate");
    Ok(bundle)
}

/// Issues a device certificate, records it as admitted, and returns the bundle.
pub fn provision_device(
    config: &Config,
    store: &mut Store,
    name: &str,
    actor: &str,
) -> anyhow::Result<Bundle> {
    let bundle = authority(config)?.issue_client(name).context("issuing the device certificate")?;
    let fingerprint = bundle.fingerprint()?;
    let now = jiff::Timestamp::now();
    store.register_device(name, &fingerprint, now).context("recording the device")?;
    store
        .audit_append(
            actor,
            "provision-device",
            &serde_json::json!({"device": name, "fingerprint": fingerprint}),
            now,
        )
        .context("auditing the provisioning")?;
    Ok(bundle)
}
