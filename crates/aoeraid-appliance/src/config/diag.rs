//! Config problems, each tied to a field path and the line it sits on,
//! rendered `FILE:LINE: field.path: message`.

use super::locate::{line_of, FieldPath};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    /// A risky but legal setup, refused unless forced.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The field as text (`arrays[0].members[3]`). A string rather than a
    /// [`FieldPath`] because parse errors arrive with serde_norway's text.
    pub field: String,
    pub path: Option<FieldPath>,
    pub line: Option<usize>,
    pub message: String,
    /// Another place the message refers to ("first listed at ..."); its line
    /// is appended to the message once lines are known.
    pub related: Option<FieldPath>,
}

impl Diagnostic {
    pub fn error(path: FieldPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            field: path.to_string(),
            path: Some(path),
            line: None,
            message: message.into(),
            related: None,
        }
    }

    pub fn warning(path: FieldPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(path, message)
        }
    }

    pub fn related_to(mut self, other: FieldPath) -> Self {
        self.related = Some(other);
        self
    }

    /// Fills in `line` (and the related line) from the config text.
    pub fn attach_lines(&mut self, text: &str) {
        if let Some(p) = &self.path {
            self.line = line_of(text, p);
        }
        if let Some(r) = self.related.take() {
            match line_of(text, &r) {
                Some(l) => self.message.push_str(&format!(" (see {r}, line {l})")),
                None => self.message.push_str(&format!(" (see {r})")),
            }
        }
    }

    /// `FILE:LINE: field: message` (without `:LINE` when no line is known).
    pub fn render(&self, file: &str) -> String {
        match self.line {
            Some(l) => format!("{file}:{l}: {self}"),
            None => format!("{file}: {self}"),
        }
    }

    /// Turns a serde_norway error into a diagnostic: its position becomes the
    /// line, its path prefix the field. An unknown key names the key itself.
    pub fn from_parse_error(e: &serde_norway::Error) -> Self {
        let line = e.location().map(|l| l.line());
        let mut text = e.to_string();
        // serde_norway appends " at line L column C" (and for syntax errors
        // may add ", while parsing ... at line ..."); the line is reported
        // separately, so keep only the message proper.
        if let Some(i) = text.find(" at line ") {
            let tail = &text[i..];
            let rest = tail
                .split_once(", ")
                .map(|(_, r)| format!(", {r}"))
                .unwrap_or_default();
            text = format!("{}{}", &text[..i], strip_positions(&rest));
        }
        let (mut field, mut message) = split_path(&text);
        if let Some(key) = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
            .map(|(k, _)| k.to_string())
        {
            // An empty key (`"": 1`, or a tag with nothing after it) has no name
            // to give: the diagnostic names the mapping that holds it instead.
            field = match (field.as_str(), key.is_empty()) {
                (_, true) => field,
                ("." | "", false) => key,
                (_, false) => format!("{field}.{key}"),
            };
            message = message.replacen("unknown field", "unknown key", 1);
        }
        Diagnostic {
            severity: Severity::Error,
            field,
            path: None,
            line,
            message,
            related: None,
        }
    }
}

fn strip_positions(s: &str) -> String {
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// serde_norway prefixes messages with `path: ` when the path is not the
/// root. Paths have no spaces, so the first ": " after a space-free prefix
/// separates them.
fn split_path(text: &str) -> (String, String) {
    if let Some((p, m)) = text.split_once(": ") {
        let looks_like_path = !p.is_empty()
            && p.chars()
                .all(|c| c.is_alphanumeric() || "_-.[]?".contains(c));
        if looks_like_path {
            return (p.to_string(), m.to_string());
        }
    }
    (".".to_string(), text.to_string())
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        let field = if self.field == "." {
            "(document)"
        } else {
            &self.field
        };
        write!(f, "{field}: {kind}{}", self.message)
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigErrors {
    /// One `FILE:LINE: field: message` line per problem.
    pub fn lines(&self) -> Vec<String> {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.file))
            .collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}
