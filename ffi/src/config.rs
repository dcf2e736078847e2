//! Configuration from text: `lbcore_config`, a keepalived.conf or `ipvsadm-save` rules text
//! parsed by `lbcore::config`, applied to a balancer (`lbcore_balancer_apply_config`) and turned
//! into VRRP instance configurations (`lbcore_config_vrrp_config_new`).
//!
//! Parsing needs no file system: `include` directives are refused (give the text whole).
//! Things only the running system knows stay the caller's: the MAC addresses of real servers
//! (direct routing needs them: `lbcore_config_set_mac`), an instance's primary address and
//! interface MAC, running `vrrp_script`s and watching interfaces (the tracks), and the health
//! checks of real servers (every real server is added as configured; sorry servers are not).
//!
//! Diagnostics (`diag`, `diag_len`, `diag_n` parameters) are written only when a call fails
//! with a reason in words, `snprintf`-style: as much as fits in `diag[0..diag_len]`,
//! NUL-terminated, and the full length (without the NUL) in `*diag_n`. `diag` may be NULL when
//! `diag_len` is 0, and `diag_n` may be NULL.

use core::ffi::c_char;
use core::net::IpAddr;

use lbcore::balancer::{Balancer, ServiceId};
use lbcore::config::vrrp::{instance_base, instance_family};
use lbcore::config::{self, InstancePlan, NoIncludes, Parsed, Plan, SyncGroupPlan};
use lbcore::service::{Family, ServiceKey};
use lbcore::vrrp::{Config, MAX_TRACKS, SourceMac, StartState, Version};

use crate::balancer::lbcore_balancer;
use crate::guard::{
    HandlePtr, Res, free, guard, guard_void, impl_opaque, in_ref, in_slice, into_raw, out_ptr, write_text,
};
use crate::result::lbcore_result;
use crate::types::{lbcore_addr, lbcore_family, mac_in, nanos};
use crate::vrrp::{lbcore_vrrp_config, lbcore_vrrp_start_state, lbcore_vrrp_version};

/// A parsed configuration: what the text asks for, its warnings, and the MAC addresses the
/// caller supplied. Create with `lbcore_config_parse_keepalived` or
/// `lbcore_config_parse_ipvsadm`; free with `lbcore_config_free`.
#[allow(non_camel_case_types)]
pub struct lbcore_config {
    inner: ConfigState,
    poisoned: bool,
}
impl_opaque!(lbcore_config, ConfigState);

/// The Rust side of `lbcore_config`.
pub(crate) struct ConfigState {
    plan: Plan,
    warnings: String,
    macs: Vec<(IpAddr, [u8; 6])>,
}

/// What a configuration holds.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lbcore_config_counts {
    /// `virtual_server` blocks (or ipvsadm `-A` rules).
    pub virtual_servers: usize,
    /// `real_server` blocks (or ipvsadm `-a` rules), over all virtual servers.
    pub real_servers: usize,
    /// `vrrp_instance` blocks.
    pub vrrp_instances: usize,
    /// `vrrp_sync_group` blocks.
    pub sync_groups: usize,
    /// `vrrp_script` blocks.
    pub scripts: usize,
    /// Warnings (`lbcore_config_warnings`).
    pub warnings: usize,
}

/// What a tracked object of a VRRP instance is.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_track_kind {
    /// A `track_script`: run the `vrrp_script` of that name, OK when it exits 0.
    Script = 0,
    /// A `track_interface`: OK while the interface of that name is up.
    Interface = 1,
}

/// A `vrrp_instance` of a configuration.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_vrrp_instance_info {
    /// The address family (that of `unicast_src_ip`, else of the first VIP).
    pub family: lbcore_family,
    /// `vrrp_version` (IPv6 instances are always version 3).
    pub version: lbcore_vrrp_version,
    /// `virtual_router_id`.
    pub vrid: u8,
    /// `priority`.
    pub priority: u8,
    /// `advert_int`, nanoseconds.
    pub advert_interval_ns: u64,
    /// `state`.
    pub start_state: lbcore_vrrp_start_state,
    /// Whether `unicast_src_ip` is given (then no primary address is needed).
    pub has_unicast_src: bool,
    /// `unicast_src_ip`.
    pub unicast_src: lbcore_addr,
    /// Number of VIPs.
    pub vip_count: usize,
    /// Number of tracked objects (`lbcore_config_vrrp_track`), in the order of the track ids
    /// of the configuration `lbcore_config_vrrp_config_new` builds.
    pub track_count: usize,
    /// `use_vmac`: adverts should use the virtual MAC.
    pub use_vmac: bool,
}

/// A tracked object of a `vrrp_instance`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_vrrp_track_info {
    /// Script or interface.
    pub kind: lbcore_track_kind,
    /// For a script, its index among the `vrrp_script` blocks.
    pub script: usize,
    /// The weight given to `lbcore_vrrp_config_add_track` (`weight ... reverse` folded in).
    pub weight: i16,
    /// Report the opposite of the object's state (`reverse` with weight 0).
    pub invert: bool,
}

/// One tracked object as the instance mapping computes it.
struct Track {
    kind: lbcore_track_kind,
    name: String,
    script: usize,
    weight: i16,
    invert: bool,
}

/// Writes a diagnostic `snprintf`-style (see the module docs).
///
/// # Safety
/// `diag` is NULL or valid for `diag_len` bytes; `diag_n` NULL or writable.
unsafe fn write_diag(text: &str, diag: *mut c_char, diag_len: usize, diag_n: *mut usize) {
    if !diag.is_null() && diag_len > 0 && diag.is_aligned() {
        let n = text.len().min(diag_len - 1);
        // SAFETY: `diag` is valid for `diag_len > n` bytes by the contract; `text` is a
        // distinct Rust string.
        unsafe {
            core::ptr::copy_nonoverlapping(text.as_ptr(), diag.cast::<u8>(), n);
            diag.add(n).write(0);
        }
    }
    if !diag_n.is_null() && diag_n.is_aligned() {
        // SAFETY: non-null, aligned, writable by the contract.
        unsafe { diag_n.write(text.len()) };
    }
}

/// Reads a UTF-8 text parameter.
///
/// # Safety
/// `p` is NULL or valid for reading `len` bytes.
unsafe fn text_in<'a>(p: *const c_char, len: usize) -> Res<&'a str> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { in_slice(p.cast::<u8>(), len)? };
    core::str::from_utf8(bytes).map_err(|_| lbcore_result::InvalidParameter)
}

/// The common body of the two parse functions.
///
/// # Safety
/// As for `lbcore_config_parse_keepalived`.
#[allow(clippy::too_many_arguments)]
unsafe fn parse(
    parser: impl FnOnce(&str, &str) -> Result<Parsed, Vec<config::Diagnostic>>,
    file: *const c_char,
    file_len: usize,
    text: *const c_char,
    text_len: usize,
    out: *mut *mut lbcore_config,
    diag: *mut c_char,
    diag_len: usize,
    diag_n: *mut usize,
) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or valid pointers.
        let (file, text, out) =
            unsafe { (text_in(file, file_len)?, text_in(text, text_len)?, out_ptr(out)?) };
        match parser(file, text) {
            Ok(parsed) => {
                let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
                let state = ConfigState {
                    plan: parsed.plan,
                    warnings: lines(&warnings),
                    macs: Vec::new(),
                };
                out.write(into_raw::<lbcore_config>(state));
                Ok(())
            }
            Err(errors) => {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                // SAFETY: the caller passes NULL or valid diagnostic pointers.
                unsafe { write_diag(&lines(&errors), diag, diag_len, diag_n) };
                Err(lbcore_result::ConfigInvalid)
            }
        }
    })
}

/// Lines joined, each ending in a newline.
fn lines(items: &[String]) -> String {
    items.iter().map(|l| format!("{l}\n")).collect()
}

/// Parses keepalived.conf text `text[0..text_len]` (named `file[0..file_len]` in diagnostics;
/// neither needs a NUL) into a new configuration `*out`.
///
/// Returns `LBCORE_RESULT_CONFIG_INVALID` when the text has errors, with one line per error
/// (`FILE:LINE: message`) in `diag`; `LBCORE_RESULT_INVALID_PARAMETER` when a text is not
/// UTF-8. `include` directives are errors (there is no file system to read them from).
///
/// # Safety
/// `file` and `text` must be NULL or valid for reading their lengths; `out` NULL or valid for
/// writing a pointer; `diag` NULL or valid for writing `diag_len` bytes; `diag_n` NULL or
/// writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lbcore_config_parse_keepalived(
    file: *const c_char,
    file_len: usize,
    text: *const c_char,
    text_len: usize,
    out: *mut *mut lbcore_config,
    diag: *mut c_char,
    diag_len: usize,
    diag_n: *mut usize,
) -> lbcore_result {
    let parser = |f: &str, t: &str| config::parse_keepalived(f, t, &mut NoIncludes);
    // SAFETY: forwarded contract.
    unsafe {
        parse(
            parser, file, file_len, text, text_len, out, diag, diag_len, diag_n,
        )
    }
}

/// Parses `ipvsadm-save` / `ipvsadm -Sn` rules (`-A`, `-a` lines) like
/// `lbcore_config_parse_keepalived`.
///
/// # Safety
/// As `lbcore_config_parse_keepalived`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lbcore_config_parse_ipvsadm(
    file: *const c_char,
    file_len: usize,
    text: *const c_char,
    text_len: usize,
    out: *mut *mut lbcore_config,
    diag: *mut c_char,
    diag_len: usize,
    diag_n: *mut usize,
) -> lbcore_result {
    // SAFETY: forwarded contract.
    unsafe {
        parse(
            config::parse_ipvsadm_rules,
            file,
            file_len,
            text,
            text_len,
            out,
            diag,
            diag_len,
            diag_n,
        )
    }
}

/// Frees a configuration; NULL is fine.
///
/// # Safety
/// `cfg` must be NULL or from a `lbcore_config_parse_*` function, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_config_free(cfg: *mut lbcore_config) {
    // SAFETY: forwarded contract.
    guard_void(|| unsafe { free(cfg) })
}

/// Writes the parser's warnings (one `FILE:LINE: warning: ...` line each; empty if none)
/// into `buf`, NUL-terminated, and their length into `*out_n`.
///
/// Returns `LBCORE_RESULT_BUFFER_TOO_SMALL` (size needed in `*out_n`) when `len` is too small.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `buf` NULL or valid for writing `len` bytes;
/// `out_n` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_config_warnings(
    cfg: *const lbcore_config,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new_const(cfg) };
    guard(|| {
        cfg.with_ref(|c| {
            // SAFETY: the caller passes NULL or valid pointers.
            let out_n = unsafe { out_ptr(out_n)? };
            // SAFETY: as above.
            unsafe { write_text(&c.warnings, buf, len, out_n) }
        })
    })
}

/// Writes what the configuration holds into `*out`.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_config_summary(
    cfg: *const lbcore_config,
    out: *mut lbcore_config_counts,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new_const(cfg) };
    guard(|| {
        cfg.with_ref(|c| {
            // SAFETY: the caller passes NULL or a writable struct.
            let out = unsafe { out_ptr(out)? };
            let p = &c.plan;
            out.write(lbcore_config_counts {
                virtual_servers: p.virtual_servers.len(),
                real_servers: p.virtual_servers.iter().map(|v| v.real_servers.len()).sum(),
                vrrp_instances: p.instances.len(),
                sync_groups: p.sync_groups.len(),
                scripts: p.scripts.len(),
                warnings: c.warnings.lines().count(),
            });
            Ok(())
        })
    })
}

/// Gives the MAC address (6 bytes) of the host at `*addr`: `lbcore_balancer_apply_config`
/// uses it for every real server at that address that has none (direct routing needs it; the
/// routed methods use it as the next hop). Setting an address again replaces its MAC.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `addr` NULL or readable; `mac` NULL or valid
/// for reading 6 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_config_set_mac(
    cfg: *mut lbcore_config,
    addr: *const lbcore_addr,
    mac: *const u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            // SAFETY: the caller passes NULL or valid pointers.
            let (ip, mac) = unsafe { (in_ref(addr)?.to_ip()?, mac_in(mac)?) };
            match c.macs.iter_mut().find(|(a, _)| *a == ip) {
                Some(entry) => entry.1 = mac,
                None => c.macs.push((ip, mac)),
            }
            Ok(())
        })
    })
}

/// How a service is named in diagnostics.
fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { proto, vip, port } => format!("virtual_server {vip} {port} ({})", proto.name()),
        ServiceKey::Fwmark { mark, .. } => format!("virtual_server fwmark {mark}"),
    }
}

/// Adds every service and destination of `c` to `b`; on failure removes what it added and
/// says why.
fn apply(b: &mut Balancer<'static>, c: &ConfigState) -> Result<(), (lbcore_result, String)> {
    let mut added: Vec<ServiceId> = Vec::new();
    let mut result = Ok(());
    'outer: for vs in &c.plan.virtual_servers {
        let id = match b.add_service(vs.service) {
            Ok(id) => id,
            Err(e) => {
                result = Err((
                    e.into(),
                    format!("{}: {}: {e}", vs.origin, service_name(&vs.service.key)),
                ));
                break;
            }
        };
        added.push(id);
        for rs in &vs.real_servers {
            let mut dest = rs.dest;
            if dest.mac.is_none() {
                dest.mac = c.macs.iter().find(|(a, _)| *a == dest.addr).map(|(_, m)| *m);
            }
            if let Err(e) = b.add_dest(id, dest) {
                let hint = if e == lbcore::balancer::ConfigError::DirectRoutingNeedsMac {
                    " (give it with lbcore_config_set_mac)"
                } else {
                    ""
                };
                result = Err((
                    e.into(),
                    format!(
                        "{}: real_server {} {} of {}: {e}{hint}",
                        rs.origin,
                        dest.addr,
                        dest.port,
                        service_name(&vs.service.key)
                    ),
                ));
                break 'outer;
            }
        }
    }
    if result.is_err() {
        for id in added.into_iter().rev() {
            // Just added by this call, so it exists; nothing else can fail here.
            let _ = b.remove_service(id);
        }
    }
    result
}

/// Adds every virtual server of the configuration and its real servers to the balancer, as
/// `lbcore_balancer_add_service` and `lbcore_balancer_add_dest` would. All or nothing: on an
/// error, the services this call added are removed again, the error code is returned (e.g.
/// `LBCORE_RESULT_SERVICE_EXISTS`, `LBCORE_RESULT_DIRECT_ROUTING_NEEDS_MAC`), and `diag` says
/// which block, where.
///
/// Health checks are not run and sorry servers are not added: that is the caller's policy.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `cfg` NULL or a live configuration; `diag` NULL or
/// valid for writing `diag_len` bytes; `diag_n` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_apply_config(
    lb: *mut lbcore_balancer,
    cfg: *const lbcore_config,
    diag: *mut c_char,
    diag_len: usize,
    diag_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or live handles (distinct objects of distinct types).
    let (lb, cfg) = unsafe { (HandlePtr::new(lb), HandlePtr::new_const(cfg)) };
    guard(|| {
        cfg.with_ref(|c| {
            lb.with(|b| {
                apply(b, c).map_err(|(code, text)| {
                    // SAFETY: the caller passes NULL or valid diagnostic pointers.
                    unsafe { write_diag(&text, diag, diag_len, diag_n) };
                    code
                })
            })
        })
    })
}

fn instance(plan: &Plan, index: usize) -> Res<&InstancePlan> {
    plan.instances.get(index).ok_or(lbcore_result::InvalidParameter)
}

fn group_of<'p>(plan: &'p Plan, inst: &InstancePlan) -> Option<&'p SyncGroupPlan> {
    plan.sync_groups.iter().find(|g| g.members.contains(&inst.name))
}

/// The tracked objects of an instance in track-id order, with keepalived's weight rules:
/// `track_script`s (the instance's, then its sync group's), then `track_interface`s; a
/// script's own weight unless the reference overrides it; `reverse` negates the weight, or
/// inverts the state when the weight is 0; inside a sync group weights are 0.
fn tracks(plan: &Plan, inst: &InstancePlan) -> Result<Vec<Track>, String> {
    let group = group_of(plan, inst);
    let group_scripts = group.map(|g| g.track_scripts.as_slice()).unwrap_or(&[]);
    let mut out = Vec::new();
    for t in inst.track_scripts.iter().chain(group_scripts) {
        let Some(index) = plan.scripts.iter().position(|s| s.name == t.name) else {
            return Err(format!(
                "{}: ({}) track_script {}: no vrrp_script of that name",
                t.origin, inst.name, t.name
            ));
        };
        let script = &plan.scripts[index];
        let mut weight = t.weight.unwrap_or(script.weight);
        let mut invert = false;
        if script.weight_reverse {
            if weight == 0 {
                invert = true;
            } else {
                weight = -weight;
            }
        }
        if group.is_some() {
            weight = 0;
        }
        out.push(Track {
            kind: lbcore_track_kind::Script,
            name: t.name.clone(),
            script: index,
            weight,
            invert,
        });
    }
    for t in &inst.track_interfaces {
        out.push(Track {
            kind: lbcore_track_kind::Interface,
            name: t.name.clone(),
            script: 0,
            weight: if group.is_some() { 0 } else { t.weight.unwrap_or(0) },
            invert: false,
        });
    }
    for t in &out {
        if !(-254..=254).contains(&t.weight) {
            return Err(format!(
                "{}: ({}) track {}: weight {} outside -254..254",
                inst.origin, inst.name, t.name, t.weight
            ));
        }
    }
    Ok(out)
}

/// Writes what `vrrp_instance` number `index` (in file order, below
/// `lbcore_config_counts.vrrp_instances`) asks for into `*out`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for an index out of range and
/// `LBCORE_RESULT_CONFIG_INVALID` when a `track_script` names no `vrrp_script`.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_config_vrrp_instance(
    cfg: *const lbcore_config,
    index: usize,
    out: *mut lbcore_vrrp_instance_info,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new_const(cfg) };
    guard(|| {
        cfg.with_ref(|c| {
            // SAFETY: the caller passes NULL or a writable struct.
            let out = unsafe { out_ptr(out)? };
            let inst = instance(&c.plan, index)?;
            let tracks = tracks(&c.plan, inst).map_err(|_| lbcore_result::ConfigInvalid)?;
            let family = instance_family(inst);
            out.write(lbcore_vrrp_instance_info {
                family: match family {
                    Family::V4 => lbcore_family::Ipv4,
                    Family::V6 => lbcore_family::Ipv6,
                },
                version: if family == Family::V6 || inst.version == Version::V3 {
                    lbcore_vrrp_version::V3
                } else {
                    lbcore_vrrp_version::V2
                },
                vrid: inst.vrid,
                priority: inst.priority,
                advert_interval_ns: nanos(inst.advert_interval),
                start_state: match inst.start_state {
                    StartState::Backup => lbcore_vrrp_start_state::Backup,
                    StartState::Master => lbcore_vrrp_start_state::Master,
                },
                has_unicast_src: inst.unicast_src.is_some(),
                unicast_src: lbcore_addr::from_ip(
                    inst.unicast_src
                        .unwrap_or(core::net::Ipv4Addr::UNSPECIFIED.into()),
                ),
                vip_count: inst.vips.len(),
                track_count: tracks.len(),
                use_vmac: inst.use_vmac,
            });
            Ok(())
        })
    })
}

/// Writes the name (`vrrp_instance NAME`) of instance `index` into `buf`, NUL-terminated, and
/// its length into `*out_n`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for an index out of range and
/// `LBCORE_RESULT_BUFFER_TOO_SMALL` (size needed in `*out_n`) when `len` is too small.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `buf` NULL or valid for writing `len` bytes;
/// `out_n` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_config_vrrp_instance_name(
    cfg: *const lbcore_config,
    index: usize,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new_const(cfg) };
    guard(|| {
        cfg.with_ref(|c| {
            // SAFETY: the caller passes NULL or a writable `size_t`.
            let out_n = unsafe { out_ptr(out_n)? };
            let inst = instance(&c.plan, index)?;
            // SAFETY: the caller passes NULL or `len` writable bytes.
            unsafe { write_text(&inst.name, buf, len, out_n) }
        })
    })
}

/// Writes the `interface` of instance `index` like `lbcore_config_vrrp_instance_name`.
///
/// # Safety
/// As `lbcore_config_vrrp_instance_name`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_config_vrrp_instance_interface(
    cfg: *const lbcore_config,
    index: usize,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new_const(cfg) };
    guard(|| {
        cfg.with_ref(|c| {
            // SAFETY: the caller passes NULL or a writable `size_t`.
            let out_n = unsafe { out_ptr(out_n)? };
            let inst = instance(&c.plan, index)?;
            // SAFETY: the caller passes NULL or `len` writable bytes.
            unsafe { write_text(&inst.interface, buf, len, out_n) }
        })
    })
}

/// Writes tracked object `track` (below `lbcore_vrrp_instance_info.track_count`) of instance
/// `index` into `*out`, and its name (the `vrrp_script` or the interface) into `name`,
/// NUL-terminated, with its length in `*name_n`. The caller runs the script or watches the
/// interface and reports with `lbcore_vrrp_router_set_track(router, now, track, ok)`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for an index out of range and
/// `LBCORE_RESULT_BUFFER_TOO_SMALL` (size needed in `*name_n`, `*out` not written) when
/// `name_len` is too small.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `out` NULL or writable; `name` NULL or valid
/// for writing `name_len` bytes; `name_n` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_config_vrrp_track(
    cfg: *const lbcore_config,
    index: usize,
    track: usize,
    out: *mut lbcore_vrrp_track_info,
    name: *mut c_char,
    name_len: usize,
    name_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new_const(cfg) };
    guard(|| {
        cfg.with_ref(|c| {
            // SAFETY: the caller passes NULL or writable pointers.
            let (out, name_n) = unsafe { (out_ptr(out)?, out_ptr(name_n)?) };
            let inst = instance(&c.plan, index)?;
            let tracks = tracks(&c.plan, inst).map_err(|_| lbcore_result::ConfigInvalid)?;
            let t = tracks.get(track).ok_or(lbcore_result::InvalidParameter)?;
            // SAFETY: the caller passes NULL or `name_len` writable bytes.
            unsafe { write_text(&t.name, name, name_len, name_n)? };
            out.write(lbcore_vrrp_track_info {
                kind: t.kind,
                script: t.script,
                weight: t.weight,
                invert: t.invert,
            });
            Ok(())
        })
    })
}

/// Builds a VRRP configuration for instance `index` the way keepalived reads its
/// `vrrp_instance` (with the `global_defs` that apply), ready for `lbcore_vrrp_router_new`
/// (adjust it first if needed; free it with `lbcore_vrrp_config_free`).
///
/// `primary` is the address adverts are sent from (keepalived: the interface's primary IPv4
/// address or IPv6 link-local address); it may be NULL when the instance has
/// `unicast_src_ip`. `iface_mac` (6 bytes) is the interface's MAC, the Ethernet source of
/// adverts as keepalived sends them without `use_vmac`; NULL uses the virtual router MAC.
/// The tracked objects are added in the order `lbcore_config_vrrp_track` lists them. IPv6
/// instances use VRRP version 3; authentication is dropped for version 3.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for an index out of range, and
/// `LBCORE_RESULT_CONFIG_INVALID` with a reason in `diag` when the instance cannot be built
/// (no primary address, a VIP of the other family, too many VIPs, an unknown `track_script`).
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `primary` NULL or readable; `iface_mac` NULL
/// or valid for reading 6 bytes; `out` NULL or valid for writing a pointer; `diag` NULL or
/// valid for writing `diag_len` bytes; `diag_n` NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn lbcore_config_vrrp_config_new(
    cfg: *const lbcore_config,
    index: usize,
    primary: *const lbcore_addr,
    iface_mac: *const u8,
    out: *mut *mut lbcore_vrrp_config,
    diag: *mut c_char,
    diag_len: usize,
    diag_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new_const(cfg) };
    guard(|| {
        cfg.with_ref(|c| {
            // SAFETY: the caller passes NULL or a writable pointer.
            let out = unsafe { out_ptr(out)? };
            let primary = if primary.is_null() {
                None
            } else {
                // SAFETY: non-null: the caller passes a readable address.
                Some(unsafe { in_ref(primary)? }.to_ip()?)
            };
            let mac = if iface_mac.is_null() {
                None
            } else {
                // SAFETY: non-null: the caller passes 6 readable bytes.
                Some(unsafe { mac_in(iface_mac)? })
            };
            let inst = instance(&c.plan, index)?;
            match instance_config(&c.plan, inst, primary, mac) {
                Ok(config) => {
                    out.write(into_raw::<lbcore_vrrp_config>(config));
                    Ok(())
                }
                Err(text) => {
                    // SAFETY: the caller passes NULL or valid diagnostic pointers.
                    unsafe { write_diag(&text, diag, diag_len, diag_n) };
                    Err(lbcore_result::ConfigInvalid)
                }
            }
        })
    })
}

/// One instance as a core configuration: the mapping lbd uses
/// ([`lbcore::config::vrrp::instance_base`]), sending from `unicast_src_ip` or the interface's
/// `primary` address, from the interface's MAC unless `use_vmac` (or no MAC was given).
fn instance_config(
    plan: &Plan,
    inst: &InstancePlan,
    primary: Option<IpAddr>,
    mac: Option<[u8; 6]>,
) -> Result<Config, String> {
    let Some(src) = inst.unicast_src.or(primary) else {
        return Err(format!(
            "{}: ({}) no address to send adverts from: give the primary address of {}",
            inst.origin, inst.name, inst.interface
        ));
    };
    let source_mac = match (mac, inst.use_vmac) {
        (Some(m), false) => SourceMac::Interface(m),
        _ => SourceMac::Virtual,
    };
    let (mut cfg, _warnings) = instance_base(inst, &plan.global, src, source_mac)
        .map_err(|e| format!("{}: ({}) {}", e.origin, inst.name, e.reason))?;
    let tracks = tracks(plan, inst)?;
    if tracks.len() > MAX_TRACKS {
        return Err(format!(
            "{}: ({}) {} tracked objects: at most {MAX_TRACKS} are supported",
            inst.origin,
            inst.name,
            tracks.len()
        ));
    }
    for t in &tracks {
        cfg = cfg.track(t.weight);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;
    use lbcore::balancer::BalancerConfig;
    use lbcore::config::{Origin, RealServerPlan, ScriptPlan, TrackRef, VipPlan, VirtualServerPlan};
    use lbcore::service::{DestConfig, ServiceConfig};
    use lbcore::vrrp::GarpConfig;

    fn origin(line: u32) -> Origin {
        Origin {
            file: "test.conf".into(),
            line,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn vs(vip: &str, port: u16, rips: &[&str]) -> VirtualServerPlan {
        VirtualServerPlan {
            service: ServiceConfig::tcp(ip(vip), port),
            delay_loop: Duration::from_secs(60),
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            sorry_server_inhibit: false,
            omega: false,
            alpha: false,
            ha_suspend: false,
            real_servers: rips
                .iter()
                .enumerate()
                .map(|(i, r)| RealServerPlan {
                    dest: DestConfig::new(ip(r), port).forward(lbcore::service::Forward::DirectRouting),
                    inhibit_on_failure: false,
                    notify_up: None,
                    notify_down: None,
                    checks: Vec::new(),
                    origin: origin(10 + i as u32),
                })
                .collect(),
            origin: origin(1),
        }
    }

    fn state(plan: Plan) -> ConfigState {
        ConfigState {
            plan,
            warnings: String::new(),
            macs: Vec::new(),
        }
    }

    #[test]
    fn apply_is_all_or_nothing_and_uses_the_mac_table() {
        let mut b = Balancer::new(BalancerConfig {
            conn_capacity: 256,
            ..Default::default()
        })
        .unwrap();
        let mut c = state(Plan {
            virtual_servers: vec![
                vs("192.0.2.1", 80, &["10.0.0.1"]),
                vs("192.0.2.2", 80, &["10.0.0.2"]),
            ],
            ..Default::default()
        });
        c.macs.push((ip("10.0.0.1"), [2, 0, 0, 0, 0, 1]));
        let (code, text) = apply(&mut b, &c).unwrap_err();
        assert_eq!(code, lbcore_result::DirectRoutingNeedsMac);
        assert!(
            text.starts_with("test.conf:10: real_server 10.0.0.2 80 of virtual_server 192.0.2.2 80"),
            "{text}"
        );
        assert!(text.ends_with("(give it with lbcore_config_set_mac)"), "{text}");
        assert_eq!(b.service_ids().count(), 0, "rolled back");
        c.macs.push((ip("10.0.0.2"), [2, 0, 0, 0, 0, 2]));
        apply(&mut b, &c).unwrap();
        assert_eq!(b.service_ids().count(), 2);
        let (code, _) = apply(&mut b, &c).unwrap_err();
        assert_eq!(code, lbcore_result::ServiceExists);
        assert_eq!(
            b.service_ids().count(),
            2,
            "the failed second apply left the first alone"
        );
    }

    fn inst(name: &str) -> InstancePlan {
        InstancePlan {
            name: name.into(),
            interface: "eth0".into(),
            version: Version::V2,
            vrid: 51,
            priority: 150,
            advert_interval: Duration::from_secs(1),
            start_state: StartState::Backup,
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            accept: None,
            auth_pass: Some(b"secret".to_vec()),
            vips: vec![VipPlan {
                addr: ip("10.0.0.100"),
                prefix_len: 24,
                dev: None,
                label: None,
                origin: origin(3),
            }],
            vips_excluded: Vec::new(),
            unicast_src: None,
            unicast_peers: Vec::new(),
            track_scripts: vec![TrackRef {
                name: "chk".into(),
                weight: None,
                origin: origin(4),
            }],
            track_interfaces: vec![TrackRef {
                name: "eth1".into(),
                weight: Some(-10),
                origin: origin(5),
            }],
            notify: Default::default(),
            garp: GarpConfig::default(),
            use_vmac: false,
            native_ipv6: false,
            dont_track_primary: false,
            origin: origin(2),
        }
    }

    #[test]
    fn instances_map_like_keepalived() {
        let script = ScriptPlan {
            name: "chk".into(),
            script: "/bin/true".into(),
            interval: Duration::from_secs(1),
            timeout: None,
            weight: 20,
            weight_reverse: true,
            rise: 1,
            fall: 1,
            user: None,
            origin: origin(8),
        };
        let plan = Plan {
            scripts: vec![script],
            instances: vec![inst("VI_1")],
            ..Default::default()
        };
        let cfg = instance_config(
            &plan,
            &plan.instances[0],
            Some(ip("10.0.0.11")),
            Some([2, 0, 0, 0, 0, 9]),
        )
        .unwrap();
        assert_eq!(cfg.track_weights.as_slice(), &[-20, -10]);
        assert_eq!(cfg.source_mac, SourceMac::Interface([2, 0, 0, 0, 0, 9]));
        assert_eq!(cfg.auth, lbcore::vrrp::Auth::pass(b"secret"));
        assert!(cfg.accept);
        assert!(lbcore::vrrp::Router::new(cfg).is_ok());
        let err = instance_config(&plan, &plan.instances[0], None, None).unwrap_err();
        assert!(err.starts_with("test.conf:2: (VI_1) no address"), "{err}");
        let mut bad = plan.clone();
        bad.scripts.clear();
        let err = instance_config(&bad, &bad.instances[0], Some(ip("10.0.0.11")), None).unwrap_err();
        assert!(err.contains("track_script chk: no vrrp_script"), "{err}");
    }

    #[test]
    fn diagnostics_are_truncated_like_snprintf() {
        let mut buf = [0x55 as c_char; 6];
        let mut n = 0usize;
        // SAFETY: `buf` has 6 writable bytes, `n` is writable.
        unsafe { write_diag("0123456789", buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(n, 10);
        assert_eq!(buf[4], b'4' as c_char);
        assert_eq!(buf[5], 0);
        // SAFETY: NULL pointers are skipped.
        unsafe { write_diag("x", core::ptr::null_mut(), 0, core::ptr::null_mut()) };
    }
}
