//! One-line descriptions of pool events for logs.

use aoe_initiator::{Event, Pool};

/// The pool's interfaces for a message: `eth1, eth2`.
pub(crate) fn interface_names(pool: &Pool) -> String {
    let names: Vec<&str> = pool.interfaces().iter().map(|i| i.name.as_str()).collect();
    names.join(", ")
}

/// `event` as a log line, naming blades as eS.L.
pub(crate) fn describe(pool: &Pool, event: &Event) -> String {
    let name = |id: aoe_initiator::BladeId| match pool.blade_info(id) {
        Some(b) => format!("e{}.{}", b.shelf, b.slot),
        None => format!("blade#{}", id.0),
    };
    let iface = |i: usize| {
        pool.interfaces()
            .get(i)
            .map_or_else(|| format!("if#{i}"), |f| f.name.clone())
    };
    match event {
        Event::BladeFound { shelf, slot, .. } => format!("e{shelf}.{slot}: found"),
        Event::PathAdded {
            blade,
            iface: i,
            mac,
        } => {
            format!("{}: path {} via {}", name(*blade), mac, iface(*i))
        }
        Event::BladeUp { blade, sectors } => format!(
            "{}: up, {sectors} sectors ({} bytes)",
            name(*blade),
            sectors.saturating_mul(512)
        ),
        Event::BladeDown { blade, failed_ios } => format!(
            "{}: down (no answer within the dead time), {failed_ios} I/O failed",
            name(*blade)
        ),
        Event::CapacityChanged { blade, old, new } => {
            format!(
                "{}: capacity changed from {old} to {new} sectors",
                name(*blade)
            )
        }
        Event::Notice { message, .. } => message.clone(),
    }
}
