//! The no_std proof (see `Cargo.toml`). The exported function only has to *use* lbcore so that
//! its code is linked; the values it computes are irrelevant.
#![no_std]

use core::net::{IpAddr, Ipv4Addr};

#[cfg(feature = "prove-std-leak")]
extern crate std_leak as _;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

#[cfg(feature = "alloc")]
mod dummy_alloc {
    use core::alloc::{GlobalAlloc, Layout};

    /// Never allocates: linking is all the proof needs.
    struct NoAlloc;

    unsafe impl GlobalAlloc for NoAlloc {
        unsafe fn alloc(&self, _: Layout) -> *mut u8 {
            core::ptr::null_mut()
        }
        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
    }

    #[global_allocator]
    static ALLOCATOR: NoAlloc = NoAlloc;
}

/// Calls into lbcore's whole packet path over caller-provided storage (no allocator): builds a
/// balancer with one DR service, and processes a frame. Never run, only linked.
#[unsafe(no_mangle)]
pub extern "C" fn nostd_check_entry(seed: u64, frame: &mut [u8; 2048], len: usize) -> u64 {
    use lbcore::balancer::{Balancer, BalancerConfig, Frame, RxMeta, Service, Verdict};
    use lbcore::conn::table::Conn;
    use lbcore::service::{DestConfig, ServiceConfig};

    let mut services = [Service::default(), Service::default()];
    let mut conns = [Conn::EMPTY; 64];
    let config = BalancerConfig {
        seed,
        ..BalancerConfig::default()
    };
    let Ok(mut lb) = Balancer::with_storage(config, &mut services, &mut conns) else {
        return 0;
    };
    let vip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
    let Ok(svc) = lb.add_service(ServiceConfig::tcp(vip, 80)) else {
        return 0;
    };
    let rs = DestConfig::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80).direct_routing([2, 0, 0, 0, 0, 1]);
    if lb.add_dest(svc, rs).is_err() {
        return 0;
    }
    let mut f = Frame {
        buf: &mut frame[..],
        start: lbcore::wire::HEADROOM,
        len,
        meta: RxMeta::ETHERNET,
    };
    let now = lbcore::time::Instant::from_secs(1);
    let verdict = lb.process(now, &mut f);
    lb.expire(now, 8);
    match verdict {
        Verdict::Forward(_) => f.len as u64,
        _ => lb.counters().dropped,
    }
}
