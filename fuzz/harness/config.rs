//! The `config` fuzz target: the keepalived.conf and ipvsadm-rules parsers on arbitrary text.
//!
//! Input layout: byte 0 bit 0 selects the parser (0: keepalived.conf, 1: ipvsadm rules); the
//! rest is the text (lossy UTF-8).
//!
//! Checked: no panic, ever; a refused file reports at least one diagnostic, each naming the file;
//! an accepted file's virtual servers render as `ipvsadm-save` rules (`render_ipvsadm_rules`)
//! that the ipvsadm parser accepts, and render again to the same text (render . parse is a
//! fixed point on rendered rules).

#![allow(dead_code)]

use lbcore::config::{NoIncludes, parse_ipvsadm_rules, parse_keepalived, render_ipvsadm_rules};

/// Finding 1 (FUZZING.md): `parse_keepalived` accepted two `virtual_server` blocks for the same
/// service, and the plan then rendered to rules that `parse_ipvsadm_rules` refuses ("service
/// already added"). Fixed (the parser refuses the second block); the reproducer is
/// `fuzz/regressions/config/duplicate_virtual_server`. `true` would skip such plans again.
pub const KNOWN_BUG_DUPLICATE_VIRTUAL_SERVER: bool = false;

/// The `config` target.
pub fn config(data: &[u8]) {
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(bytes);
    let parsed = if ctl & 1 == 0 {
        parse_keepalived("fuzz.conf", &text, &mut NoIncludes)
    } else {
        parse_ipvsadm_rules("fuzz.rules", &text)
    };
    let plan = match parsed {
        Ok(p) => p.plan,
        Err(diags) => {
            assert!(!diags.is_empty(), "a refused file has a reason");
            for d in &diags {
                let s = d.to_string();
                assert!(s.starts_with("fuzz."), "diagnostic without its file: {s}");
            }
            return;
        }
    };
    if KNOWN_BUG_DUPLICATE_VIRTUAL_SERVER {
        let keys: Vec<_> = plan.virtual_servers.iter().map(|v| v.service.key).collect();
        if (1..keys.len()).any(|i| keys[..i].contains(&keys[i])) {
            return; // see KNOWN_BUG_DUPLICATE_VIRTUAL_SERVER
        }
    }
    let rendered = render_ipvsadm_rules(&plan);
    let again = parse_ipvsadm_rules("rendered.rules", &rendered).unwrap_or_else(|e| {
        panic!(
            "rendered rules do not parse: {}\n--- rendered ---\n{rendered}",
            e.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
        )
    });
    let rendered2 = render_ipvsadm_rules(&again.plan);
    assert_eq!(rendered, rendered2, "render(parse(render(plan))) != render(plan)");
}
