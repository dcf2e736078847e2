//! From a `vrrp_instance` plan to the core's VRRP [`Config`]: the part every front end shares
//! (lbd in `lbcore-net`, the C API's `lbcore_config_vrrp_instance`).
//!
//! The caller knows the interfaces, so it chooses the address adverts are sent from and the
//! source MAC, and adds the tracked objects afterwards; [`instance_base`] maps everything else
//! (version, priority, timers, preemption, the `global_defs` switches, authentication, VIPs,
//! unicast peers), refuses what cannot work with the place it was written, and turns what
//! keepalived accepts with a log line into warnings.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

use super::{GlobalDefs, InstancePlan, Origin};
use crate::service::Family;
use crate::vrrp::{Config, MAX_VIPS, SourceMac, Version};

/// The address family of an instance: that of `unicast_src_ip` if given, else of its first
/// VIP, else IPv6 with `native_ipv6`, else IPv4.
pub fn instance_family(inst: &InstancePlan) -> Family {
    if let Some(src) = inst.unicast_src {
        return Family::of(&src);
    }
    match inst.vips.first() {
        Some(v) => Family::of(&v.addr),
        None if inst.native_ipv6 => Family::V6,
        None => Family::V4,
    }
}

/// A `vrrp_instance` that cannot be mapped: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceError {
    /// The line the problem was written on.
    pub origin: Origin,
    /// What is wrong, as a sentence.
    pub reason: String,
}

/// The core configuration of `inst` sending from `src` with `source_mac`, without tracked
/// objects, and the warnings keepalived would log for it (IPv6 forces VRRP version 3;
/// authentication is ignored with version 3).
pub fn instance_base(
    inst: &InstancePlan,
    global: &GlobalDefs,
    src: IpAddr,
    source_mac: SourceMac,
) -> Result<(Config, Vec<String>), InstanceError> {
    let err = |origin: &Origin, reason: String| InstanceError {
        origin: origin.clone(),
        reason,
    };
    let mut warnings = Vec::new();
    let family = instance_family(inst);
    if Family::of(&src) != family {
        return Err(err(
            &inst.origin,
            format!("the address {src} to send adverts from is not of the instance's address family"),
        ));
    }
    let mut version = inst.version;
    if family == Family::V6 && version == Version::V2 {
        warnings.push(format!(
            "{}: ({}) IPv6 needs VRRP version 3: using version 3",
            inst.origin, inst.name
        ));
        version = Version::V3;
    }

    let mut cfg = Config::new(version, inst.vrid, src)
        .priority(inst.priority)
        .advert_interval(inst.advert_interval)
        .start_state(inst.start_state)
        .preempt_delay(inst.preempt_delay)
        .accept(inst.accept.unwrap_or(!global.strict))
        .garp(inst.garp)
        .source_mac(source_mac);
    if inst.nopreempt {
        cfg = cfg.nopreempt();
    }
    if global.check_unicast_src {
        cfg = cfg.check_unicast_src();
    }
    if global.lower_prio_no_advert {
        cfg = cfg.lower_prio_no_advert();
    }
    if global.higher_prio_send_advert {
        cfg = cfg.higher_prio_send_advert();
    }
    if let Some(secret) = &inst.auth_pass {
        if version == Version::V2 {
            cfg = cfg.auth_pass(secret);
        } else {
            warnings.push(format!(
                "{}: ({}) authentication is not used with VRRP version 3: ignored",
                inst.origin, inst.name
            ));
        }
    }

    if inst.vips.len() > MAX_VIPS {
        return Err(err(
            &inst.origin,
            format!("{} VIPs: at most {MAX_VIPS} are supported", inst.vips.len()),
        ));
    }
    for v in &inst.vips {
        if Family::of(&v.addr) != family {
            return Err(err(
                &v.origin,
                format!("VIP {} is not of the instance's address family", v.addr),
            ));
        }
        cfg = cfg.vip(v.addr, v.prefix_len);
    }
    for p in &inst.unicast_peers {
        if Family::of(p) != family {
            return Err(err(
                &inst.origin,
                format!("unicast peer {p} is not of the instance's address family"),
            ));
        }
        cfg = cfg.unicast_peer(*p);
    }
    Ok((cfg, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NoIncludes, Plan, parse_keepalived};

    fn plan(text: &str) -> Plan {
        parse_keepalived("k.conf", text, &mut NoIncludes)
            .expect("the test configuration parses")
            .plan
    }

    const V6_WITH_AUTH: &str = "vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 7
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        fd00::100/64
    }
}
";

    #[test]
    fn ipv6_forces_version_3_and_drops_authentication_with_warnings() {
        let p = plan(V6_WITH_AUTH);
        // The parser already adjusts both (with its own warnings); plans built in code may not.
        let mut inst = p.instances[0].clone();
        inst.version = Version::V2;
        inst.auth_pass = Some(b"secret".to_vec());
        let inst = &inst;
        assert_eq!(instance_family(inst), Family::V6);
        let src: IpAddr = "fe80::1".parse().unwrap();
        let (cfg, warnings) = instance_base(inst, &p.global, src, SourceMac::Virtual).unwrap();
        assert_eq!(cfg.version, Version::V3);
        assert_eq!(cfg.priority, 150);
        assert_eq!(cfg.auth, crate::vrrp::Auth::None);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("IPv6 needs VRRP version 3"), "{warnings:?}");
        assert!(warnings[1].contains("authentication is not used"), "{warnings:?}");
        assert!(crate::vrrp::Router::new(cfg).is_ok());
    }

    #[test]
    fn a_source_address_of_the_other_family_is_refused_at_the_instance() {
        let p = plan(V6_WITH_AUTH);
        let e = instance_base(
            &p.instances[0],
            &p.global,
            "10.0.0.1".parse().unwrap(),
            SourceMac::Virtual,
        )
        .unwrap_err();
        assert_eq!(e.origin.to_string(), "k.conf:1");
        assert!(e.reason.contains("10.0.0.1"), "{}", e.reason);
    }
}
