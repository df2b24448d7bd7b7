//! `edge-agent`: the service and the facility IT command line.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use edge_agent::{appliance, config::Config, metrics, pki, service, store::Store, update_install};
use proto::domain::{LockdownScope, UnitId};

#[derive(Parser)]
#[command(name = "edge-agent", version, about = "Facility Edge box: tablet API, policy, sync, and IT tools")]
struct Cli {
    /// TOML settings file (embedded defaults when absent).
    #[arg(long, global = true, env = "EDGE_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `state_dir`.
    #[arg(long, global = true, env = "EDGE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Overrides `tablet_listen`.
    #[arg(long, global = true)]
    tablet_listen: Option<SocketAddr>,
    /// Overrides `metrics_listen`.
    #[arg(long, global = true)]
    metrics_listen: Option<SocketAddr>,
    /// Overrides `central_addr`.
    #[arg(long, global = true)]
    central: Option<SocketAddr>,
    /// Overrides `facility`.
    #[arg(long, global = true)]
    facility: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the edge service.
    Run,
    /// Issue a device certificate bundle for a tablet or kiosk.
    ProvisionDevice {
        #[arg(long)]
        name: String,
        /// Where to write the bundle (default: STATE/devices/NAME.pem).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Revoke a device: its handshakes are refused and a live connection is closed.
    RevokeDevice {
        #[arg(long)]
        name: String,
    },
    /// List provisioned devices.
    Devices,
    /// Uplink state, cache age, connected tablets and sessions.
    Status,
    /// Lock down the facility, or one housing unit, or lift it. Works with the uplink down.
    Lockdown {
        state: OnOff,
        #[arg(long)]
        unit: Option<String>,
    },
    /// First boot on the image: turn the provisioning kit on the data partition
    /// into the agent's state directory (`--state-dir`).
    Firstboot {
        /// The kit: edge.toml, uplink.pem, optionally pki/ and edge.db from an IT workstation.
        #[arg(long)]
        kit: PathBuf,
        /// Give the state directory to this user (the service account).
        #[arg(long)]
        owner: Option<String>,
    },
    /// Boot health check: waits for the agent to answer. Fails only when the
    /// running slot is on trial, so an update that does not come up is rolled back.
    Health {
        /// Seconds to wait (default: `health_timeout_secs` from the config).
        #[arg(long)]
        timeout: Option<u64>,
        /// Where the ESP is mounted (boot entries with their try counters).
        #[arg(long, default_value = "/efi")]
        esp: PathBuf,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Image updates: install a staged bundle (as root), or show the slots.
    Update {
        #[command(subcommand)]
        command: UpdateCommand,
    },
}

#[derive(Subcommand)]
enum UpdateCommand {
    /// Verifies BUNDLE with the trusted keys and installs it into the slot
    /// that is not running. Exit 1 when refused or failed (a refused bundle
    /// is moved to STATE/updates/rejected-VERSION.bundle); the verdict goes
    /// to STATE/updates/last-install.json either way.
    Install {
        #[arg(long)]
        bundle: PathBuf,
        /// Overrides `esp_dir`.
        #[arg(long)]
        esp: Option<PathBuf>,
        /// Trusted update keys: a directory of *.pub/*.pem, or one file.
        #[arg(long, default_value = update_install::DEFAULT_KEYS)]
        keys: PathBuf,
        /// The target slot's root partition; `{slot}` becomes a or b.
        #[arg(long, default_value = update_install::DEFAULT_DEVICE_PATTERN)]
        device_pattern: String,
        /// Overrides `cmdline_path` (the kernel command line naming the booted slot).
        #[arg(long)]
        cmdline: Option<PathBuf>,
        /// This box's compatible string; bundles for others are refused.
        #[arg(long, default_value = update_install::DEFAULT_COMPATIBLE)]
        compatible: String,
        /// Kernel options for the new entry (default: the running ones).
        #[arg(long)]
        kernel_options: Option<String>,
        /// Reboot (`systemctl reboot`) after a successful install.
        #[arg(long)]
        reboot: bool,
    },
    /// The slot report (what runs, what waits, what failed) and the downloads.
    Status {
        /// Overrides `esp_dir`.
        #[arg(long)]
        esp: Option<PathBuf>,
        /// Overrides `cmdline_path`.
        #[arg(long)]
        cmdline: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exits 1 if any row was edited, removed or reordered.
    Verify,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

fn actor() -> String {
    format!(
        "it:{}",
        std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into())
    )
}

fn main() -> ExitCode {
    edge_agent::logging::init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("edge-agent: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Health { timeout, esp } = &cli.command {
        // An unprovisioned box has no config file yet; that is a state to report, not an error.
        let config = match cli.config.as_deref() {
            Some(path) if !path.exists() => None,
            path => Some(Config::load(path)?),
        };
        let timeout = timeout.or(config.as_ref().map(|c| c.health_timeout_secs)).unwrap_or(90);
        return Ok(health(config.as_ref(), std::time::Duration::from_secs(timeout), esp));
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = cli.state_dir {
        config.state_dir = dir;
    }
    if let Some(addr) = cli.tablet_listen {
        config.tablet_listen = addr;
    }
    if let Some(addr) = cli.metrics_listen {
        config.metrics_listen = addr;
    }
    if let Some(addr) = cli.central {
        config.central_addr = addr;
    }
    if let Some(facility) = cli.facility {
        config.facility = facility;
    }
    if let Command::Update { command } = cli.command {
        // Needs no database: the installer runs as root and must not create
        // files the agent (user `edge`) then cannot open.
        return update(&mut config, command);
    }
    let open_store = |config: &Config| -> anyhow::Result<Store> {
        std::fs::create_dir_all(&config.state_dir)
            .with_context(|| format!("creating {}", config.state_dir.display()))?;
        Store::open(&config.db_path()).context("opening the edge database")
    };
    match cli.command {
        Command::Run => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(service::run(config))?;
        }
        Command::ProvisionDevice { name, out } => {
            let mut store = open_store(&config)?;
            let bundle = pki::provision_device(&config, &mut store, &name, &actor())?;
            let out = out.unwrap_or_else(|| config.state_dir.join("devices").join(format!("{name}.pem")));
            bundle.save(&out)?;
            println!(
                "{}",
                serde_json::json!({"device": name, "bundle": out, "fingerprint": bundle.fingerprint()?})
            );
        }
        Command::RevokeDevice { name } => {
            let mut store = open_store(&config)?;
            let now = jiff::Timestamp::now();
            store.revoke_device(&name, now)?;
            store.audit_append(&actor(), "revoke-device", &serde_json::json!({"device": name}), now)?;
            println!("{}", serde_json::json!({"device": name, "revoked": true}));
        }
        Command::Devices => {
            let store = open_store(&config)?;
            let devices: Vec<_> = store
                .devices()?
                .into_iter()
                .map(|d| {
                    serde_json::json!({"name": d.name, "fingerprint": d.fingerprint,
                                       "issued_at": d.issued_at, "revoked_at": d.revoked_at})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&devices)?);
        }
        Command::Status => return status(&config, &open_store(&config)?),
        Command::Lockdown { state, unit } => {
            let mut store = open_store(&config)?;
            let scope = match unit {
                Some(unit) => LockdownScope::Unit(UnitId::new(unit)),
                None => LockdownScope::Facility,
            };
            let on = matches!(state, OnOff::On);
            let changed = store.set_lockdown(&scope, on, &actor(), jiff::Timestamp::now())?;
            println!("{}", serde_json::json!({"scope": scope, "lockdown": on, "changed": changed}));
        }
        Command::Firstboot { kit, owner } => {
            let done = appliance::first_boot(&kit, &config.state_dir, owner.as_deref())?;
            tracing::info!(facility = %done.facility, files = done.files.len(), "provisioned from the kit");
            println!("{}{}", notice_prefix(), serde_json::to_string(&done)?);
        }
        Command::Health { .. } => unreachable!("handled before the config is loaded"),
        Command::Update { .. } => unreachable!("handled before the store is opened"),
        Command::Audit { command: AuditCommand::Verify } => {
            let store = open_store(&config)?;
            let report = store.audit_verify()?;
            let verdict = serde_json::json!({
                "rows_checked": report.rows_checked,
                "intact": report.is_intact(),
                "first_break": report.first_break.as_ref().map(|b| serde_json::json!({"seq": b.seq(), "what": b.to_string()})),
            });
            println!("{}", serde_json::to_string_pretty(&verdict)?);
            if !report.is_intact() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status(config: &Config, store: &Store) -> anyhow::Result<ExitCode> {
    let sync = store.sync_state()?;
    let lockdowns = store.lockdowns()?;
    let devices = store.devices()?;
    let mut out = serde_json::json!({
        "facility": config.facility,
        "sync_cursor": sync.cursor,
        "last_sync": sync.last_success,
        "lockdowns": lockdowns,
        "devices_provisioned": devices.iter().filter(|d| d.revoked_at.is_none()).count(),
        "devices_revoked": devices.iter().filter(|d| d.revoked_at.is_some()).count(),
        "update": update_install::status(config),
        // The front-panel supervisor's events (tamper, resets, temperature, key).
        "panel_events": store.audit_recent_by_actor("panel", 20)?,
    });
    match metrics::scrape(config.metrics_listen) {
        Ok(text) => {
            let figures: serde_json::Map<String, serde_json::Value> =
                metrics::parse(&text).into_iter().map(|(k, v)| (k, serde_json::json!(v))).collect();
            out["agent"] = serde_json::json!("running");
            out["live"] = serde_json::Value::Object(figures);
        }
        Err(error) => {
            out["agent"] = serde_json::json!(format!("not reachable on {}: {error}", config.metrics_listen));
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn update(config: &mut Config, command: UpdateCommand) -> anyhow::Result<ExitCode> {
    match command {
        UpdateCommand::Install {
            bundle,
            esp,
            keys,
            device_pattern,
            cmdline,
            compatible,
            kernel_options,
            reboot,
        } => {
            if let Some(esp) = esp {
                config.esp_dir = esp;
            }
            if let Some(cmdline) = cmdline {
                config.cmdline_path = cmdline;
            }
            let args =
                update_install::InstallArgs { bundle, keys, device_pattern, compatible, kernel_options };
            match update_install::install(config, &args) {
                Ok(outcome) => {
                    println!("{}", serde_json::to_string_pretty(&outcome.record)?);
                    if reboot {
                        tracing::info!("rebooting into the new slot");
                        let status = std::process::Command::new("systemctl")
                            .arg("reboot")
                            .status()
                            .context("running systemctl reboot")?;
                        if !status.success() {
                            anyhow::bail!("systemctl reboot failed: {status}");
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    tracing::error!(%error, "update not installed");
                    eprintln!("edge-agent: {error}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        UpdateCommand::Status { esp, cmdline } => {
            if let Some(esp) = esp {
                config.esp_dir = esp;
            }
            if let Some(cmdline) = cmdline {
                config.cmdline_path = cmdline;
            }
            println!("{}", serde_json::to_string_pretty(&update_install::status(config))?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints one line the console (and the QEMU tests) can read, then answers
/// systemd: success confirms the boot; failure on a trial slot reboots.
fn health(config: Option<&Config>, timeout: std::time::Duration, esp: &std::path::Path) -> ExitCode {
    let boot = appliance::BootSlot::read(esp);
    let verdict = appliance::check(config, timeout);
    let slot = boot.slot.as_deref().unwrap_or("-");
    let version = appliance::image_version();
    let line = |state: &str, detail: &str| {
        let prefix = notice_prefix();
        println!(
            "{prefix}FACILITY-EDGE {state} slot={slot} version={version} trial={} {detail}",
            boot.on_trial
        )
    };
    match verdict {
        appliance::Health::Healthy => line("READY", "agent=up"),
        appliance::Health::Unprovisioned => line("READY", "agent=unprovisioned"),
        appliance::Health::Unhealthy(reason) => {
            tracing::error!(%reason, slot, on_trial = boot.on_trial, "boot health check failed");
            line("UNHEALTHY", &reason);
            if boot.on_trial {
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

/// Under systemd, stdout lines are journal entries at "info", which the
/// image does not forward to the serial console; these few lines are meant
/// for the console, so they carry the syslog "notice" prefix systemd reads.
fn notice_prefix() -> &'static str {
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        "<5>"
    } else {
        ""
    }
}
