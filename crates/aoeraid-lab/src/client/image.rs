//! The guest's kernel and initramfs.
//!
//! The base initramfs (busybox, modules, e2fsprogs, /init) depends only on
//! the kernel version and on the guest files in realclient/guest, so it
//! is built once and cached as `initramfs-<kver>-<hash>.cpio` under
//! $AOERAID_LAB_CACHE (default /var/tmp/aoeraid-lab-cache). Each boot then
//! appends a small second archive with the workloads and settings of that run
//! (the kernel unpacks concatenated archives in order). Nothing is
//! compressed: under TCG the guest would spend longer inflating than qemu
//! spends loading a few more megabytes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use super::super::sh::{err, run};
use super::cpio::Cpio;

pub(crate) struct Kernel {
    pub image: PathBuf,
    pub version: String,
}

fn realclient_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("realclient")
}

/// Newest /boot/vmlinuz-* whose /lib/modules/<version> has aoe.ko
/// ($AOERAID_GUEST_KERNEL=/boot/vmlinuz-X picks one).
pub(crate) fn find_kernel() -> io::Result<Kernel> {
    let mut candidates: Vec<PathBuf> = match std::env::var_os("AOERAID_GUEST_KERNEL") {
        Some(k) => vec![PathBuf::from(k)],
        None => fs::read_dir("/boot")?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
            .collect(),
    };
    candidates.sort_by_key(|p| std::cmp::Reverse(version_key(p)));
    for image in candidates {
        let version = image
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .trim_start_matches("vmlinuz-")
            .to_string();
        if find_module(&version, "aoe").is_some() {
            return Ok(Kernel { image, version });
        }
    }
    Err(err(
        "no /boot/vmlinuz-* with an aoe module in /lib/modules (apt-get install linux-image-amd64)",
    ))
}

fn version_key(p: &Path) -> Vec<u64> {
    p.to_string_lossy()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect()
}

fn find_module(version: &str, name: &str) -> Option<PathBuf> {
    let out = Command::new("modprobe")
        .args(["-S", version, "--show-depends", name])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("insmod "))
        .map(|l| PathBuf::from(l.split_whitespace().next().unwrap_or("")))
        .next_back()
}

/// Module files (dependency order) needed for `names`; built-ins are skipped.
fn module_closure(version: &str, names: &[&str]) -> io::Result<Vec<PathBuf>> {
    let mut all: Vec<PathBuf> = Vec::new();
    for n in names {
        let out = run(Command::new("modprobe").args(["-S", version, "--show-depends", n]))?;
        for l in out.lines() {
            if let Some(rest) = l.strip_prefix("insmod ") {
                let p = PathBuf::from(rest.split_whitespace().next().unwrap_or(""));
                if !all.contains(&p) {
                    all.push(p);
                }
            }
        }
    }
    Ok(all)
}

/// Module bytes, decompressed (busybox insmod takes plain .ko only).
fn module_bytes(p: &Path) -> io::Result<Vec<u8>> {
    let s = p.to_string_lossy();
    let tool = if s.ends_with(".xz") {
        Some(["xz", "-dc"])
    } else if s.ends_with(".zst") {
        Some(["zstd", "-dc"])
    } else if s.ends_with(".gz") {
        Some(["gzip", "-dc"])
    } else {
        None
    };
    match tool {
        None => fs::read(p),
        Some([prog, flag]) => {
            let out = Command::new(prog).arg(flag).arg(p).output()?;
            if !out.status.success() {
                return Err(err(format!("{prog} could not decompress {}", p.display())));
            }
            Ok(out.stdout)
        }
    }
}

fn ko_name(p: &Path) -> String {
    let n = p
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let n = n
        .trim_end_matches(".xz")
        .trim_end_matches(".zst")
        .trim_end_matches(".gz");
    n.to_string()
}

fn static_busybox() -> io::Result<PathBuf> {
    for b in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(b);
        if p.is_file() {
            // `ldd` on a static binary exits non-zero ("not a dynamic executable").
            let dynamic = Command::new("ldd")
                .arg(p)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(true);
            if !dynamic {
                return Ok(p.to_path_buf());
            }
        }
    }
    Err(err("no static busybox (apt-get install busybox-static)"))
}

fn which(name: &str, package: &str) -> io::Result<PathBuf> {
    for d in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(d).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(err(format!("{name} not found (apt-get install {package})")))
}

/// Copies host programs to `dir` in the archive, with every library `ldd`
/// lists for the ELF ones at the path the loader looks for it (scripts go
/// as they are).
fn binaries_with_libs(c: &mut Cpio, dir: &str, bins: &[PathBuf], strip: bool) -> io::Result<()> {
    let mut libs: Vec<PathBuf> = Vec::new();
    for bin in bins {
        let name = bin.file_name().unwrap_or_default().to_string_lossy();
        let bytes = fs::read(if strip { stripped(bin)? } else { bin.clone() })?;
        c.file(&format!("{dir}/{name}"), 0o755, &bytes);
        if !bytes.starts_with(b"\x7fELF") {
            continue;
        }
        for l in ldd(bin)? {
            if !libs.contains(&l) {
                libs.push(l);
            }
        }
    }
    for l in &libs {
        c.file(&l.to_string_lossy(), 0o755, &fs::read(l)?);
    }
    Ok(())
}

/// Shared libraries `ldd` lists for `bin`, as (path the loader uses, file).
fn ldd(bin: &Path) -> io::Result<Vec<PathBuf>> {
    let out = run(Command::new("ldd").arg(bin))?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, r)) => r.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

fn cache_dir() -> io::Result<PathBuf> {
    let cache = std::env::var_os("AOERAID_LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/aoeraid-lab-cache"));
    fs::create_dir_all(&cache)?;
    Ok(cache)
}

/// What qemu should boot: the uncompressed vmlinux ELF through its PVH entry
/// when the kernel has CONFIG_PVH (measured here under load: 17 s from qemu
/// start to the guest's module loading instead of 42 s — TCG spends most of
/// the difference in the bzImage's xz decompressor), else the bzImage.
/// The ELF is extracted once per kernel version into the cache.
pub(crate) fn boot_image(k: &Kernel) -> io::Result<PathBuf> {
    let config = fs::read_to_string(format!("/boot/config-{}", k.version)).unwrap_or_default();
    if !config.lines().any(|l| l == "CONFIG_PVH=y") {
        return Ok(k.image.clone());
    }
    let path = cache_dir()?.join(format!("vmlinux-{}", k.version));
    if path.is_file() {
        return Ok(path);
    }
    let (magic, tool): (&[u8], [&str; 2]) = if config.contains("CONFIG_KERNEL_XZ=y") {
        (b"\xfd7zXZ\x00", ["xz", "-dcq"])
    } else if config.contains("CONFIG_KERNEL_ZSTD=y") {
        (b"\x28\xb5\x2f\xfd", ["zstd", "-dcq"])
    } else if config.contains("CONFIG_KERNEL_GZIP=y") {
        (b"\x1f\x8b\x08", ["gzip", "-dcq"])
    } else {
        return Ok(k.image.clone());
    };
    let bz = fs::read(&k.image)?;
    let Some(at) = bz.windows(magic.len()).position(|w| w == magic) else {
        return Ok(k.image.clone());
    };
    // The payload is followed by other data, so the decompressor may
    // complain at the end; what counts is that an ELF came out.
    let mut child = Command::new(tool[0])
        .arg(tool[1])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or_else(|| err("no stdin"))?;
    let payload = bz[at..].to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&payload);
    });
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.stdout.starts_with(b"\x7fELF") {
        return Ok(k.image.clone());
    }
    write_cached(&path, &out.stdout)?;
    Ok(path)
}

/// Puts `bytes` at `path` in the cache all at once: written to a file of its
/// own and renamed, so a test booting meanwhile (another process, or another
/// test thread of this one) sees the old file or the whole new one.
fn write_cached(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

const FORMAT: &str = "aoelab-initramfs-v1";

/// The cached base initramfs for `k`, built if missing.
pub(crate) fn base_initramfs(k: &Kernel) -> io::Result<PathBuf> {
    let guest = realclient_dir().join("guest");
    let init = fs::read(guest.join("init"))?;
    let common = fs::read(guest.join("common.sh"))?;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for part in [FORMAT.as_bytes(), k.version.as_bytes(), &init, &common] {
        fnv1a(&mut h, part);
        fnv1a(&mut h, &[0xff]);
    }
    cached_archive("initramfs", k, h, |c| base_contents(c, k, &init, &common))
}

/// The archive `<kind>-<kver>-<hash>.cpio` in the cache, built by `fill` if
/// missing.
fn cached_archive(
    kind: &str,
    k: &Kernel,
    h: u64,
    fill: impl FnOnce(&mut Cpio) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let path = cache_dir()?.join(format!("{kind}-{}-{h:016x}.cpio", k.version));
    if path.is_file() {
        return Ok(path);
    }
    let mut c = Cpio::new();
    fill(&mut c)?;
    write_cached(&path, &c.finish())?;
    Ok(path)
}

/// Module files `mods` (dependency order) into /lib/modules, their names in
/// that order into /lib/modules/`list` for the guest to insmod.
fn modules(c: &mut Cpio, mods: &[PathBuf], list: &str) -> io::Result<()> {
    let mut names = String::new();
    for m in mods {
        let name = ko_name(m);
        c.file(&format!("/lib/modules/{name}"), 0o644, &module_bytes(m)?);
        names.push_str(&name);
        names.push('\n');
    }
    c.file(&format!("/lib/modules/{list}"), 0o644, names.as_bytes());
    Ok(())
}

fn base_contents(c: &mut Cpio, k: &Kernel, init: &[u8], common: &[u8]) -> io::Result<()> {
    for d in [
        "/dev",
        "/proc",
        "/sys",
        "/tmp",
        "/run",
        "/mnt",
        "/etc",
        "/root",
        "/workloads",
    ] {
        c.dir(d);
    }
    c.char_dev("/dev/console", 0o600, 5, 1);
    c.file("/bin/busybox", 0o755, &fs::read(static_busybox()?)?);
    c.symlink("/bin/sh", "busybox");
    c.file("/init", 0o755, init);
    c.file("/lib/realclient/common.sh", 0o644, common);

    // Network driver and ext4 (+ dependencies) load at boot; aoe after eth0 is up.
    let mods = module_closure(&k.version, &["virtio_pci", "virtio_net", "ext4"])?;
    modules(c, &mods, "load.list")?;
    let aoe = find_module(&k.version, "aoe").ok_or_else(|| err("aoe module vanished"))?;
    c.file("/lib/modules/aoe.ko", 0o644, &module_bytes(&aoe)?);

    // Real e2fsprogs (busybox's mke2fs cannot make ext4) in /usr/local/sbin,
    // which comes first in the guest's PATH.
    let e2fs = [which("mke2fs", "e2fsprogs")?, which("e2fsck", "e2fsprogs")?];
    binaries_with_libs(c, "/usr/local/sbin", &e2fs, false)?;
    c.symlink("/usr/local/sbin/mkfs.ext4", "mke2fs");
    c.symlink("/usr/local/sbin/fsck.ext4", "e2fsck");
    if let Ok(conf) = fs::read("/etc/mke2fs.conf") {
        c.file("/etc/mke2fs.conf", 0o644, &conf);
    }
    // aoetools' shell scripts (run with busybox sh) when installed.
    for s in ["aoe-stat", "aoe-revalidate", "aoe-discover"] {
        if let Ok(b) = fs::read(Path::new("/usr/sbin").join(s)) {
            c.file(&format!("/usr/sbin/{s}"), 0o755, &b);
        }
    }
    Ok(())
}

/// What a cluster node needs beyond the base image, as (program, Debian
/// package): corosync (knet), dlm_controld, the GFS2 tools and util-linux's
/// flock (busybox-static has none).
const CLUSTER_PROGRAMS: [(&str, &str); 8] = [
    ("corosync", "corosync"),
    ("corosync-quorumtool", "corosync"),
    ("corosync-cfgtool", "corosync"),
    ("dlm_controld", "dlm-controld"),
    ("dlm_tool", "dlm-controld"),
    ("mkfs.gfs2", "gfs2-utils"),
    ("fsck.gfs2", "gfs2-utils"),
    ("flock", "util-linux"),
];

/// The cached cluster layer for `k`, built if missing: a second archive
/// appended after the base one for guests that run a GFS2 cluster node. It
/// holds the programs above with their libraries (in /usr/local/sbin, first
/// in the guest's PATH) and the modules GFS2 needs in load order
/// (`/lib/modules/cluster.list`), from the host's packages and kernel.
pub(crate) fn cluster_layer(k: &Kernel) -> io::Result<PathBuf> {
    let mut bins = Vec::new();
    for (prog, package) in CLUSTER_PROGRAMS {
        bins.push(which(prog, package)?);
    }
    let mods = module_closure(&k.version, &["gfs2"])?;
    // Keyed by the files' identity (path, size, mtime): a package upgrade
    // rebuilds it, an unchanged host reuses it without reading 20 MB.
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    fnv1a(&mut h, FORMAT.as_bytes());
    fnv1a(&mut h, k.version.as_bytes());
    for p in bins.iter().chain(&mods) {
        let md = fs::metadata(p)?;
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        fnv1a(&mut h, p.to_string_lossy().as_bytes());
        fnv1a(&mut h, &md.len().to_le_bytes());
        fnv1a(&mut h, &mtime.to_le_bytes());
    }
    cached_archive("cluster", k, h, |c| {
        for d in [
            "/etc/corosync",
            "/etc/dlm",
            "/var/lib/corosync",
            "/var/log/cluster",
        ] {
            c.dir(d);
        }
        c.symlink("/var/run", "/run");
        binaries_with_libs(c, "/usr/local/sbin", &bins, false)?;
        modules(c, &mods, "cluster.list")
    })
}

/// The per-run archive: settings and the selected workloads, in order.
/// `bin` without its debug sections (a debug build of aoeraid is ~80 MB,
/// which a 512 MiB guest would hold twice while unpacking its initramfs),
/// cached by path, size and mtime; scripts and files objcopy rejects as
/// they are.
fn stripped(bin: &Path) -> io::Result<PathBuf> {
    let md = fs::metadata(bin)?;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    fnv1a(&mut h, bin.to_string_lossy().as_bytes());
    fnv1a(&mut h, &md.len().to_le_bytes());
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    fnv1a(&mut h, &mtime.to_le_bytes());
    let name = bin.file_name().unwrap_or_default().to_string_lossy();
    let out = cache_dir()?.join(format!("stripped-{name}-{h:016x}"));
    if out.is_file() {
        return Ok(out);
    }
    let mut head = [0u8; 4];
    let is_elf = fs::File::open(bin)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == b"\x7fELF";
    let tmp = out.with_extension(format!("{}.tmp", std::process::id()));
    if !is_elf
        || !Command::new("objcopy")
            .arg("--strip-debug")
            .arg(bin)
            .arg(&tmp)
            .status()
            .is_ok_and(|s| s.success())
    {
        let _ = fs::remove_file(&tmp);
        return Ok(bin.to_path_buf());
    }
    fs::rename(&tmp, &out)?;
    Ok(out)
}

/// `programs` (host paths, with their libraries, debug sections stripped)
/// go to /usr/local/sbin under their own names.
pub(crate) fn overlay(
    env_file: &str,
    workloads: &[(String, Vec<u8>)],
    programs: &[PathBuf],
) -> io::Result<Vec<u8>> {
    let mut c = Cpio::new();
    c.file("/etc/realclient.env", 0o644, env_file.as_bytes());
    binaries_with_libs(&mut c, "/usr/local/sbin", programs, true)?;
    for (i, (name, body)) in workloads.iter().enumerate() {
        c.file(&format!("/workloads/{i:02}-{name}.sh"), 0o755, body);
    }
    Ok(c.finish())
}

/// Body of a standard workload from realclient/workloads.
pub(crate) fn workload_script(name: &str) -> io::Result<Vec<u8>> {
    let p = realclient_dir()
        .join("workloads")
        .join(format!("{name}.sh"));
    fs::read(&p).map_err(|e| err(format!("{}: {e}", p.display())))
}
