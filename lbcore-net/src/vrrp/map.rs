//! From a configuration plan to the core's [`Config`]: one [`InstancePlan`] (with the
//! [`GlobalDefs`], the `vrrp_script`s it tracks and its sync group) plus what was looked up
//! on the running system ([`IfaceInfo`]) gives a validated [`Config`] and the list of tracked
//! objects in [`TrackId`](lbcore::vrrp::TrackId) order.
//!
//! Pure: no system calls, so it is unit tested without root. Errors name the instance and
//! where it was written ([`MapError`]); things keepalived accepts with a log line become
//! warnings.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbcore::config::vrrp::instance_base;
use lbcore::config::{GlobalDefs, InstancePlan, Origin, ScriptPlan, SyncGroupPlan};
use lbcore::service::Family;
use lbcore::vrrp::{Config, ConfigError, Router, SourceMac};

/// What the runner looked up about an instance's interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceInfo {
    /// Interface index.
    pub index: u32,
    /// Interface MAC (the source of adverts and gratuitous frames, as keepalived without
    /// `use_vmac`).
    pub mac: [u8; 6],
    /// The interface's primary IPv4 address (its first one that is not a VIP).
    pub primary_v4: Option<Ipv4Addr>,
    /// The interface's IPv6 link-local address.
    pub link_local_v6: Option<Ipv6Addr>,
    /// `net.ipv6.conf.IF.forwarding`: set the Router flag in unsolicited NAs.
    pub ipv6_forwarding: bool,
}

impl IfaceInfo {
    /// A stand-in for checking a configuration without the interface (`lbd check`): index
    /// 1, a locally administered MAC, documentation addresses.
    pub fn placeholder() -> IfaceInfo {
        IfaceInfo {
            index: 1,
            mac: [0x02, 0, 0, 0, 0, 1],
            primary_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
            link_local_v6: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            ipv6_forwarding: false,
        }
    }
}

/// A tracked object of an instance, in [`TrackId`](lbcore::vrrp::TrackId) order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackSource {
    /// `track_script`: index into [`lbcore::config::Plan::scripts`]. With `invert`, the
    /// script's success is reported as a failure (`reverse` with weight 0).
    Script {
        /// Index of the `vrrp_script`.
        script: usize,
        /// Report the opposite of the script's result.
        invert: bool,
    },
    /// `track_interface`: the interface's link state (up and running = OK).
    Interface {
        /// Interface name.
        name: String,
    },
}

/// An instance mapped to the core's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    /// The validated configuration (`Router::new` accepts it).
    pub config: Config,
    /// The tracked objects, indexed like `config.track_weights`.
    pub tracks: Vec<TrackSource>,
    /// What keepalived would log and carry on with (already prefixed with the origin).
    pub warnings: Vec<String>,
}

/// An instance that cannot run as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapError {
    /// The `vrrp_instance` name.
    pub instance: String,
    /// Where the offending item was written.
    pub origin: Origin,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ({}) {}", self.origin, self.instance, self.reason)
    }
}

impl std::error::Error for MapError {}

/// The address family of an instance (see [`lbcore::config::vrrp::instance_family`]).
pub use lbcore::config::vrrp::instance_family as family_of;

/// Map one instance. `group` is the sync group it belongs to, if any (its `track_script`s
/// apply to every member; tracker weights inside a group are forced to 0, as keepalived does
/// without `sync_group_tracking_weight`).
pub fn instance_config(
    inst: &InstancePlan,
    global: &GlobalDefs,
    scripts: &[ScriptPlan],
    group: Option<&SyncGroupPlan>,
    iface: &IfaceInfo,
) -> Result<Mapped, MapError> {
    let err = |origin: &Origin, reason: String| MapError {
        instance: inst.name.clone(),
        origin: origin.clone(),
        reason,
    };
    let family = family_of(inst);

    let src: IpAddr = match (inst.unicast_src, family) {
        (Some(s), _) => s,
        (None, Family::V4) => iface.primary_v4.map(IpAddr::V4).ok_or_else(|| {
            err(
                &inst.origin,
                format!(
                    "interface {} has no IPv4 address to send adverts from",
                    inst.interface
                ),
            )
        })?,
        (None, Family::V6) => iface.link_local_v6.map(IpAddr::V6).ok_or_else(|| {
            err(
                &inst.origin,
                format!(
                    "interface {} has no IPv6 link-local address to send adverts from",
                    inst.interface
                ),
            )
        })?,
    };
    let (cfg, mut warnings) = instance_base(inst, global, src, SourceMac::Interface(iface.mac))
        .map_err(|e| err(&e.origin, e.reason))?;
    let mut cfg = cfg.ipv6_router(family == Family::V6 && iface.ipv6_forwarding);
    if inst.use_vmac {
        warnings.push(format!(
            "{}: ({}) use_vmac is not supported yet: adverts and gratuitous ARPs use the MAC of {}",
            inst.origin, inst.name, inst.interface
        ));
    }

    let mut tracks = Vec::new();
    let group_scripts = group.map(|g| g.track_scripts.as_slice()).unwrap_or(&[]);
    for t in inst.track_scripts.iter().chain(group_scripts) {
        let Some(index) = scripts.iter().position(|s| s.name == t.name) else {
            return Err(err(
                &t.origin,
                format!("track_script {}: no vrrp_script of that name", t.name),
            ));
        };
        let script = &scripts[index];
        let mut weight = t.weight.unwrap_or(script.weight);
        let mut invert = false;
        if script.weight_reverse {
            if weight == 0 {
                invert = true;
            } else {
                weight = -weight;
            }
        }
        if weight != 0 && group.is_some() {
            warnings.push(format!(
                "{}: ({}) ignoring weight {weight} of track_script {}: the instance is in a sync group",
                t.origin, inst.name, t.name
            ));
            weight = 0;
        }
        if !(-254..=254).contains(&weight) {
            return Err(err(
                &t.origin,
                format!("track_script {}: weight {weight} outside -254..254", t.name),
            ));
        }
        cfg = cfg.track(weight);
        tracks.push(TrackSource::Script {
            script: index,
            invert,
        });
    }
    for t in &inst.track_interfaces {
        let mut weight = t.weight.unwrap_or(0);
        if weight != 0 && group.is_some() {
            warnings.push(format!(
                "{}: ({}) ignoring weight {weight} of track_interface {}: the instance is in a sync group",
                t.origin, inst.name, t.name
            ));
            weight = 0;
        }
        if !(-254..=254).contains(&weight) {
            return Err(err(
                &t.origin,
                format!("track_interface {}: weight {weight} outside -254..254", t.name),
            ));
        }
        cfg = cfg.track(weight);
        tracks.push(TrackSource::Interface { name: t.name.clone() });
    }

    Router::new(cfg.clone()).map_err(|e| err(&inst.origin, config_error_text(e)))?;
    Ok(Mapped {
        config: cfg,
        tracks,
        warnings,
    })
}

/// A sentence for a core configuration error.
pub fn config_error_text(e: ConfigError) -> String {
    match e {
        ConfigError::VridZero => "virtual_router_id must be 1..255".into(),
        ConfigError::PriorityZero => "priority must be 1..255".into(),
        ConfigError::BadInterval => {
            "advert_int out of range (VRRPv2: whole seconds 1..255; VRRPv3: centiseconds up to 40.95 s)"
                .into()
        }
        ConfigError::Ipv6NeedsV3 => "IPv6 needs VRRP version 3".into(),
        ConfigError::AuthNeedsV2 => "authentication exists only in VRRP version 2".into(),
        ConfigError::FamilyMismatch => "VIPs and unicast peers must all be of one address family".into(),
        ConfigError::TooMany => "too many VIPs, unicast peers or tracked objects".into(),
        ConfigError::BadWeight => "a tracking weight is outside -254..254".into(),
        ConfigError::BadDownTimerAdverts => "down_timer_adverts must be 1..100".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lbcore::config::{Notify, TrackRef, VipPlan};
    use lbcore::vrrp::{Auth, GarpConfig, StartState, Version};

    use super::*;

    fn origin(line: u32) -> Origin {
        Origin {
            file: "keepalived.conf".into(),
            line,
        }
    }

    fn vip(addr: &str, prefix_len: u8, line: u32) -> VipPlan {
        VipPlan {
            addr: addr.parse().unwrap(),
            prefix_len,
            dev: None,
            label: None,
            origin: origin(line),
        }
    }

    fn instance() -> InstancePlan {
        InstancePlan {
            name: "VI_1".into(),
            interface: "eth0".into(),
            version: Version::V2,
            vrid: 51,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            start_state: StartState::Backup,
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            accept: None,
            auth_pass: Some(b"1111".to_vec()),
            vips: vec![vip("10.201.0.100", 24, 12)],
            vips_excluded: vec![],
            unicast_src: None,
            unicast_peers: vec![],
            track_scripts: vec![],
            track_interfaces: vec![],
            notify: Notify::default(),
            garp: GarpConfig::default(),
            use_vmac: false,
            native_ipv6: false,
            dont_track_primary: false,
            origin: origin(3),
        }
    }

    fn iface() -> IfaceInfo {
        IfaceInfo {
            index: 7,
            mac: [0x02, 0x00, 0x0a, 0xc9, 0x00, 0x0b],
            primary_v4: Some(Ipv4Addr::new(10, 201, 0, 11)),
            link_local_v6: Some("fe80::aff:fec9:b".parse().unwrap()),
            ipv6_forwarding: false,
        }
    }

    fn script(name: &str, weight: i16, reverse: bool) -> ScriptPlan {
        ScriptPlan {
            name: name.into(),
            script: "/bin/true".into(),
            interval: Duration::from_secs(1),
            timeout: None,
            weight,
            weight_reverse: reverse,
            rise: 1,
            fall: 1,
            user: None,
            origin: origin(1),
        }
    }

    fn track(name: &str, weight: Option<i16>, line: u32) -> TrackRef {
        TrackRef {
            name: name.into(),
            weight,
            origin: origin(line),
        }
    }

    #[test]
    fn a_v2_instance_maps_to_keepalived_defaults_with_the_interface_address() {
        let m = instance_config(&instance(), &GlobalDefs::default(), &[], None, &iface()).unwrap();
        let c = &m.config;
        assert_eq!(c.version, Version::V2);
        assert_eq!(c.vrid, 51);
        assert_eq!(c.priority, 100);
        assert_eq!(c.src, "10.201.0.11".parse::<IpAddr>().unwrap());
        assert_eq!(c.auth, Auth::pass(b"1111"));
        assert_eq!(
            c.source_mac,
            SourceMac::Interface([0x02, 0x00, 0x0a, 0xc9, 0x00, 0x0b])
        );
        assert!(c.accept);
        assert_eq!(c.vips.len(), 1);
        assert_eq!(c.vips[0].prefix_len, 24);
        assert!(m.tracks.is_empty());
        assert!(m.warnings.is_empty());
    }

    #[test]
    fn ipv6_uses_the_link_local_address_and_version_3() {
        let mut i = instance();
        i.vips = vec![vip("fd00:201::100", 64, 12)];
        i.auth_pass = None;
        let m = instance_config(&i, &GlobalDefs::default(), &[], None, &iface()).unwrap();
        assert_eq!(m.config.src, "fe80::aff:fec9:b".parse::<IpAddr>().unwrap());
        assert_eq!(m.config.version, Version::V3);
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert!(m.warnings[0].starts_with("keepalived.conf:3: (VI_1) IPv6 needs VRRP version 3"));
    }

    #[test]
    fn unicast_src_overrides_the_interface_address_and_strict_mode_turns_accept_off() {
        let mut i = instance();
        i.unicast_src = Some("10.201.0.50".parse().unwrap());
        i.unicast_peers = vec!["10.201.0.12".parse().unwrap()];
        let global = GlobalDefs {
            strict: true,
            check_unicast_src: true,
            ..GlobalDefs::default()
        };
        let m = instance_config(&i, &global, &[], None, &iface()).unwrap();
        assert_eq!(m.config.src, "10.201.0.50".parse::<IpAddr>().unwrap());
        assert!(!m.config.accept);
        assert!(m.config.check_unicast_src);
        assert_eq!(m.config.unicast_peers.len(), 1);
    }

    #[test]
    fn errors_name_the_instance_and_the_line() {
        let mut i = instance();
        i.vips.push(vip("fd00::1", 64, 14));
        let e = instance_config(&i, &GlobalDefs::default(), &[], None, &iface()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "keepalived.conf:14: (VI_1) VIP fd00::1 is not of the instance's address family"
        );

        let mut i = instance();
        i.advert_interval = Duration::from_millis(1500);
        let e = instance_config(&i, &GlobalDefs::default(), &[], None, &iface()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("keepalived.conf:3: (VI_1) advert_int out of range"),
            "{e}"
        );

        let no_v4 = IfaceInfo {
            primary_v4: None,
            ..iface()
        };
        let e = instance_config(&instance(), &GlobalDefs::default(), &[], None, &no_v4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "keepalived.conf:3: (VI_1) interface eth0 has no IPv4 address to send adverts from"
        );

        let mut i = instance();
        i.track_scripts = vec![track("nope", None, 20)];
        let e = instance_config(&i, &GlobalDefs::default(), &[], None, &iface()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "keepalived.conf:20: (VI_1) track_script nope: no vrrp_script of that name"
        );
    }

    #[test]
    fn v3_ignores_authentication_with_a_warning() {
        let mut i = instance();
        i.version = Version::V3;
        let m = instance_config(&i, &GlobalDefs::default(), &[], None, &iface()).unwrap();
        assert_eq!(m.config.auth, Auth::None);
        assert_eq!(m.warnings.len(), 1);
    }

    #[test]
    fn tracks_follow_script_weights_overrides_reverse_and_sync_groups() {
        let scripts = vec![
            script("chk_a", -20, false),
            script("chk_b", 0, true),
            script("chk_c", 10, true),
        ];
        let mut i = instance();
        i.track_scripts = vec![
            track("chk_a", None, 20),
            track("chk_b", None, 21),
            track("chk_c", Some(30), 22),
        ];
        i.track_interfaces = vec![track("eth1", Some(-5), 23)];
        let m = instance_config(&i, &GlobalDefs::default(), &scripts, None, &iface()).unwrap();
        assert_eq!(m.config.track_weights.as_slice(), &[-20, 0, -30, -5]);
        assert_eq!(
            m.tracks,
            vec![
                TrackSource::Script {
                    script: 0,
                    invert: false
                },
                TrackSource::Script {
                    script: 1,
                    invert: true
                },
                TrackSource::Script {
                    script: 2,
                    invert: false
                },
                TrackSource::Interface { name: "eth1".into() },
            ]
        );

        // In a sync group: the group's scripts are tracked too, and weights become 0.
        let group = SyncGroupPlan {
            name: "G1".into(),
            members: vec!["VI_1".into()],
            notify: Notify::default(),
            track_scripts: vec![track("chk_b", None, 40)],
            origin: origin(38),
        };
        let mut i = instance();
        i.track_scripts = vec![track("chk_a", None, 20)];
        let m = instance_config(&i, &GlobalDefs::default(), &scripts, Some(&group), &iface()).unwrap();
        assert_eq!(m.config.track_weights.as_slice(), &[0, 0]);
        assert_eq!(m.tracks.len(), 2);
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    }

    #[test]
    fn the_placeholder_interface_checks_a_plan_without_the_system() {
        let m = instance_config(
            &instance(),
            &GlobalDefs::default(),
            &[],
            None,
            &IfaceInfo::placeholder(),
        )
        .unwrap();
        assert_eq!(m.config.src, "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
