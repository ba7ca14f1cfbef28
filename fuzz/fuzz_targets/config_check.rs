//! Any UTF-8 through both YAML loaders an operator feeds: `appliance.yaml`
//! (`config::check_str`) and `aoeraid serve --config` (the serve checker). Every
//! input goes through both, so the seeds of one are schema-invalid documents for
//! the other. Neither may panic. A refusal has at least one diagnostic, each
//! naming a field and rendered `FILE:…`; when the text is valid YAML (only the
//! schema or the values are wrong) each one names its line. A config that passes
//! serializes to YAML that passes again as the same config.
#![no_main]

use aoeraid_appliance::config::{check_str, ConfigErrors};
use aoeraid_appliance::fuzzing::check_serve_config;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.yaml";

fn check_refusal(e: &ConfigErrors, yaml_valid: bool, text: &str) {
    assert!(!e.diagnostics.is_empty(), "a refusal says why");
    for (d, line) in e.diagnostics.iter().zip(e.lines()) {
        assert!(!d.field.is_empty(), "no field: {line}");
        assert!(line.starts_with(FILE), "{line}");
        if yaml_valid {
            let n = d
                .line
                .unwrap_or_else(|| panic!("no line in `{line}` for {text:?}"));
            // YAML breaks lines at a lone CR too (serde_norway counts it), where
            // `str::lines` does not.
            let yaml_lines = text.replace("\r\n", "\n").split(['\r', '\n']).count();
            assert!(
                n >= 1 && n <= yaml_lines + 1,
                "line {n} beyond the text: {line}"
            );
            assert!(line.starts_with(&format!("{FILE}:{n}: ")), "{line}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let yaml_valid = serde_norway::from_str::<serde_norway::Value>(text).is_ok();
    match check_str(text, FILE, true) {
        Ok(c) => {
            let yaml = serde_norway::to_string(&c.config).expect("a checked config serializes");
            let back = check_str(&yaml, FILE, true)
                .unwrap_or_else(|e| panic!("serialized config refused: {e}\n{yaml}"));
            assert_eq!(back.config, c.config, "round trip through\n{yaml}");
        }
        Err(e) => check_refusal(&e, yaml_valid, text),
    }
    match check_serve_config(text, FILE) {
        Ok(yaml) => {
            let again = check_serve_config(&yaml, FILE)
                .unwrap_or_else(|e| panic!("serialized serve config refused: {e}\n{yaml}"));
            assert_eq!(again, yaml, "round trip");
        }
        Err(e) => check_refusal(&e, yaml_valid, text),
    }
});
