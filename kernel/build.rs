//! Writes the kernel's linker script with the link address taken from
//! `pagoda_mm::layout::KERNEL_IMAGE_BASE`, so the address is named in one place only.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let template = include_str!("linker.ld.in");
    let base = format!("{:#x}", pagoda_mm::layout::KERNEL_IMAGE_BASE.as_usize());
    let script = template.replace("@KERNEL_IMAGE_BASE@", &base);
    let path = out.join("linker.ld");
    fs::write(&path, script).expect("write linker script");
    if env::var("TARGET").is_ok_and(|t| t.starts_with("riscv64")) {
        println!("cargo:rustc-link-arg=-T{}", path.display());
    }
    println!("cargo:rerun-if-changed=linker.ld.in");
    println!("cargo:rerun-if-changed=../mm/src/layout.rs");
}
