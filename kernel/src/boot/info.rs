//! Everything the kernel learns from the flattened device tree: the interpretation lives
//! in [`pagoda_formats::devicetree`] (host-tested there with hostile trees); what stays
//! here is finding the tree, through the direct map.

pub use pagoda_formats::devicetree::*;

use fdt::Fdt;
use pagoda_mm::addr::PhysAddr;
use pagoda_mm::layout::phys_to_virt;

/// Opens the flattened device tree at physical address `dtb`, checked whole first
/// ([`pagoda_formats::devicetree::open`]: the `fdt` crate trusts what it reads).
///
/// # Safety
/// `dtb` must be the address the firmware passed in `a1`, readable through the direct
/// map for the kernel's lifetime, for the header's 40 bytes and then the `totalsize` the
/// header gives.
pub unsafe fn open(dtb: PhysAddr) -> Result<Fdt<'static>, BootError> {
    let ptr = phys_to_virt(dtb).as_usize() as *const u8;
    // SAFETY: the caller guarantees the firmware's header is mapped at `ptr`.
    let header = unsafe { core::slice::from_raw_parts(ptr, 8) };
    if header[..4] != 0xd00d_feed_u32.to_be_bytes() {
        return Err(BootError::Malformed("no header"));
    }
    let total = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    // SAFETY: the caller guarantees the whole tree (`totalsize` bytes) is mapped there,
    // for the kernel's lifetime.
    let blob = unsafe { core::slice::from_raw_parts(ptr, total) };
    pagoda_formats::devicetree::open(blob)
}
