//! The `newc` parser and index against hostile archives: truncated, overflowing sizes,
//! bad fields, missing NULs, escaping paths, duplicates, misaligned buffers and many
//! entries. Nothing panics; the entries before the first bad one stay usable.

use pagoda_formats::cpio::{Initramfs, Kind, LookupError, MAX_SYMLINKS, PATH_MAX, parse};

/// One `newc` header and name, with `data` after it, padded to 4 bytes; the header
/// fields are given as text so that a test can put anything there.
fn raw_entry(
    ino: &str,
    mode: &str,
    size: &str,
    namesize: &str,
    name: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend_from_slice(b"070701");
    for field in [
        ino, mode, "00000000", "00000000", "00000001", "00000000", size, "00000000", "00000000",
        "00000000", "00000000", namesize, "00000000",
    ] {
        assert_eq!(field.len(), 8);
        e.extend_from_slice(field.as_bytes());
    }
    e.extend_from_slice(name);
    while !e.len().is_multiple_of(4) {
        e.push(0);
    }
    e.extend_from_slice(data);
    while !e.len().is_multiple_of(4) {
        e.push(0);
    }
    e
}

fn entry(ino: u32, mode: u32, name: &str, data: &[u8]) -> Vec<u8> {
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    raw_entry(
        &format!("{ino:08x}"),
        &format!("{mode:08x}"),
        &format!("{:08x}", data.len()),
        &format!("{:08x}", n.len()),
        &n,
        data,
    )
}

fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut a: Vec<u8> = entries.concat();
    a.extend(entry(0, 0, "TRAILER!!!", b""));
    a
}

fn sample() -> Vec<u8> {
    archive(&[
        entry(2, 0o040755, "bin", b""),
        entry(3, 0o100755, "bin/sh", b"#!shell"),
        entry(4, 0o100644, "etc/motd", b"hello\n"),
        entry(5, 0o100644, "empty", b""),
    ])
}

#[test]
fn a_well_formed_archive_is_indexed() {
    let a = sample();
    let fs = Initramfs::new(&a);
    let sh = fs.lookup("/bin/sh").unwrap();
    assert_eq!(
        (sh.kind, sh.data, sh.perm),
        (Kind::File, &b"#!shell"[..], 0o755)
    );
    assert_eq!(
        fs.lookup("etc").unwrap().kind,
        Kind::Dir,
        "implied directory"
    );
    assert_eq!(fs.lookup("./etc/motd/").unwrap().data, b"hello\n");
    assert_eq!(fs.lookup("empty").unwrap().data, b"");
    let top: Vec<&str> = (0..)
        .map_while(|i| fs.child("/", i))
        .map(|n| n.path)
        .collect();
    assert_eq!(top, ["bin", "etc", "empty"]);
    assert!(fs.child("/bin", 1).is_none());
}

#[test]
fn every_truncation_keeps_a_prefix_of_the_entries() {
    let a = sample();
    let full: Vec<_> = parse(&a).map(|e| e.name).collect();
    for len in 0..a.len() {
        let got: Vec<_> = parse(&a[..len]).map(|e| e.name).collect();
        assert!(full.starts_with(&got), "truncated to {len}: {got:?}");
        let fs = Initramfs::new(&a[..len]);
        assert!(fs.lookup("/").is_some());
    }
}

#[test]
fn any_alignment_of_the_buffer_reads_the_same() {
    let a = sample();
    for shift in 1..8 {
        let mut buf = vec![0u8; a.len() + shift];
        buf[shift..].copy_from_slice(&a);
        assert_eq!(parse(&buf[shift..]).count(), 4, "shift {shift}");
    }
}

#[test]
fn overflowing_and_malformed_fields_end_the_archive() {
    let good = entry(2, 0o100644, "a", b"x");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "huge size",
            raw_entry("00000003", "000081a4", "ffffffff", "00000002", b"b\0", b""),
        ),
        (
            "huge namesize",
            raw_entry("00000003", "000081a4", "00000000", "ffffffff", b"b\0", b""),
        ),
        (
            "zero namesize",
            raw_entry("00000003", "000081a4", "00000000", "00000000", b"", b""),
        ),
        (
            "name without its NUL",
            raw_entry("00000003", "000081a4", "00000000", "00000002", b"bc", b""),
        ),
        (
            "non-hex digit",
            raw_entry("00000003", "000081a4", "0000000g", "00000002", b"b\0", b""),
        ),
        (
            "signed field",
            raw_entry("00000003", "000081a4", "+0000001", "00000002", b"b\0", b"y"),
        ),
        (
            "spaces",
            raw_entry("00000003", "000081a4", " 0000001", "00000002", b"b\0", b"y"),
        ),
        (
            "name not UTF-8",
            raw_entry(
                "00000003", "000081a4", "00000000", "00000002", b"\xff\0", b"",
            ),
        ),
    ];
    for (why, bad) in cases {
        let a = archive(&[good.clone(), bad, entry(4, 0o100644, "c", b"z")]);
        let names: Vec<_> = parse(&a).map(|e| e.name).collect();
        assert_eq!(names, ["a"], "{why}");
    }
    let mut bad_magic = sample();
    bad_magic[5] = b'9';
    assert_eq!(parse(&bad_magic).count(), 0);
}

#[test]
fn paths_that_escape_or_repeat_are_ignored() {
    let a = archive(&[
        entry(2, 0o100644, "../etc/passwd", b"x"),
        entry(3, 0o100644, "a/./b", b"x"),
        entry(4, 0o100644, ".", b"x"),
        entry(5, 0o100644, "f", b"first"),
        entry(6, 0o100644, "f", b"second"),
        entry(7, 0o040755, "d", b""),
        entry(8, 0o100644, "d/x", b""),
    ]);
    let fs = Initramfs::new(&a);
    assert!(fs.lookup("etc/passwd").is_none() && fs.lookup("../etc/passwd").is_none());
    assert!(fs.lookup("a/b").is_none());
    assert_eq!(fs.lookup("f").unwrap().data, b"first");
    assert_eq!(fs.lookup("d").unwrap().ino, 7);
}

#[test]
fn a_listed_directory_replaces_the_implied_one_and_keeps_its_place() {
    let a = archive(&[entry(2, 0o100644, "d/x", b""), entry(9, 0o040700, "d", b"")]);
    let fs = Initramfs::new(&a);
    let d = fs.lookup("d").unwrap();
    assert_eq!((d.kind, d.perm), (Kind::Dir, 0o700));
    assert_eq!(fs.child("d", 0).unwrap().path, "d/x");
}

#[test]
fn many_entries_index_in_order() {
    let entries: Vec<Vec<u8>> = (0..5000u32)
        .map(|i| entry(i + 2, 0o100644, &format!("dir{}/f{i}", i % 7), b"."))
        .collect();
    let a = archive(&entries);
    let fs = Initramfs::new(&a);
    for i in (0..5000).step_by(499) {
        assert!(fs.lookup(&format!("dir{}/f{i}", i % 7)).is_some());
    }
    let in_dir3 = (0..).map_while(|i| fs.child("dir3", i)).count();
    assert_eq!(in_dir3, (0..5000).filter(|i| i % 7 == 3).count());
}

/// A small tree with links: absolute, relative, to directories, dangling, chained, looping.
fn linked() -> Vec<u8> {
    let mut v = vec![
        entry(2, 0o040755, "bin", b""),
        entry(3, 0o100755, "bin/busybox", b"ELF"),
        entry(4, 0o120777, "bin/ls", b"busybox"),
        entry(5, 0o040755, "usr/bin", b""),
        entry(6, 0o120777, "usr/bin/awk", b"/bin/busybox"),
        entry(7, 0o120777, "usr/bin/up", b"../../bin"),
        entry(8, 0o120777, "lib", b"usr/bin"),
        entry(9, 0o120777, "dangling", b"/nowhere"),
        entry(10, 0o120777, "loop1", b"loop2"),
        entry(11, 0o120777, "loop2", b"/loop1"),
        entry(12, 0o120777, "tofile", b"bin/busybox"),
        entry(13, 0o120777, "empty", b""),
    ];
    // chain0 -> chain1 -> ... -> chain40 -> bin/busybox: 41 links, one too many.
    for i in 0..=MAX_SYMLINKS {
        let target = if i == MAX_SYMLINKS {
            "bin/busybox".to_string()
        } else {
            format!("chain{}", i + 1)
        };
        v.push(entry(
            100 + i as u32,
            0o120777,
            &format!("chain{i}"),
            target.as_bytes(),
        ));
    }
    archive(&v)
}

#[test]
fn symbolic_links_are_followed_as_linux_does() {
    let a = linked();
    let fs = Initramfs::new(&a);
    let bb = |p: &str, follow| fs.resolve(p, follow).map(|n| n.ino);
    assert_eq!(bb("/bin/ls", true), Ok(3), "relative target");
    assert_eq!(bb("/usr/bin/awk", true), Ok(3), "absolute target");
    assert_eq!(
        bb("/usr/bin/up/busybox", true),
        Ok(3),
        "link to a directory, mid-path"
    );
    assert_eq!(bb("/lib/awk", true), Ok(3), "two links");
    assert_eq!(bb("/lib/up/./ls", true), Ok(3), "three links and a dot");
    assert_eq!(
        bb("/lib/../bin/awk", true),
        Ok(3),
        "`..` of a linked directory is physical (/usr, not /)"
    );
    assert_eq!(bb("/bin/ls", false), Ok(4), "the last link itself");
    assert_eq!(fs.resolve("/bin/ls", false).unwrap().kind, Kind::Symlink);
    assert_eq!(fs.resolve("/bin/ls", false).unwrap().data, b"busybox");
    assert_eq!(fs.resolve("/lib", false).unwrap().kind, Kind::Symlink);
    assert_eq!(
        fs.resolve("/lib/", false).unwrap().kind,
        Kind::Dir,
        "a trailing / follows"
    );
    assert_eq!(bb("/dangling", true), Err(LookupError::NotFound));
    assert_eq!(bb("/dangling", false), Ok(9));
    assert_eq!(bb("/loop1", true), Err(LookupError::Loop));
    assert_eq!(bb("/loop1/x", false), Err(LookupError::Loop));
    assert_eq!(bb("/chain1", true), Ok(3), "40 links are allowed");
    assert_eq!(bb("/chain0", true), Err(LookupError::Loop), "41 are not");
    assert_eq!(bb("/tofile/x", true), Err(LookupError::NotDir));
    assert_eq!(bb("/tofile/", true), Err(LookupError::NotDir));
    assert_eq!(bb("/bin/busybox/", true), Err(LookupError::NotDir));
    assert_eq!(bb("/empty", true), Err(LookupError::NotFound));
    assert_eq!(
        bb("/../../bin/ls", true),
        Ok(3),
        "`..` of the root is the root"
    );
    assert_eq!(bb("/", true), Ok(1));
    assert_eq!(bb("//bin//", true), Ok(2));
    assert_eq!(bb("/nope/ls", true), Err(LookupError::NotFound));
}

#[test]
fn long_link_targets_are_refused() {
    let long = "a/".repeat(PATH_MAX / 2);
    let a = archive(&[
        entry(2, 0o120777, "big", long.as_bytes()),
        entry(3, 0o120777, "self", b"self/self/self/self"),
    ]);
    let fs = Initramfs::new(&a);
    assert_eq!(
        fs.resolve("big", true).map(|n| n.ino),
        Err(LookupError::TooLong)
    );
    // Each step of a link that names itself several times grows the path: the walk
    // stops at MAX_SYMLINKS or PATH_MAX, whichever comes first, and never panics.
    assert!(fs.resolve("self", true).is_err());
}

#[test]
fn modes_and_mtimes_come_from_the_archive() {
    let mut e = entry(2, 0o100640, "f", b"x");
    // c_mtime is the sixth field: 6 bytes of magic + 5 fields of 8.
    e[6 + 5 * 8..6 + 6 * 8].copy_from_slice(b"5f5e1000");
    let a = archive(&[e]);
    let fs = Initramfs::new(&a);
    let f = fs.resolve("f", true).unwrap();
    assert_eq!((f.perm, f.mtime), (0o640, 0x5f5e_1000));
}
