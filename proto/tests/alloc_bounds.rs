//! Decoding never reserves memory on the word of a length field: a counting
//! allocator records the largest single allocation made while decoding frames
//! whose length fields lie.
//!
//! Own test binary because it installs a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proto::central::CentralToEdge;
use proto::tablet::TabletResponse;
use proto::{decode_body, decode_frame, FrameError, MAX_CENTRAL_FRAME, MAX_TABLET_FRAME, PROTOCOL_VERSION};

struct LargestAllocation;

thread_local! {
    // Per thread so that tests running in parallel do not see each other.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn note(size: usize) {
    // try_with: the slot may already be gone while a thread shuts down.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// Largest single allocation made by `f` on this thread.
fn largest_allocation_in<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    let result = f();
    (result, LARGEST.with(|l| l.get()))
}

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn frame_of(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// Allocations below this are error strings and the like, not buffers sized
/// from the input.
const SMALL: usize = 1024;

#[test]
fn vec_claiming_2_pow_60_elements_allocates_nothing_sized_by_the_claim() {
    // CentralToEdge::Changes(ChangeBatch { since: 0, changes: len 2^60, .. })
    let mut body = vec![PROTOCOL_VERSION, 1, 0];
    body.extend(varint(1 << 60));
    let frame = frame_of(&body);
    let (result, largest) =
        largest_allocation_in(|| decode_frame::<CentralToEdge>(&frame, MAX_CENTRAL_FRAME));
    assert!(matches!(result, Err(FrameError::Malformed(_))), "{result:?}");
    assert!(largest < SMALL, "largest allocation {largest} bytes");
}

#[test]
fn vec_claiming_more_elements_than_bytes_left_is_not_preallocated() {
    // A claim of 60 000 contacts with only a few bytes (an unfinished varint)
    // behind it. Without the check against the bytes left, serde would
    // reserve up to 1 MiB here before failing.
    let mut body = vec![PROTOCOL_VERSION, 2 /* Contacts */];
    body.extend(varint(60_000));
    body.extend_from_slice(&[0xff; 8]);
    let (result, largest) = largest_allocation_in(|| decode_body::<TabletResponse>(&body, MAX_TABLET_FRAME));
    assert!(matches!(result, Err(FrameError::Malformed(_))), "{result:?}");
    assert!(largest < SMALL, "largest allocation {largest} bytes");
}

#[test]
fn string_claiming_2_pow_60_bytes_allocates_nothing_sized_by_the_claim() {
    // CentralToEdge::Welcome { facility: <len 2^60>, .. }
    let mut body = vec![PROTOCOL_VERSION, 0];
    body.extend(varint(1 << 60));
    body.extend_from_slice(b"demo");
    let (result, largest) = largest_allocation_in(|| decode_body::<CentralToEdge>(&body, MAX_CENTRAL_FRAME));
    assert!(matches!(result, Err(FrameError::Malformed(_))), "{result:?}");
    assert!(largest < SMALL, "largest allocation {largest} bytes");
}

#[test]
fn four_gib_header_allocates_nothing() {
    let mut frame = u32::MAX.to_be_bytes().to_vec();
    frame.extend_from_slice(&[PROTOCOL_VERSION, 0]);
    let (result, largest) =
        largest_allocation_in(|| decode_frame::<CentralToEdge>(&frame, MAX_CENTRAL_FRAME));
    assert_eq!(result, Err(FrameError::TooLarge { len: u32::MAX as usize, max: MAX_CENTRAL_FRAME }));
    assert!(largest < SMALL, "largest allocation {largest} bytes");
}

/// The counter itself works: a real allocation of the size in question is seen.
#[test]
fn counter_sees_large_allocations() {
    let (v, largest) = largest_allocation_in(|| vec![0u8; 1 << 20]);
    assert_eq!(v.len(), 1 << 20);
    assert!(largest >= 1 << 20);
}
