//! What a configuration file asks for, independent of its syntax: the parsers
//! (`keepalived`, `ipvsadm`) produce a [`Plan`], the runners (`lbcore-net`:
//! VRRP, data plane, IPVS offload) and the bindings consume it. A plan is plain data: no sockets, no interface lookups. Things that can only be known on
//! the running system (an interface's primary address or MAC) stay as names here and are
//! resolved by the runner at start.
//!
//! Every item remembers where it was written ([`Origin`]) so that errors found later (an
//! interface that does not exist, a VIP of the wrong family) still name file and line.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use crate::service::{DestConfig, ServiceConfig};
use crate::vrrp::{GarpConfig, StartState, Version};

/// Where an item was written: the file and the 1-based line of its first token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    /// The file (as given, or as resolved by `include`).
    pub file: String,
    /// 1-based line.
    pub line: u32,
}

impl core::fmt::Display for Origin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A whole configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// `global_defs`.
    pub global: GlobalDefs,
    /// `vrrp_script` blocks, in file order.
    pub scripts: Vec<ScriptPlan>,
    /// `vrrp_instance` blocks, in file order.
    pub instances: Vec<InstancePlan>,
    /// `vrrp_sync_group` blocks, in file order.
    pub sync_groups: Vec<SyncGroupPlan>,
    /// `virtual_server` blocks (or ipvsadm `-A` rules), in file order.
    pub virtual_servers: Vec<VirtualServerPlan>,
}

/// `global_defs` items that change behaviour (the rest, e.g. `notification_email`, is
/// accepted and ignored, as keepalived does when no SMTP server is set).
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalDefs {
    /// `router_id`.
    pub router_id: Option<String>,
    /// `vrrp_version` (default 2).
    pub vrrp_version: Version,
    /// `vrrp_garp_master_delay`, `vrrp_garp_master_repeat`, ... as one value.
    pub garp: GarpConfig,
    /// `vrrp_check_unicast_src`.
    pub check_unicast_src: bool,
    /// `vrrp_strict`: no accept mode, no authentication, no unicast.
    pub strict: bool,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<String>,
    /// `enable_script_security`.
    pub enable_script_security: bool,
    /// `vrrp_higher_prio_send_advert`.
    pub higher_prio_send_advert: bool,
    /// `vrrp_lower_prio_no_advert`.
    pub lower_prio_no_advert: bool,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            vrrp_version: Version::V2,
            garp: GarpConfig::default(),
            check_unicast_src: false,
            strict: false,
            script_user: None,
            enable_script_security: false,
            higher_prio_send_advert: false,
            lower_prio_no_advert: false,
        }
    }
}

/// `vrrp_script NAME { ... }`: a command run periodically whose exit status is tracked.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptPlan {
    /// The block's name.
    pub name: String,
    /// `script`: the command line (run through `/bin/sh -c` unless it is a bare path).
    pub script: String,
    /// `interval` (default 1 s).
    pub interval: Duration,
    /// `timeout` (default: the interval).
    pub timeout: Option<Duration>,
    /// `weight` (default 0: failure means fault), with `reverse` folded into the sign rule
    /// keepalived uses.
    pub weight: i16,
    /// `weight ... reverse`.
    pub weight_reverse: bool,
    /// `rise` (default 1).
    pub rise: u32,
    /// `fall` (default 1).
    pub fall: u32,
    /// `user USER [GROUP]`.
    pub user: Option<String>,
    /// Where the block starts.
    pub origin: Origin,
}

/// A tracked object of an instance with an optional weight override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackRef {
    /// Script name (`track_script`) or interface name (`track_interface`).
    pub name: String,
    /// `weight N` after the name, overriding the script's own weight.
    pub weight: Option<i16>,
    /// Where it was written.
    pub origin: Origin,
}

/// A virtual address line of `virtual_ipaddress`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipPlan {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (`/24`; default 32 for IPv4, 128 for IPv6).
    pub prefix_len: u8,
    /// `dev IFNAME` (default: the instance's interface).
    pub dev: Option<String>,
    /// `label NAME`.
    pub label: Option<String>,
    /// Where it was written.
    pub origin: Origin,
}

/// The notify hooks of an instance or sync group (`notify_master`, ...; `notify` gets
/// `TYPE NAME STATE PRIORITY` appended as keepalived does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    /// `notify_master`.
    pub master: Option<String>,
    /// `notify_backup`.
    pub backup: Option<String>,
    /// `notify_fault`.
    pub fault: Option<String>,
    /// `notify_stop`.
    pub stop: Option<String>,
    /// `notify`.
    pub any: Option<String>,
}

/// `vrrp_instance NAME { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct InstancePlan {
    /// The block's name.
    pub name: String,
    /// `interface`.
    pub interface: String,
    /// `vrrp_version` of the instance (else the global one); IPv6 instances are v3.
    pub version: Version,
    /// `virtual_router_id`.
    pub vrid: u8,
    /// `priority` (default 100).
    pub priority: u8,
    /// `advert_int` (default 1 s; v3 allows centiseconds).
    pub advert_interval: Duration,
    /// `state MASTER|BACKUP` (default backup).
    pub start_state: StartState,
    /// `nopreempt`.
    pub nopreempt: bool,
    /// `preempt_delay`.
    pub preempt_delay: Duration,
    /// `accept` / `no_accept` when given.
    pub accept: Option<bool>,
    /// `authentication { auth_type PASS; auth_pass SECRET }` (AH is refused).
    pub auth_pass: Option<Vec<u8>>,
    /// `virtual_ipaddress`.
    pub vips: Vec<VipPlan>,
    /// `virtual_ipaddress_excluded`: installed like VIPs but not advertised.
    pub vips_excluded: Vec<VipPlan>,
    /// `unicast_src_ip`.
    pub unicast_src: Option<IpAddr>,
    /// `unicast_peer { ... }`.
    pub unicast_peers: Vec<IpAddr>,
    /// `track_script { ... }`.
    pub track_scripts: Vec<TrackRef>,
    /// `track_interface { ... }`.
    pub track_interfaces: Vec<TrackRef>,
    /// `notify_*`.
    pub notify: Notify,
    /// `garp_master_delay` and friends at instance level (else the global ones).
    pub garp: GarpConfig,
    /// `use_vmac` (accepted; adverts then use the virtual MAC).
    pub use_vmac: bool,
    /// `native_ipv6`: an instance with no VIPs yet that is IPv6.
    pub native_ipv6: bool,
    /// `dont_track_primary`.
    pub dont_track_primary: bool,
    /// Where the block starts.
    pub origin: Origin,
}

/// `vrrp_sync_group NAME { group { ... } ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncGroupPlan {
    /// The block's name.
    pub name: String,
    /// The member instance names, in order.
    pub members: Vec<String>,
    /// `notify_*` of the group.
    pub notify: Notify,
    /// `track_script` of the group (applied to every member).
    pub track_scripts: Vec<TrackRef>,
    /// Where the block starts.
    pub origin: Origin,
}

/// A health check of a real server (keepalived's checkers).
#[derive(Clone, Debug, PartialEq)]
pub enum CheckPlan {
    /// `TCP_CHECK { connect_ip, connect_port, connect_timeout, ... }`.
    Tcp(CheckCommon),
    /// `HTTP_GET` / `SSL_GET { url { path; status_code; digest } ... }`.
    Http {
        /// Common settings.
        common: CheckCommon,
        /// `url` blocks.
        urls: Vec<UrlPlan>,
        /// `virtualhost`.
        virtualhost: Option<String>,
        /// `SSL_GET` rather than `HTTP_GET`.
        tls: bool,
    },
    /// `MISC_CHECK { misc_path; misc_timeout; misc_dynamic; user }`.
    Misc {
        /// Common settings.
        common: CheckCommon,
        /// `misc_path`.
        path: String,
        /// `misc_timeout`.
        timeout: Option<Duration>,
        /// `misc_dynamic`: exit codes 2..=255 set the weight to code - 2.
        dynamic: bool,
    },
}

/// Settings shared by every checker.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CheckCommon {
    /// `connect_ip` (default: the real server's address).
    pub connect_ip: Option<IpAddr>,
    /// `connect_port` (default: the real server's port).
    pub connect_port: Option<u16>,
    /// `bindto`.
    pub bind_to: Option<IpAddr>,
    /// `connect_timeout` (default 5 s).
    pub connect_timeout: Option<Duration>,
    /// `retry` (`nb_get_retry` for HTTP); 0 allowed (default 1, 0 for MISC_CHECK).
    pub retry: Option<u32>,
    /// `delay_before_retry` (default 1 s, 3 s for HTTP_GET).
    pub delay_before_retry: Option<Duration>,
    /// `delay_loop` of the check (default: the virtual server's).
    pub delay_loop: Option<Duration>,
    /// `alpha`: start as failed.
    pub alpha: Option<bool>,
    /// Where the block starts.
    pub origin: Origin,
}

/// An HTTP check `url { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlPlan {
    /// `path`.
    pub path: String,
    /// `status_code` (default: any 2xx).
    pub status_code: Option<u16>,
    /// `digest` (MD5 of the body, hex).
    pub digest: Option<String>,
}

/// `real_server IP PORT { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct RealServerPlan {
    /// The destination as the data plane takes it (address, port, weight, thresholds,
    /// forwarding method: `lb_kind` of the virtual server unless overridden).
    pub dest: DestConfig,
    /// `inhibit_on_failure`: on failure set weight 0 rather than remove it.
    pub inhibit_on_failure: bool,
    /// `notify_up` / `notify_down`.
    pub notify_up: Option<String>,
    /// `notify_down`.
    pub notify_down: Option<String>,
    /// The checks (all must pass).
    pub checks: Vec<CheckPlan>,
    /// Where the block starts.
    pub origin: Origin,
}

/// `virtual_server IP PORT { ... }` / `virtual_server fwmark N { ... }` / ipvsadm `-A`.
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualServerPlan {
    /// The service as the data plane takes it (key, scheduler, flags, persistence).
    pub service: ServiceConfig,
    /// `delay_loop` (default 60 s).
    pub delay_loop: Duration,
    /// `quorum` (default 1).
    pub quorum: u32,
    /// `hysteresis` (default 0).
    pub hysteresis: u32,
    /// `quorum_up` command.
    pub quorum_up: Option<String>,
    /// `quorum_down` command.
    pub quorum_down: Option<String>,
    /// `sorry_server IP PORT`.
    pub sorry_server: Option<DestConfig>,
    /// `sorry_server_inhibit`.
    pub sorry_server_inhibit: bool,
    /// `omega`: run `quorum_down` also when the service is removed.
    pub omega: bool,
    /// `alpha`: real servers start as failed until their checks succeed.
    pub alpha: bool,
    /// `ha_suspend`: checks run only while a VRRP instance owning the VIP is master.
    pub ha_suspend: bool,
    /// `real_server` blocks.
    pub real_servers: Vec<RealServerPlan>,
    /// Where the block starts.
    pub origin: Origin,
}
