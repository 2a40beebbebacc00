//! # pagoda-formats: the formats the kernel reads from untrusted bytes
//!
//! A `no_std` library, built into the kernel and tested on the host with hostile inputs
//! (truncated, overlapping, overflowing, misaligned, zero-sized, huge counts):
//!
//! | module | format |
//! |---|---|
//! | [`elf`] | static riscv64 ELF executables: validation and the load plan |
//! | [`cpio`] | `newc` cpio archives (the initramfs): the parser and the sorted index |
//! | [`devicetree`] | what the kernel learns from a flattened device tree (`fdt` crate) |
//! | [`swap`] | Linux's swap-area header (`mkswap`'s `SWAPSPACE2`) |
//!
//! Every parser checks each field and offset before using it: malformed input is an
//! error (or, for an archive, the end of it), never a panic or an out-of-bounds read.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

pub mod cpio;
pub mod devicetree;
pub mod elf;
pub mod swap;
