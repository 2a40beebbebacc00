//! The initramfs index of an arbitrary archive, then walks over it: every indexed path
//! looked up, resolved (links followed, with Linux's limits) and listed, and a path
//! taken from the input resolved. Nothing panics; what a lookup finds has the path asked
//! for; listing a directory gives each child once, under that directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pagoda_formats::cpio::{Initramfs, Kind, parse};

fuzz_target!(|data: &[u8]| {
    // The first byte: how many of the next bytes form a path to resolve; the rest is the
    // archive.
    let Some((&n, rest)) = data.split_first() else { return };
    let (path, archive) = rest.split_at((n as usize).min(rest.len()));
    let path = String::from_utf8_lossy(path);
    let fs = Initramfs::new(archive);
    let _ = fs.resolve(&path, true);
    let _ = fs.resolve(&path, false);
    let (bytes, nodes) = fs.size();
    assert!(bytes <= archive.len());
    assert!(nodes >= 1, "the root is always there");
    for entry in parse(archive).take(64) {
        let Some(node) = fs.lookup(entry.name) else { continue };
        let _ = fs.resolve(entry.name, true);
        if node.kind == Kind::Dir {
            let mut seen = 0;
            while let Some(kid) = fs.child(node.path, seen) {
                let parent = kid.path.rsplit_once('/').map_or("", |(d, _)| d);
                assert_eq!(parent, node.path, "a child of {:?}", node.path);
                seen += 1;
                assert!(seen <= nodes);
            }
        }
    }
    let mut seen = 0;
    while fs.child("", seen).is_some() {
        seen += 1;
        assert!(seen <= nodes);
    }
});
