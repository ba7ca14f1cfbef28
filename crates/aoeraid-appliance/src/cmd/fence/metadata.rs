//! `action=metadata`: the agent's description in the fence-agents format that
//! Pacemaker's fencer, `pcs` and `stonith_admin` read (the RelaxNG schema fence-agents
//! ships as `metadata.rng`). `on` is automatic (fabric fencing with unfencing) and may
//! run on any node that is on the reserve list; there is no `reboot`.

use super::options::{DEFAULT_POWER_TIMEOUT, DEFAULT_RETRY_ON};

/// One parameter: name, required, getopt text, content type and default, description.
struct Param {
    name: &'static str,
    required: bool,
    getopt: &'static str,
    kind: &'static str,
    default: Option<String>,
    extra: &'static str,
    text: &'static str,
}

fn params() -> Vec<Param> {
    let p = |name, required, getopt, kind, text| Param {
        name,
        required,
        getopt,
        kind,
        default: None,
        extra: "",
        text,
    };
    vec![
        // Off when none is given, as fence_scsi: dlm_controld runs the agent
        // to fence with no action= line at all.
        Param {
            default: Some("off".into()),
            ..p("action", true, "-o, --action=[action]", "string", "Fencing action")
        },
        p(
            "target",
            true,
            "--target=[eS.L]",
            "string",
            "AoE address of the export (shelf.slot, e.g. e1.0)",
        ),
        p(
            "interface",
            true,
            "--interface=[ifname]",
            "string",
            "Local network interface on the segment of the target (no IP needed)",
        ),
        p(
            "hosts",
            true,
            "--hosts=[node1=MAC[,MAC];node2=MAC]",
            "string",
            "Cluster nodes and the MACs each sends AoE from",
        ),
        Param {
            extra: " obsoletes=\"port\"",
            ..p(
                "plug",
                false,
                "-n, --plug=[node]",
                "string",
                "Node to act on, as named in hosts (port, nodename or dlm_controld's node id also work)",
            )
        },
        Param {
            extra: " deprecated=\"1\"",
            ..p(
                "port",
                false,
                "-n, --plug=[node]",
                "string",
                "Node to act on, as named in hosts (port, nodename or dlm_controld's node id also work)",
            )
        },
        Param {
            default: Some(DEFAULT_POWER_TIMEOUT.as_secs().to_string()),
            ..p(
                "power_timeout",
                false,
                "--power-timeout=[seconds]",
                "second",
                "Time limit of the whole action, retransmissions included",
            )
        },
        Param {
            default: Some(DEFAULT_RETRY_ON.to_string()),
            ..p(
                "retry_on",
                false,
                "--retry-on=[attempts]",
                "integer",
                "Read-check-set rounds when the reserve list changes under the agent",
            )
        },
        p(
            "verbose",
            false,
            "-v, --verbose",
            "boolean",
            "Print each step on stderr",
        ),
        p(
            "version",
            false,
            "-V, --version",
            "boolean",
            "Display version information and exit",
        ),
        p("help", false, "-h, --help", "boolean", "Display help and exit"),
    ]
}

const LONGDESC: &str = "fence_aoeraid is an I/O fencing agent for ATA over Ethernet \
targets that implement the AoE Reserve/Release command (aoeraid run, aoeraid serve, \
vblade). It fences a node by setting the target's reserve list to every other node's \
MACs, so the target refuses the node's I/O, and unfences it by putting its MACs back. It \
talks AoE from the local interface: no IP path to the target is needed. It reads the list, \
decides, sets it with Set Reserve List (never Force Set) and reads it back: a node that \
finds itself off the list has been fenced by another node and fails. An empty list lets \
every node write and is never turned into one that shuts nodes out by unfencing.";

/// The XML document, ending in a newline.
pub(crate) fn xml() -> String {
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" ?>\n");
    out.push_str(
        "<resource-agent name=\"fence_aoeraid\" shortdesc=\"Fence agent for AoE targets \
         (Reserve/Release)\" >\n",
    );
    out.push_str(&format!("<longdesc>{LONGDESC}</longdesc>\n"));
    out.push_str("<vendor-url></vendor-url>\n<parameters>\n");
    for p in params() {
        let default = p
            .default
            .map(|d| format!(" default=\"{d}\""))
            .unwrap_or_default();
        out.push_str(&format!(
            "\t<parameter name=\"{}\" unique=\"0\" required=\"{}\"{}>\n\
             \t\t<getopt mixed=\"{}\" />\n\
             \t\t<content type=\"{}\"{default} />\n\
             \t\t<shortdesc lang=\"en\">{}</shortdesc>\n\
             \t</parameter>\n",
            p.name,
            u8::from(p.required),
            p.extra,
            p.getopt,
            p.kind,
            p.text,
        ));
    }
    out.push_str("</parameters>\n<actions>\n");
    out.push_str("\t<action name=\"on\" automatic=\"1\" />\n");
    for a in [
        "off",
        "status",
        "monitor",
        "list",
        "metadata",
        "validate-all",
    ] {
        out.push_str(&format!("\t<action name=\"{a}\" />\n"));
    }
    out.push_str("</actions>\n</resource-agent>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_option_and_the_fabric_actions() {
        let x = xml();
        for name in [
            "action",
            "target",
            "interface",
            "hosts",
            "plug",
            "port",
            "power_timeout",
            "retry_on",
            "verbose",
        ] {
            assert!(x.contains(&format!("<parameter name=\"{name}\"")), "{name}");
        }
        assert!(x.contains("<action name=\"on\" automatic=\"1\" />"));
        assert!(!x.contains("reboot"));
        assert!(!x.contains('&') && !x.contains("<>"), "nothing to escape");
        // Balanced: every parameter element closes.
        assert_eq!(
            x.matches("<parameter ").count(),
            x.matches("</parameter>").count()
        );
    }
}
