//! The initramfs: a `newc` cpio archive the firmware placed in RAM (its range comes
//! from `/chosen/linux,initrd-*`), indexed once at boot by [`pagoda_formats::cpio`]
//! (host-tested there with hostile archives) and read in place: the frame allocator
//! never hands out its frames, so file contents are `'static` slices into it.

pub use pagoda_formats::cpio::{Kind, S_IFDIR};

/// A file or directory of the initramfs.
pub type Node = pagoda_formats::cpio::Node<'static>;

/// The indexed initramfs.
pub type Initramfs = pagoda_formats::cpio::Initramfs<'static>;
