//! Images and updates for the Facility Edge box.
//!
//! Owns: the signed update bundle format (write, verify, streaming install into the
//! inactive A/B slot), the boot-slot state machine over systemd-boot entry names
//! (sans-IO: planning and status reports), bmap files (bmaptool-compatible XML) and
//! flashing of whole-disk images, and release checksum files.
//!
//! Must not touch: the running slot (install refuses it by construction), the
//! `data` partition, anything in `ESP/loader/entries/` that is not a
//! `facility-edge-*` entry, and the network. Deciding *when* to install or reboot is
//! the agent's job; building the images is xtask's.

pub mod bmap;
pub mod bundle;
pub mod flash;
pub mod keys;
pub mod provision;
pub mod slots;
pub mod sums;
pub mod version;

pub use bmap::{create_bmap, find_bmap, Bmap, BmapError, BmapRange};
pub use bundle::{
    entry_text, install, open_bundle, read_boot_state, read_manifest_unverified, verify_bundle, write_bundle,
    BlockDecodeError, BundleBuilder, BundleError, ImageEntry, ImageName, Installed, Manifest, SlotTarget,
    StoredBlock, VerifiedHeader,
};
pub use flash::{
    check_device_free, check_size, prepare_flash, verify_mapped, write_mapped, FlashError, FlashJob,
};
pub use keys::{generate_signing_key, load_signing_key, load_verifying_keys, KeyError};
pub use slots::{
    plan_install, report, BootCounter, BootState, EntryName, EntryStatus, InstallPlan, OtherSlot, PlanError,
    Slot, SlotReport,
};
pub use sums::SumsError;
pub use version::{Version, VersionError};
