//! `from_keepalived_conf` and `from_ipvsadm_rules`: the core's parsers
//! (`lbcore::config`), their plan handed back as plain Python data, their errors as
//! `ConfigSyntaxError` with `.diagnostics`.

use lbcore::config::{self, NoIncludes, Parsed, Plan};
use lbcore::vrrp::{StartState, Version};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::syntax_error;
use crate::types::{Dest, Service};
use crate::vrrp::VrrpState;

fn plan_dict<'py>(py: Python<'py>, parsed: Parsed) -> PyResult<Bound<'py, PyDict>> {
    let Parsed { plan, warnings } = parsed;
    let Plan {
        virtual_servers,
        instances,
        ..
    } = plan;
    let out = PyDict::new(py);
    let servers = PyList::empty(py);
    for vs in virtual_servers {
        let d = PyDict::new(py);
        d.set_item("service", Service { cfg: vs.service })?;
        let dests: Vec<Dest> = vs.real_servers.iter().map(|rs| Dest { cfg: rs.dest }).collect();
        d.set_item("dests", dests)?;
        d.set_item("sorry_server", vs.sorry_server.map(|cfg| Dest { cfg }))?;
        d.set_item("origin", vs.origin.to_string())?;
        servers.append(d)?;
    }
    out.set_item("virtual_servers", servers)?;
    let vrrp = PyList::empty(py);
    for i in instances {
        let d = PyDict::new(py);
        d.set_item("name", &i.name)?;
        d.set_item("interface", &i.interface)?;
        d.set_item(
            "version",
            match i.version {
                Version::V2 => 2,
                Version::V3 => 3,
            },
        )?;
        d.set_item("vrid", i.vrid)?;
        d.set_item("priority", i.priority)?;
        d.set_item("advert_interval", i.advert_interval.as_secs_f64())?;
        d.set_item(
            "start_state",
            match i.start_state {
                StartState::Backup => VrrpState::Backup,
                StartState::Master => VrrpState::Master,
            },
        )?;
        d.set_item("nopreempt", i.nopreempt)?;
        d.set_item("preempt_delay", i.preempt_delay.as_secs_f64())?;
        d.set_item(
            "vips",
            i.vips
                .iter()
                .map(|v| format!("{}/{}", v.addr, v.prefix_len))
                .collect::<Vec<_>>(),
        )?;
        d.set_item("unicast_src", i.unicast_src.map(|a| a.to_string()))?;
        d.set_item(
            "unicast_peers",
            i.unicast_peers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        )?;
        d.set_item("origin", i.origin.to_string())?;
        vrrp.append(d)?;
    }
    out.set_item("vrrp_instances", vrrp)?;
    out.set_item(
        "warnings",
        warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
    )?;
    Ok(out)
}

fn finish<'py>(
    py: Python<'py>,
    result: Result<Parsed, Vec<config::Diagnostic>>,
) -> PyResult<Bound<'py, PyDict>> {
    match result {
        Ok(parsed) => plan_dict(py, parsed),
        Err(diags) => Err(syntax_error(py, diags.iter().map(ToString::to_string).collect())),
    }
}

/// Parses keepalived.conf text (`include` is refused: there is no file system here). Returns
/// the virtual servers (as `Service` and `Dest` values) and VRRP instances as plain data, with
/// the warnings; raises `ConfigSyntaxError` (`.diagnostics`) on any error.
#[pyfunction]
#[pyo3(signature = (text, file = "keepalived.conf"))]
fn from_keepalived_conf<'py>(py: Python<'py>, text: &str, file: &str) -> PyResult<Bound<'py, PyDict>> {
    let result = py.detach(|| config::parse_keepalived(file, text, &mut NoIncludes));
    finish(py, result)
}

/// Parses `ipvsadm` rules (`ipvsadm -Sn` output or hand-written `-A`/`-a` lines), into the same
/// shape as `from_keepalived_conf`.
#[pyfunction]
#[pyo3(signature = (text, file = "ipvsadm.rules"))]
fn from_ipvsadm_rules<'py>(py: Python<'py>, text: &str, file: &str) -> PyResult<Bound<'py, PyDict>> {
    let result = py.detach(|| config::parse_ipvsadm_rules(file, text));
    finish(py, result)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(from_keepalived_conf, m)?)?;
    m.add_function(wrap_pyfunction!(from_ipvsadm_rules, m)?)?;
    Ok(())
}
