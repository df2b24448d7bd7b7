//! facility-flash: flash disk images with a bmap and verify them; build and inspect
//! signed update bundles; sign and check release checksums.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use edge_image::bundle::{verify_bundle, BundleBuilder, DEFAULT_BLOCK_SIZE};
use edge_image::{
    create_bmap, generate_signing_key, load_signing_key, load_verifying_keys, open_bundle, prepare_flash,
    sums, ImageName, Version,
};

#[derive(Parser)]
#[command(name = "facility-flash", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    flash: FlashArgs,
}

/// Flash IMAGE (.img or .img.zst) to DEVICE, writing only the blocks its bmap maps.
#[derive(Args)]
struct FlashArgs {
    /// Raw (.img) or zstd-compressed (.img.zst) disk image.
    image: Option<PathBuf>,
    /// Block device (or a regular file) to write.
    device: Option<PathBuf>,
    /// Block map; default: IMAGE.bmap next to the image (disk.img.bmap), then disk.bmap.
    #[arg(long)]
    bmap: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
    /// Require SHA256SUMS and SHA256SUMS.sig next to the image, signed by this key
    /// (a public key file or a directory of them).
    #[arg(long)]
    release_key: Option<PathBuf>,
    /// After flashing, put this provisioning kit on the data partition for the
    /// first boot: an edge box's (edge.toml, uplink.pem, and optionally pki/
    /// and edge.db) or a tablet's (device.pem and kiosk.env).
    #[arg(long)]
    kit: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create an ed25519 signing key (PEM, mode 0600) and KEY.pub next to it.
    Keygen { key: PathBuf },
    /// Signed update bundles.
    #[command(subcommand)]
    Bundle(BundleCmd),
    /// SHA256SUMS for release artefacts.
    #[command(subcommand)]
    Sums(SumsCmd),
    /// Block maps.
    #[command(subcommand)]
    Bmap(BmapCmd),
}

#[derive(Subcommand)]
enum BundleCmd {
    /// Build a bundle from kernel, initrd and rootfs images.
    Create {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        version: Version,
        #[arg(long, default_value = "facility-edge-aarch64")]
        compatible: String,
        #[arg(long)]
        kernel: PathBuf,
        #[arg(long)]
        initrd: PathBuf,
        #[arg(long)]
        rootfs: PathBuf,
        #[arg(long, default_value_t = DEFAULT_BLOCK_SIZE)]
        block_size: u32,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Verify a bundle's signature (and with --full every block) and print its manifest.
    Inspect {
        bundle: PathBuf,
        /// Trusted public key file or directory of *.pub / *.pem.
        #[arg(long)]
        keys: PathBuf,
        #[arg(long)]
        full: bool,
    },
}

#[derive(Subcommand)]
enum SumsCmd {
    /// Write SHA256SUMS (and SHA256SUMS.sig with --key) next to FILES.
    Sign {
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check every file in DIR/SHA256SUMS, and its signature with --release-key.
    Verify {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long)]
        release_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BmapCmd {
    /// Write a bmaptool-compatible bmap for a raw image (default: IMAGE.bmap).
    Create {
        image: PathBuf,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn bar(len: u64, msg: &'static str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    pb.set_style(style);
    pb.set_message(msg);
    pb
}

fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

fn confirm(prompt: &str) -> Result<bool> {
    eprint!("{prompt} Type 'yes' to continue: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading confirmation")?;
    Ok(line.trim() == "yes")
}

fn flash(args: FlashArgs) -> Result<()> {
    let (Some(image), Some(device)) = (args.image, args.device) else {
        bail!("usage: facility-flash IMAGE DEVICE [--bmap F] [--yes]  (or a subcommand; see --help)");
    };
    let keys = match &args.release_key {
        Some(p) => Some(load_verifying_keys(p)?),
        None => None,
    };
    // A kit that cannot provision the device is refused before the disk is touched.
    if let Some(kit) = &args.kit {
        edge_image::provision::check_kit_for_image(kit, &image)?;
    }
    let job = prepare_flash(&image, &device, args.bmap.as_deref(), keys.as_deref())?;
    let what = match (&job.target.kernel_name, job.target.size) {
        (Some(_), size) => format!(
            "block device {} ({}, {})",
            job.target.path.display(),
            size.map_or("size unknown".into(), human),
            job.target.model.as_deref().unwrap_or("model unknown")
        ),
        (None, _) => format!("regular file {}", job.target.path.display()),
    };
    eprintln!(
        "image {}: {} ({} mapped), bmap {}{}",
        image.display(),
        human(job.bmap.image_size),
        human(job.bmap.mapped_bytes()),
        job.bmap_path.as_deref().map_or("made from the raw image".into(), |p| p.display().to_string()),
        if job.sums_checked { ", SHA256SUMS ok" } else { "" }
    );
    if !args.yes && !confirm(&format!("This overwrites {what}."))? {
        bail!("not confirmed; nothing written");
    }
    let wb = bar(job.bmap.mapped_bytes(), "write");
    let vb = bar(job.bmap.mapped_bytes(), "verify");
    vb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    let mut started_verify = false;
    job.run(&mut |d, _| wb.set_position(d), &mut |d, _| {
        if !started_verify {
            wb.finish();
            vb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            started_verify = true;
        }
        vb.set_position(d)
    })?;
    vb.finish();
    eprintln!("flashed and verified {} to {}", image.display(), job.target.path.display());
    if let Some(kit) = &args.kit {
        let work = tempfile::tempdir()?;
        let data = edge_image::provision::write_kit(&job.target.path, kit, work.path())?;
        eprintln!(
            "provisioning kit {} written to the data partition ({} at offset {})",
            kit.display(),
            human(data.size()),
            data.offset()
        );
    }
    Ok(())
}

fn bundle(cmd: BundleCmd) -> Result<()> {
    match cmd {
        BundleCmd::Create { key, version, compatible, kernel, initrd, rootfs, block_size, output } => {
            let sk = load_signing_key(&key)?;
            let m = BundleBuilder::new(version, &compatible)
                .block_size(block_size)
                .image(ImageName::Kernel, &kernel)
                .image(ImageName::Initrd, &initrd)
                .image(ImageName::Rootfs, &rootfs)
                .write(&output, &sk)?;
            eprintln!(
                "wrote {} ({} {}, {} of images in {} of payload)",
                output.display(),
                m.compatible,
                m.version,
                human(m.images_len()),
                human(m.payload_len())
            );
        }
        BundleCmd::Inspect { bundle, keys, full } => {
            let keys = load_verifying_keys(&keys)?;
            let hdr = if full { verify_bundle(&bundle, &keys)? } else { open_bundle(&bundle, &keys)? };
            println!("{}", serde_json::to_string_pretty(&hdr.manifest)?);
            eprintln!(
                "signature ok (trusted key #{}){}",
                hdr.key_index,
                if full { "; every block verified" } else { "; payload not read (use --full)" }
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        None => flash(cli.flash),
        Some(Cmd::Keygen { key }) => {
            let vk = generate_signing_key(&key)?;
            eprintln!("wrote {} and {}", key.display(), edge_image::keys::public_key_path(&key).display());
            println!("{}", hex::encode(vk.as_bytes()));
            Ok(())
        }
        Some(Cmd::Bundle(b)) => bundle(b),
        Some(Cmd::Sums(SumsCmd::Sign { key, files })) => {
            let key = key.map(|k| load_signing_key(&k)).transpose()?;
            let path = sums::write_sums(&files, key.as_ref())?;
            eprintln!("wrote {}{}", path.display(), if key.is_some() { " and SHA256SUMS.sig" } else { "" });
            Ok(())
        }
        Some(Cmd::Sums(SumsCmd::Verify { dir, release_key })) => {
            let keys = release_key.map(|k| load_verifying_keys(&k)).transpose()?;
            let names = sums::verify_dir(&dir, keys.as_deref())?;
            for n in &names {
                println!("{n}: OK");
            }
            Ok(())
        }
        Some(Cmd::Bmap(BmapCmd::Create { image, output })) => {
            let bmap = create_bmap(&image)?;
            let out = output.unwrap_or_else(|| with_suffix(&image, ".bmap"));
            std::fs::write(&out, bmap.to_xml()).with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "wrote {} ({} of {} mapped)",
                out.display(),
                human(bmap.mapped_bytes()),
                human(bmap.image_size)
            );
            Ok(())
        }
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
