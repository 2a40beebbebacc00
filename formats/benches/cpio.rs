//! The initramfs index (`pagoda_formats::cpio::Initramfs`) against a scan of the archive
//! (what a lookup cost before the index: one pass over the headers to the entry, or to
//! the end for a missing path), on an archive of 10,000 files in 100 directories plus
//! one 100 MB file, and on a 2,000-entry one: lookup cost must not grow with the archive.
//!
//! Run: `cargo bench -p pagoda-formats --bench cpio`. Each figure is the best of
//! `REPEATS` runs, in ns per operation; lower is better.

use std::hint::black_box;
use std::time::Instant;

use pagoda_formats::cpio::{Initramfs, parse};

const REPEATS: usize = 3;

/// One `newc` entry (header, name, data, padding).
fn entry(out: &mut Vec<u8>, ino: u32, mode: u32, name: &str, data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// `files` files spread over 100 directories, a 16-deep chain of directory links, and
/// (if `big`) a file of `big` bytes placed first, as a large program would be.
fn archive(files: u32, big: usize) -> Vec<u8> {
    let mut a = Vec::with_capacity(big + files as usize * 200);
    if big > 0 {
        entry(&mut a, 2, 0o100644, "big.bin", &vec![0x5a; big]);
    }
    for d in 0..100 {
        entry(&mut a, 10 + d, 0o040755, &format!("dir{d}"), b"");
    }
    for i in 0..files {
        entry(
            &mut a,
            1000 + i,
            0o100644,
            &format!("dir{}/file{i}", i % 100),
            b"data\n",
        );
    }
    entry(&mut a, 500, 0o120777, "link0", b"dir99");
    for l in 1..16u32 {
        entry(
            &mut a,
            500 + l,
            0o120777,
            &format!("link{l}"),
            format!("link{}", l - 1).as_bytes(),
        );
    }
    entry(&mut a, 0, 0, "TRAILER!!!", b"");
    a
}

/// Best of `REPEATS` runs of `f` done `n` times, in ns per call.
fn ns_per_op(n: usize, mut f: impl FnMut(usize)) -> f64 {
    (0..REPEATS)
        .map(|_| {
            let t = Instant::now();
            for i in 0..n {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn report(name: &str, a: &[u8], files: u32) {
    let t = Instant::now();
    let fs = Initramfs::new(a);
    let index_ms = t.elapsed().as_secs_f64() * 1e3;
    let path = |i: usize| format!("/dir{}/file{}", i % 100, (i * 7919) % files as usize);
    let paths: Vec<String> = (0..1000).map(path).collect();
    let hit = ns_per_op(paths.len(), |i| {
        black_box(fs.resolve(&paths[i], true).is_ok());
    });
    let miss = ns_per_op(1000, |_| {
        black_box(fs.resolve("/nonexistent", true).is_err());
    });
    let links = ns_per_op(1000, |_| {
        black_box(fs.resolve("/link15/file99", true).is_ok());
    });
    let per_dir = files as usize / 100;
    let list = ns_per_op(10, |_| {
        let n = (0..).map_while(|i| fs.child("/dir7", i)).count();
        assert_eq!(n, per_dir);
    }) / per_dir as f64;
    // Before the index: every lookup walked the headers from the start.
    let scan = ns_per_op(3, |_| {
        black_box(parse(a).any(|e| e.name == "nonexistent"));
    });
    println!(
        "{name:<34} {:>9.1} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>12.0}",
        a.len() as f64 / 1e6,
        index_ms * 1e6 / f64::from(files),
        hit,
        miss,
        links,
        scan,
    );
    println!("{:<34} getdents-style listing: {list:.0} ns per entry", "");
}

fn main() {
    println!("initramfs lookups (ns per operation, best of {REPEATS}; lower is better)");
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "archive", "MB", "index/f", "lookup", "missing", "16 links", "scan (old)"
    );
    report("2,000 files", &archive(2_000, 0), 2_000);
    report(
        "10,000 files + a 100 MB file",
        &archive(10_000, 100_000_000),
        10_000,
    );
}
