//! Configuration as operators write it (keepalived.conf, `ipvsadm-save` rules) parsed into a
//! [`Plan`]: plain data the runners and bindings consume. Parsing never touches the file system:
//! `include` directives are resolved through a caller-supplied `Source`, so the same parser
//! serves the daemon (files), the bindings (text) and tests.
//!
//! Errors name file, line and reason; a configuration with any error yields no plan, so a
//! running configuration is only ever replaced by a complete, valid one.

mod plan;

pub use plan::*;
