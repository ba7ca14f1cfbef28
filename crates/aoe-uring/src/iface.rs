//! Network interface facts the data path needs: index, MAC, MTU.
//!
//! Read through plain ioctls on a throw-away datagram socket, so this works for any
//! interface in the caller's network namespace without extra dependencies.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An Ethernet MAC address.
pub type MacAddr = [u8; 6];

/// What the runtime knows about one network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index (`if_nametoindex`).
    pub index: u32,
    /// Hardware address (`SIOCGIFHWADDR`).
    pub mac: MacAddr,
    /// Layer-3 MTU (`SIOCGIFMTU`); an Ethernet frame is at most `mtu + 14` bytes.
    pub mtu: u32,
}

/// The Ethernet interfaces of the caller's network namespace that can carry AoE: up,
/// not loopback, with a hardware address, in the kernel's order. This is what
/// `aoe-discover` probes when it is named no interface. Listed through pnet's
/// datalink crate (netlink and getifaddrs), which also tells Ethernet apart from
/// tunnels and other links without a MAC.
pub fn ethernet_interfaces() -> Vec<String> {
    pnet_datalink::interfaces()
        .into_iter()
        .filter(|i| {
            i.is_up()
                && !i.is_loopback()
                && i.mac.is_some_and(|m| !m.is_zero() && !m.is_broadcast())
        })
        .map(|i| i.name)
        .collect()
}

impl InterfaceInfo {
    /// Look up an interface by name in the current network namespace.
    pub fn lookup(name: &str) -> io::Result<Self> {
        let cname = valid_ifname(name)?;
        // SAFETY: `cname` is a valid NUL-terminated C string that outlives the call.
        let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if index == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "network interface {name:?} not found: {}",
                    io::Error::last_os_error()
                ),
            ));
        }
        let sock = ioctl_socket()?;
        let mut req = ifreq_for(name);
        ifreq_ioctl(&sock, libc::SIOCGIFHWADDR, &mut req, name)?;
        // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member of the union.
        let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (dst, src) in mac.iter_mut().zip(hw.sa_data.iter()) {
            *dst = *src as u8;
        }
        let mut req = ifreq_for(name);
        ifreq_ioctl(&sock, libc::SIOCGIFMTU, &mut req, name)?;
        // SAFETY: SIOCGIFMTU filled the `ifru_mtu` member of the union.
        let mtu = unsafe { req.ifr_ifru.ifru_mtu };
        Ok(InterfaceInfo {
            name: name.to_owned(),
            index,
            mac,
            mtu: u32::try_from(mtu).unwrap_or(0),
        })
    }

    /// Largest Ethernet frame (header included, FCS excluded) this interface carries.
    pub fn max_frame_len(&self) -> usize {
        self.mtu as usize + crate::ETH_HEADER_LEN
    }
}

pub(crate) fn valid_ifname(name: &str) -> io::Result<CString> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?}"),
        ));
    }
    CString::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?} contains NUL"),
        )
    })
}

fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: `ifreq` is plain old data; all-zero is a valid (empty) value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req
}

fn ifreq_ioctl(
    sock: &OwnedFd,
    request: libc::c_ulong,
    req: &mut libc::ifreq,
    name: &str,
) -> io::Result<()> {
    // SAFETY: `req` is a valid, writable ifreq with a NUL-terminated name (the name is
    // shorter than IFNAMSIZ, checked by `valid_ifname`); the ioctls used here only write
    // inside the struct.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("ioctl on interface {name:?}: {err}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_interface_names_are_errors() {
        assert!(InterfaceInfo::lookup("").is_err());
        assert!(InterfaceInfo::lookup("a/b").is_err());
        assert!(InterfaceInfo::lookup("x\0y").is_err());
        assert!(InterfaceInfo::lookup("an-interface-name-too-long").is_err());
        let err = InterfaceInfo::lookup("nosuchif0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn loopback_is_found() {
        let lo = InterfaceInfo::lookup("lo").expect("lo exists in every namespace");
        assert!(lo.index > 0);
        assert_eq!(lo.mac, [0; 6]);
        assert!(lo.mtu >= 1500);
    }
}
