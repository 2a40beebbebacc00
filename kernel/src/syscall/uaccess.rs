//! Safe access to user memory for system calls: every pointer is checked against the user
//! half, then copied by the fault-tolerant routine in [`crate::arch::uaccess`]. A bad
//! pointer is `EFAULT`.

use alloc::string::String;
use alloc::vec::Vec;

use pagoda_mm::addr::PAGE_SIZE;

use crate::arch::uaccess;
use crate::errno::Errno;

/// Longest path accepted (Linux's `PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// Checks that `[va, va + len)` lies in the user half.
pub fn check_range(va: usize, len: usize) -> Result<(), Errno> {
    if uaccess::in_user_half(va, len) {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Copies `dst.len()` bytes from user address `src`.
pub fn copy_from_user(dst: &mut [u8], src: usize) -> Result<(), Errno> {
    if uaccess::copy_from_user(dst, src) {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Copies `src` to user address `dst`.
pub fn copy_to_user(dst: usize, src: &[u8]) -> Result<(), Errno> {
    if uaccess::copy_to_user(dst, src) {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Bytes a system call moves through a kernel buffer at a time ([`copy_out`], `read`,
/// `write`).
pub const COPY_CHUNK: usize = 4096;

/// Writes up to `len` bytes that `produce` makes to user memory at `buf`, a
/// [`COPY_CHUNK`] at a time through a kernel buffer: `produce(done, chunk)` fills the start
/// of `chunk` with the bytes that follow the `done` already written and returns how many
/// (fewer than asked, or 0, ends the copy). Returns the bytes written. A buffer that does
/// not lie wholly in the user half is `EFAULT` before anything is produced; an unmapped
/// page inside it ends the copy like Linux: with the count written so far, or `EFAULT`
/// if that is 0.
pub fn copy_out(
    buf: usize,
    len: usize,
    mut produce: impl FnMut(usize, &mut [u8]) -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    check_range(buf, len)?;
    let mut chunk = [0u8; COPY_CHUNK];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(COPY_CHUNK);
        let n = produce(done, &mut chunk[..want])?;
        if n == 0 {
            break;
        }
        if let Err(e) = copy_to_user(buf + done, &chunk[..n]) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        done += n;
        if n < want {
            break;
        }
    }
    Ok(done)
}

/// Reads a `u64` from user memory.
pub fn read_u64(va: usize) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    copy_from_user(&mut b, va)?;
    Ok(u64::from_le_bytes(b))
}

/// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
pub fn read_cstr(va: usize, max: usize) -> Result<String, Errno> {
    let mut out = Vec::new();
    let mut at = va;
    loop {
        // Copy up to the end of the page: never touches a page the string does not use.
        let chunk = PAGE_SIZE - at % PAGE_SIZE;
        let mut buf = [0u8; PAGE_SIZE];
        copy_from_user(&mut buf[..chunk], at)?;
        if let Some(nul) = buf[..chunk].iter().position(|&b| b == 0) {
            out.try_reserve(nul).map_err(|_| Errno::ENOMEM)?;
            out.extend_from_slice(&buf[..nul]);
            break;
        }
        out.try_reserve(chunk).map_err(|_| Errno::ENOMEM)?;
        out.extend_from_slice(&buf[..chunk]);
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        at += chunk;
    }
    if out.len() > max {
        return Err(Errno::ENAMETOOLONG);
    }
    String::from_utf8(out).map_err(|_| Errno::ENOENT)
}

/// Reads a NULL-terminated array of string pointers (argv, envp), with limits on the
/// count and the total size (Linux's `E2BIG`).
pub fn read_cstr_array(va: usize, max_total: usize) -> Result<Vec<String>, Errno> {
    let mut out = Vec::new();
    if va == 0 {
        return Ok(out);
    }
    let mut total = 0;
    for i in 0.. {
        let p = read_u64(va + i * 8)? as usize;
        if p == 0 {
            break;
        }
        let s = read_cstr(p, max_total)?;
        total += s.len() + 1 + 8;
        if total > max_total {
            return Err(Errno::E2BIG);
        }
        out.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        out.push(s);
    }
    Ok(out)
}
