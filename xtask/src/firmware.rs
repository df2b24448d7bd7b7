//! The front-panel supervisor firmware (`firmware/board`, its own
//! workspace, `thumbv7m-none-eabi`): builds the release binary and the
//! QEMU test build (`test-inputs`), and reports the release build's flash
//! and RAM use from its ELF section headers.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::{cargo, root, run};

const TRIPLE: &str = "thumbv7m-none-eabi";
const BINARY: &str = "supervisor-board";
/// The env var the QEMU firmware test (`tests/tests/supervisor_qemu.rs`)
/// reads the test build's path from.
pub const ELF_ENV: &str = "SUPERVISOR_FIRMWARE_ELF";

pub struct Built {
    pub release: PathBuf,
    pub test_inputs: PathBuf,
}

/// Debian packages for the firmware test (`qemu-system-arm` emulates the
/// LM3S6965 board).
const DEBIAN_PACKAGES: &[&str] = &["qemu-system-arm"];

/// Builds both flavours; prints the release build's sizes.
pub fn build() -> anyhow::Result<Built> {
    crate::ensure_packages(DEBIAN_PACKAGES, "the supervisor firmware test")?;
    crate::cross::ensure_rust_target(TRIPLE)?;
    let board = root().join("firmware").join("board");
    let release_dir = root().join("target").join("firmware");
    let test_dir = root().join("target").join("firmware-test-inputs");
    let mut release = cargo();
    release.current_dir(&board).args(["build", "--release", "--locked", "--target-dir"]).arg(&release_dir);
    run(release, "build the supervisor firmware (release)")?;
    let mut test = cargo();
    test.current_dir(&board)
        .args(["build", "--release", "--locked", "--features", "test-inputs", "--target-dir"])
        .arg(&test_dir);
    run(test, "build the supervisor firmware (test-inputs, for QEMU)")?;
    let built = Built {
        release: release_dir.join(TRIPLE).join("release").join(BINARY),
        test_inputs: test_dir.join(TRIPLE).join("release").join(BINARY),
    };
    let sizes = elf_sizes(&built.release)?;
    eprintln!(
        "xtask: supervisor firmware {}: flash {} bytes, static RAM {} bytes (plus the stack)",
        built.release.display(),
        sizes.flash,
        sizes.ram
    );
    Ok(built)
}

/// Lints the board crate in both flavours and the agent's `panel-gpio`
/// mode, which the workspace's clippy does not build.
pub fn clippy() -> anyhow::Result<()> {
    crate::cross::ensure_rust_target(TRIPLE)?;
    let board = root().join("firmware").join("board");
    for features in [&[][..], &["--features", "test-inputs"][..]] {
        let mut cmd = cargo();
        cmd.current_dir(&board)
            .args(["clippy", "--release", "--locked"])
            .args(features)
            .arg("--target-dir")
            .arg(root().join("target").join(if features.is_empty() {
                "firmware"
            } else {
                "firmware-test-inputs"
            }))
            .args(["--", "-D", "warnings"]);
        run(cmd, "cargo clippy (supervisor firmware)")?;
    }
    let mut fmt = cargo();
    fmt.current_dir(&board).args(["fmt", "--", "--check"]);
    run(fmt, "cargo fmt --check (supervisor firmware)")?;
    // The agent's GPIO panel mode is feature-gated; the workspace lint builds without it.
    let mut gpio = cargo();
    gpio.args(["clippy", "-p", "edge-agent", "--features", "panel-gpio", "--all-targets"]);
    gpio.args(["--", "-D", "warnings"]);
    run(gpio, "cargo clippy (edge-agent with panel-gpio)")
}

#[derive(Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Bytes programmed into flash: allocated sections with contents.
    pub flash: u64,
    /// Bytes of RAM reserved at link time (.data, .bss, .uninit).
    pub ram: u64,
}

/// Reads an ELF32 little-endian file's section headers.
pub fn elf_sizes(path: &Path) -> anyhow::Result<Sizes> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if bytes.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 1, 1][..]) {
        bail!("{} is not a little-endian ELF32 file", path.display());
    }
    let header = || -> Option<(usize, usize, usize)> {
        Some((u32_at(0x20)? as usize, usize::from(u16_at(0x2E)?), usize::from(u16_at(0x30)?)))
    };
    let Some((shoff, shentsize, shnum)) = header() else { bail!("{}: truncated ELF header", path.display()) };
    const SHF_ALLOC: u32 = 0x2;
    const SHT_NOBITS: u32 = 8;
    const RAM_START: u32 = 0x2000_0000;
    let mut sizes = Sizes { flash: 0, ram: 0 };
    for index in 0..shnum {
        let at = shoff + index * shentsize;
        let section = || -> Option<(u32, u32, u32, u32)> {
            Some((u32_at(at + 4)?, u32_at(at + 8)?, u32_at(at + 12)?, u32_at(at + 20)?))
        };
        let Some((kind, flags, addr, size)) = section() else {
            bail!("{}: truncated section table", path.display())
        };
        if flags & SHF_ALLOC == 0 {
            continue;
        }
        if addr >= RAM_START {
            sizes.ram += u64::from(size);
        }
        // .data lives in RAM but its initial values are stored in flash.
        if kind != SHT_NOBITS {
            sizes.flash += u64::from(size);
        }
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF32 LE file with only a header and these sections
    /// (type, flags, address, size).
    fn elf(sections: &[(u32, u32, u32, u32)]) -> Vec<u8> {
        let mut bytes = vec![0u8; 52];
        bytes[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1]);
        bytes[0x20..0x24].copy_from_slice(&52u32.to_le_bytes()); // e_shoff
        bytes[0x2E..0x30].copy_from_slice(&40u16.to_le_bytes()); // e_shentsize
        bytes[0x30..0x32].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        for &(kind, flags, addr, size) in sections {
            let mut header = [0u8; 40];
            header[4..8].copy_from_slice(&kind.to_le_bytes());
            header[8..12].copy_from_slice(&flags.to_le_bytes());
            header[12..16].copy_from_slice(&addr.to_le_bytes());
            header[20..24].copy_from_slice(&size.to_le_bytes());
            bytes.extend_from_slice(&header);
        }
        bytes
    }

    #[test]
    fn flash_counts_loaded_contents_and_ram_counts_what_sits_in_ram() {
        let dir = std::env::temp_dir().join(format!("xtask-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.elf");
        const PROGBITS: u32 = 1;
        std::fs::write(
            &path,
            elf(&[
                (PROGBITS, 0x6, 0x0, 100),       // .text
                (PROGBITS, 0x3, 0x2000_0000, 8), // .data: flash and RAM
                (8, 0x3, 0x2000_0008, 16),       // .bss: RAM only
                (PROGBITS, 0x0, 0x0, 1000),      // .debug_info: neither
            ]),
        )
        .unwrap();
        assert_eq!(elf_sizes(&path).unwrap(), Sizes { flash: 108, ram: 24 });
        std::fs::write(&path, b"not an elf").unwrap();
        assert!(elf_sizes(&path).is_err());
        let mut truncated = elf(&[(PROGBITS, 0x6, 0, 1)]);
        truncated.truncate(60);
        std::fs::write(&path, truncated).unwrap();
        assert!(elf_sizes(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
