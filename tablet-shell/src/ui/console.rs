//! Keeps the kernel's virtual terminal from taking the screen away from the
//! kiosk under linuxkms.
//!
//! Slint reads the touch screen and keys through libinput, but the kernel's
//! VT keyboard handler sees the same keys: Ctrl+Alt+F2 would switch to an
//! empty text console and leave a resident looking at a blank screen. With
//! the VT's keyboard off (`K_OFF`) the kernel ignores keys on it, VT switches
//! included, and in graphics mode (`KD_GRAPHICS`) it stops drawing its
//! cursor and messages over the kiosk. systemd gives the service tty1 as its
//! standard input (`StandardInput=tty-force`), and resets it when the
//! service stops (`TTYReset=yes`); [`ConsoleLock`] also puts it back when
//! dropped, for runs started by hand on a console.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

// From linux/kd.h; the libc crate does not carry the console ioctls.
const KDSETMODE: u64 = 0x4B3A;
const KDGETMODE: u64 = 0x4B3B;
const KDGKBMODE: u64 = 0x4B44;
const KDSKBMODE: u64 = 0x4B45;
const KD_GRAPHICS: libc::c_int = 0x01;
const K_OFF: libc::c_int = 0x04;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("standard input is not a virtual terminal")]
    NotAVirtualTerminal,
    #[error("{what} on the virtual terminal: {source}")]
    Ioctl { what: &'static str, source: io::Error },
}

/// A virtual terminal with its keyboard off and in graphics mode, restored
/// to how it was on drop.
#[derive(Debug)]
pub struct ConsoleLock<'fd> {
    fd: BorrowedFd<'fd>,
    keyboard_mode: libc::c_int,
    display_mode: libc::c_int,
}

fn ioctl_get(fd: BorrowedFd<'_>, request: u64) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    // SAFETY: KDGKBMODE and KDGETMODE write one int through the pointer,
    // which lives for the call; an fd that is not a VT fails with ENOTTY.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, &mut value as *mut libc::c_int) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

fn ioctl_set(fd: BorrowedFd<'_>, request: u64, value: libc::c_int) -> io::Result<()> {
    // SAFETY: KDSKBMODE and KDSETMODE take their argument by value.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, value as libc::c_ulong) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl<'fd> ConsoleLock<'fd> {
    /// Turns the keyboard of the VT behind `fd` off and puts it in graphics
    /// mode. Fails with [`ConsoleError::NotAVirtualTerminal`] when `fd` is
    /// not a VT (a desktop session, a pipe, a serial line).
    pub fn acquire(fd: BorrowedFd<'fd>) -> Result<ConsoleLock<'fd>, ConsoleError> {
        let keyboard_mode = ioctl_get(fd, KDGKBMODE).map_err(|_| ConsoleError::NotAVirtualTerminal)?;
        let display_mode =
            ioctl_get(fd, KDGETMODE).map_err(|source| ConsoleError::Ioctl { what: "KDGETMODE", source })?;
        ioctl_set(fd, KDSKBMODE, K_OFF)
            .map_err(|source| ConsoleError::Ioctl { what: "KDSKBMODE", source })?;
        let lock = ConsoleLock { fd, keyboard_mode, display_mode };
        ioctl_set(fd, KDSETMODE, KD_GRAPHICS)
            .map_err(|source| ConsoleError::Ioctl { what: "KDSETMODE", source })?;
        Ok(lock)
    }
}

impl Drop for ConsoleLock<'_> {
    fn drop(&mut self) {
        let _ = ioctl_set(self.fd, KDSETMODE, self.display_mode);
        let _ = ioctl_set(self.fd, KDSKBMODE, self.keyboard_mode);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_file_that_is_not_a_virtual_terminal_is_refused_and_left_alone() {
        let file = std::fs::File::open("/dev/null").expect("/dev/null");
        let error = ConsoleLock::acquire(file.as_fd()).expect_err("/dev/null is no VT");
        assert!(matches!(error, ConsoleError::NotAVirtualTerminal), "{error}");
        let pipe = tempfile_pipe();
        assert!(matches!(ConsoleLock::acquire(pipe.as_fd()), Err(ConsoleError::NotAVirtualTerminal)));
    }

    fn tempfile_pipe() -> std::os::fd::OwnedFd {
        let (reader, _writer) = std::io::pipe().expect("pipe");
        reader.into()
    }
}
