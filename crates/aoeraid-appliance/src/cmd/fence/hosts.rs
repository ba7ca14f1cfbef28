//! The `hosts` option: which MACs each cluster node sends AoE from.
//!
//! Written `node1=MAC[,MAC];node2=MAC`. A node with several NICs on the storage
//! segment lists every MAC it sends from, since the target knows a station only by the
//! Ethernet source of its frames.

use std::fmt;

use aoe_wire::Mac;

/// One node and the MACs it sends from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host {
    pub(crate) name: String,
    pub(crate) macs: Vec<Mac>,
}

/// The parsed `hosts` option, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hosts(Vec<Host>);

impl Hosts {
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Host> {
        self.0.iter()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Host> {
        self.0.iter().find(|h| h.name == name)
    }

    /// The node that sends from `mac`, if any.
    pub(crate) fn owner_of(&self, mac: Mac) -> Option<&Host> {
        self.0.iter().find(|h| h.macs.contains(&mac))
    }

    /// Every MAC of every node, in the order written.
    pub(crate) fn all_macs(&self) -> impl Iterator<Item = Mac> + '_ {
        self.0.iter().flat_map(|h| h.macs.iter().copied())
    }

    pub(crate) fn names(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|h| h.name.as_str()).collect();
        names.join(", ")
    }
}

/// Why a `hosts` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostsError(String);

impl fmt::Display for HostsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed hosts map: {} (expected node1=MAC[,MAC];node2=MAC)",
            self.0
        )
    }
}

/// The most MACs a Reserve/Release list holds (NMacs is one byte).
const MAX_MACS: usize = 255;

impl std::str::FromStr for Hosts {
    type Err = HostsError;

    fn from_str(text: &str) -> Result<Hosts, HostsError> {
        let bad = |m: String| Err(HostsError(m));
        let mut hosts: Vec<Host> = Vec::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((name, macs)) = entry.split_once('=') else {
                return bad(format!("`{entry}` has no `=`"));
            };
            let name = name.trim();
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == ',') {
                return bad(format!("`{entry}` does not start with a node name"));
            }
            if hosts.iter().any(|h| h.name == name) {
                return bad(format!("node `{name}` is listed twice"));
            }
            let mut list = Vec::new();
            for m in macs.split(',').map(str::trim) {
                let mac: Mac = match m.parse() {
                    Ok(mac) => mac,
                    Err(_) => return bad(format!("`{m}` (node `{name}`) is not a MAC address")),
                };
                if !mac.is_unicast() {
                    return bad(format!(
                        "{mac} (node `{name}`) is not a unicast station MAC"
                    ));
                }
                if let Some(other) = hosts.iter().find(|h| h.macs.contains(&mac)) {
                    return bad(format!(
                        "{mac} belongs to both `{}` and `{name}`",
                        other.name
                    ));
                }
                if list.contains(&mac) {
                    return bad(format!("{mac} is listed twice for `{name}`"));
                }
                list.push(mac);
            }
            hosts.push(Host {
                name: name.to_string(),
                macs: list,
            });
        }
        if hosts.is_empty() {
            return bad("it names no node".to_string());
        }
        let total: usize = hosts.iter().map(|h| h.macs.len()).sum();
        if total > MAX_MACS {
            return bad(format!(
                "{total} MACs, more than a reserve list holds ({MAX_MACS})"
            ));
        }
        Ok(Hosts(hosts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> Mac {
        Mac([2, 0, 0, 0, 0, last])
    }

    #[test]
    fn nodes_with_one_or_several_macs() {
        let h: Hosts = " n1=02:00:00:00:00:01 ; n2=02:00:00:00:00:02,02:00:00:00:00:12;"
            .parse()
            .unwrap();
        assert_eq!(h.get("n1").unwrap().macs, vec![mac(1)]);
        assert_eq!(h.get("n2").unwrap().macs, vec![mac(2), mac(0x12)]);
        assert_eq!(h.owner_of(mac(0x12)).unwrap().name, "n2");
        assert!(h.owner_of(mac(9)).is_none());
        assert_eq!(h.all_macs().count(), 3);
        assert_eq!(h.names(), "n1, n2");
        // dlm_controld names nodes by id: `1=MAC` is a node called "1".
        let h: Hosts = "1=02:00:00:00:00:01;2=02:00:00:00:00:02".parse().unwrap();
        assert_eq!(h.get("2").unwrap().macs, vec![mac(2)]);
    }

    #[test]
    fn malformed_maps_say_what_is_wrong() {
        for (text, why) in [
            ("", "names no node"),
            (" ; ", "names no node"),
            ("n1", "has no `=`"),
            ("=02:00:00:00:00:01", "does not start with a node name"),
            ("n 1=02:00:00:00:00:01", "does not start with a node name"),
            ("n1=02:00:00:00:00", "is not a MAC address"),
            ("n1=", "is not a MAC address"),
            ("n1=02:00:00:00:00:01,", "is not a MAC address"),
            ("n1=zz:00:00:00:00:01", "is not a MAC address"),
            ("n1=ff:ff:ff:ff:ff:ff", "not a unicast"),
            ("n1=01:00:5e:00:00:01", "not a unicast"),
            ("n1=00:00:00:00:00:00", "not a unicast"),
            ("n1=02:00:00:00:00:01;n1=02:00:00:00:00:02", "listed twice"),
            (
                "n1=02:00:00:00:00:01;n2=02:00:00:00:00:01",
                "belongs to both `n1` and `n2`",
            ),
            (
                "n1=02:00:00:00:00:01,02:00:00:00:00:01",
                "listed twice for `n1`",
            ),
        ] {
            let e = text.parse::<Hosts>().unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
            assert!(e.starts_with("malformed hosts map"), "{e}");
        }
    }

    #[test]
    fn a_map_larger_than_a_reserve_list_is_refused() {
        let text: Vec<String> = (0..256u32)
            .map(|i| format!("n{i}=02:00:00:00:{:02x}:{:02x}", i >> 8, i & 0xff))
            .collect();
        let e = text.join(";").parse::<Hosts>().unwrap_err().to_string();
        assert!(e.contains("more than a reserve list holds"), "{e}");
    }
}
