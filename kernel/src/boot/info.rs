//! Everything the kernel learns from the flattened device tree: the interpretation lives
//! in [`pagoda_formats::devicetree`] (host-tested there with hostile trees); what stays
//! here is finding the tree, through the direct map.

pub use pagoda_formats::devicetree::*;

use fdt::Fdt;
use pagoda_mm::addr::PhysAddr;
use pagoda_mm::layout::phys_to_virt;

/// Opens the flattened device tree at physical address `dtb`.
///
/// # Safety
/// `dtb` must be the address the firmware passed in `a1`, readable through the direct
/// map for the kernel's lifetime.
pub unsafe fn open(dtb: PhysAddr) -> Result<Fdt<'static>, BootError> {
    let ptr = phys_to_virt(dtb).as_usize() as *const u8;
    // SAFETY: the caller guarantees the firmware's device tree is mapped at `ptr`;
    // `from_ptr` checks the header before reading further.
    unsafe { Fdt::from_ptr(ptr) }.map_err(BootError::BadDeviceTree)
}
