//! Configuration as operators write it (keepalived.conf, `ipvsadm-save` rules) parsed into a
//! [`Plan`]: plain data the runners and bindings consume. Parsing never touches the file system:
//! `include` directives are resolved through a caller-supplied [`Source`], so the same parser
//! serves the daemon (files), the bindings (text) and tests.
//!
//! Errors name file, line and reason; a configuration with any error yields no plan, so a
//! running configuration is only ever replaced by a complete, valid one.
//!
//! - [`parse_keepalived`] ([`keepalived`]): keepalived.conf (2.2.x syntax).
//! - [`parse_ipvsadm_rules`] ([`ipvsadm`]): `ipvsadm -Sn` output and hand-written rules.
//! - [`fn@apply`] ([`mod@apply`]): converge a running balancer to a plan's services with the
//!   fewest changes (reloads).
//! - [`vrrp::instance_base`] ([`mod@vrrp`]): a `vrrp_instance` as the core's VRRP configuration.

use alloc::string::String;
use alloc::vec::Vec;

pub mod apply;
pub mod ipvsadm;
pub mod keepalived;
mod plan;
mod util;
pub mod vrrp;

pub use apply::{ApplyError, ApplyReport, DesiredService, apply};
pub use ipvsadm::{parse_ipvsadm_rules, render_ipvsadm_rules};
pub use keepalived::parse_keepalived;
pub use plan::*;

/// How bad a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The configuration is rejected.
    Error,
    /// The configuration loads; something was ignored or adjusted.
    Warning,
}

/// One finding of a parser, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// File and line.
    pub origin: Origin,
    /// Error or warning.
    pub severity: Severity,
    /// What was expected and what was found.
    pub message: String,
}

impl core::fmt::Display for Diagnostic {
    /// `FILE:LINE: MESSAGE` for errors, `FILE:LINE: warning: MESSAGE` for warnings.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}", self.origin, self.message),
            Severity::Warning => write!(f, "{}: warning: {}", self.origin, self.message),
        }
    }
}

/// A configuration that parsed without errors.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// What the configuration asks for.
    pub plan: Plan,
    /// Everything ignored or adjusted on the way, in file order.
    pub warnings: Vec<Diagnostic>,
}

/// Resolves `include` directives for [`parse_keepalived`].
///
/// keepalived's `include PATTERN` takes a glob, relative to the including file's directory
/// when not absolute; the implementation decides what a file name is.
pub trait Source {
    /// The files `pattern` names, as `(file name, text)` in the order they are to be read.
    /// An empty list is not an error (keepalived only warns); `Err` carries the reason the
    /// include could not be resolved, and becomes an error at `from`.
    fn include(&mut self, pattern: &str, from: &Origin) -> Result<Vec<(String, String)>, String>;
}

/// A [`Source`] that refuses every include (for callers that only have text, e.g. bindings).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoIncludes;

impl Source for NoIncludes {
    fn include(&mut self, pattern: &str, _from: &Origin) -> Result<Vec<(String, String)>, String> {
        Err(alloc::format!(
            "cannot include '{pattern}': this configuration was given as text, without a file system"
        ))
    }
}
