/* C tests of the lbcore C ABI. Built by `.ci/test` (job "ffi") with
 *   gcc -std=c11 -Wall -Wextra -Werror -I ffi/include -DLBCORE_EXPECTED_VERSION='"x.y.z"' \
 *       ffi/tests/c/test_lbcore.c target/release/liblbcore_ffi.a <native-static-libs>
 * run under valgrind, and also compiled as C++ (g++ -x c++) to check the header there.
 * Prints "lbcore_c_tests: N passed, M failed" and exits non-zero on any failure.
 *
 * Frames are built by hand here (Ethernet / IPv4 / TCP with checksums computed in this file),
 * so the checks do not trust lbcore's own packet code.
 *
 * `test_lbcore --write-pcap FILE [N]` writes N (default 200) TCP SYN frames from distinct
 * clients to the LVS-DR tutorial VIP 172.27.9.100:81, plus one ARP frame, as a classic pcap
 * file: the input of the examples/c/pcap_balance run in CI. */
#include "lbcore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LBCORE_EXPECTED_VERSION
#error "define LBCORE_EXPECTED_VERSION to the Cargo package version, e.g. -DLBCORE_EXPECTED_VERSION='\"0.1.0\"'"
#endif

static int passed;
static int failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* Checks that `call` returns `code`, printing both numbers and the message when not. */
#define CHECK_RC(call, code)                                                                   \
    do {                                                                                       \
        lbcore_result rc_ = (call);                                                            \
        if (rc_ == (code)) {                                                                   \
            passed++;                                                                          \
        } else {                                                                               \
            char msg_[128];                                                                    \
            size_t n_ = 0;                                                                     \
            if (lbcore_result_message((uint32_t)rc_, msg_, sizeof msg_, &n_) != LBCORE_RESULT_OK) \
                strcpy(msg_, "?");                                                             \
            failed++;                                                                          \
            fprintf(stderr, "%s:%d: %s returned %u (%s), expected %u (%s)\n", __FILE__, __LINE__, \
                    #call, (unsigned)rc_, msg_, (unsigned)(code), #code);                      \
        }                                                                                      \
    } while (0)

/* ---------------------------------------------------------------------------------------- */
/* Frames built by hand                                                                      */

static const uint8_t LB_MAC[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t ROUTER_MAC[6] = {0x02, 0xaa, 0x00, 0x00, 0x00, 0x01};
static const uint8_t RS1_MAC[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x91};
static const uint8_t RS2_MAC[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x92};
static const uint8_t GW_MAC[6] = {0x02, 0xbb, 0x00, 0x00, 0x00, 0x01};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static void put16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p) {
    return ((unsigned)p[0] << 8) | p[1];
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One's-complement sum of 16-bit words (RFC 1071), not yet folded or inverted. */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc) {
    size_t i;
    for (i = 0; i + 1 < n; i += 2) acc += get16(p + i);
    if (n & 1) acc += (uint32_t)p[n - 1] << 8;
    return acc;
}

static uint16_t fold(uint32_t acc) {
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

/* The TCP checksum of an IPv4 packet `ip` (header included), computed from scratch. */
static uint16_t tcp_checksum(const uint8_t *ip) {
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    size_t total = get16(ip + 2);
    size_t tcp_len = total - ihl;
    uint32_t acc = sum16(ip + 12, 8, 0); /* source and destination addresses */
    acc += 6;                            /* protocol */
    acc += (uint32_t)tcp_len;
    acc = sum16(ip + ihl, tcp_len, acc);
    return fold(acc);
}

/* Whether the IPv4 header checksum and the TCP checksum of `ip` both verify. */
static int ipv4_tcp_checksums_ok(const uint8_t *ip) {
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    return fold(sum16(ip, ihl, 0)) == 0 && tcp_checksum(ip) == 0;
}

/* Writes Ethernet + IPv4 + TCP (no payload) at `p`; returns the frame length (54). */
static size_t build_tcp(uint8_t *p, const uint8_t dst_mac[6], const uint8_t src_mac[6], const uint8_t src_ip[4],
                        const uint8_t dst_ip[4], unsigned sport, unsigned dport, unsigned flags, uint32_t seq) {
    uint8_t *ip = p + 14;
    uint8_t *tcp = ip + 20;
    uint16_t c;
    memcpy(p, dst_mac, 6);
    memcpy(p + 6, src_mac, 6);
    put16(p + 12, 0x0800);
    memset(ip, 0, 40);
    ip[0] = 0x45;
    put16(ip + 2, 40);
    put16(ip + 4, 0x1234);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, src_ip, 4);
    memcpy(ip + 16, dst_ip, 4);
    put16(ip + 10, fold(sum16(ip, 20, 0)));
    put16(tcp, sport);
    put16(tcp + 2, dport);
    put32(tcp + 4, seq);
    tcp[12] = 5 << 4;
    tcp[13] = (uint8_t)flags;
    put16(tcp + 14, 64240);
    c = tcp_checksum(ip);
    put16(tcp + 16, c);
    return 54;
}

static void ip4(uint8_t out[4], unsigned a, unsigned b, unsigned c, unsigned d) {
    out[0] = (uint8_t)a;
    out[1] = (uint8_t)b;
    out[2] = (uint8_t)c;
    out[3] = (uint8_t)d;
}

static lbcore_addr addr4(unsigned a, unsigned b, unsigned c, unsigned d) {
    lbcore_addr x;
    memset(&x, 0, sizeof x);
    x.family = LBCORE_FAMILY_IPV4;
    ip4(x.bytes, a, b, c, d);
    return x;
}

static lbcore_frame frame_at(uint8_t *buf, size_t buf_len, size_t len) {
    lbcore_frame f;
    f.buf = buf;
    f.buf_len = buf_len;
    f.start = LBCORE_HEADROOM;
    f.len = len;
    f.link = LBCORE_LINK_ETHERNET;
    f.fwmark = 0;
    return f;
}

/* ---------------------------------------------------------------------------------------- */
/* Version, result codes, small helpers                                                      */

static void test_version(void) {
    const char *v = lbcore_version();
    CHECK(v != NULL);
    if (v != NULL) {
        CHECK(strcmp(v, LBCORE_EXPECTED_VERSION) == 0);
        /* Stable across calls: a static string, not a fresh allocation. */
        CHECK(lbcore_version() == v);
    }
}

static void test_result_messages(void) {
    char buf[128];
    size_t n = 12345;
    CHECK_RC(lbcore_result_message(LBCORE_RESULT_OK, buf, sizeof buf, &n), LBCORE_RESULT_OK);
    CHECK(strcmp(buf, "success") == 0 && n == 7);
    CHECK_RC(lbcore_result_message(LBCORE_RESULT_SERVICE_EXISTS, buf, sizeof buf, &n), LBCORE_RESULT_OK);
    CHECK(strcmp(buf, "service already exists") == 0);
    CHECK_RC(lbcore_result_message(LBCORE_RESULT_VRRP_IPV6_NEEDS_V3, buf, sizeof buf, &n), LBCORE_RESULT_OK);
    CHECK(strstr(buf, "IPv6") != NULL);
    /* Size query with (NULL, 0), then a buffer exactly that size. */
    CHECK_RC(lbcore_result_message(LBCORE_RESULT_NULL_PARAMETER, NULL, 0, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
    {
        size_t need = n;
        char *exact = (char *)malloc(need);
        CHECK(need == strlen("a required pointer parameter was NULL") + 1);
        CHECK(exact != NULL);
        if (exact != NULL) {
            CHECK_RC(lbcore_result_message(LBCORE_RESULT_NULL_PARAMETER, exact, need, &n), LBCORE_RESULT_OK);
            CHECK(n == need - 1 && exact[n] == '\0');
            /* One byte short: nothing written, the size needed reported again. */
            memset(exact, 'x', need);
            CHECK_RC(lbcore_result_message(LBCORE_RESULT_NULL_PARAMETER, exact, need - 1, &n),
                     LBCORE_RESULT_BUFFER_TOO_SMALL);
            CHECK(n == need && exact[0] == 'x');
            free(exact);
        }
    }
    CHECK_RC(lbcore_result_message(99999, buf, sizeof buf, &n), LBCORE_RESULT_OK);
    CHECK(strcmp(buf, "unknown lbcore_result 99999") == 0);
    CHECK_RC(lbcore_result_message(LBCORE_RESULT_OK, NULL, 10, &n), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_result_message(LBCORE_RESULT_OK, buf, sizeof buf, NULL), LBCORE_RESULT_NULL_PARAMETER);
    /* Codes are stable numbers. */
    CHECK(LBCORE_RESULT_OK == 0 && LBCORE_RESULT_NULL_PARAMETER == 100 && LBCORE_RESULT_SERVICE_EXISTS == 200);
    CHECK(LBCORE_RESULT_VRRP_VRID_ZERO == 300 && LBCORE_RESULT_CONFIG_INVALID == 400);
}

static void test_addr_and_names(void) {
    lbcore_addr a;
    uint32_t s = 0;
    char buf[32];
    size_t n = 0;
    const char *v6 = "2001:db8::1";

    CHECK_RC(lbcore_addr_parse("192.0.2.10", 10, &a), LBCORE_RESULT_OK);
    CHECK(a.family == LBCORE_FAMILY_IPV4 && a.bytes[0] == 192 && a.bytes[3] == 10);
    CHECK_RC(lbcore_addr_parse(v6, strlen(v6), &a), LBCORE_RESULT_OK);
    CHECK(a.family == LBCORE_FAMILY_IPV6 && a.bytes[0] == 0x20 && a.bytes[15] == 1);
    a.family = 77;
    CHECK_RC(lbcore_addr_parse("192.0.2", 7, &a), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK(a.family == 77); /* untouched on error */
    CHECK_RC(lbcore_addr_parse(NULL, 3, &a), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_addr_parse("1.2.3.4", 7, NULL), LBCORE_RESULT_NULL_PARAMETER);

    CHECK_RC(lbcore_sched_from_name("wrr", 3, &s), LBCORE_RESULT_OK);
    CHECK(s == LBCORE_SCHED_WRR);
    CHECK_RC(lbcore_sched_from_name("twos", 4, &s), LBCORE_RESULT_OK);
    CHECK(s == LBCORE_SCHED_TWOS);
    CHECK_RC(lbcore_sched_from_name("bogus", 5, &s), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_sched_name(LBCORE_SCHED_MH, buf, sizeof buf, &n), LBCORE_RESULT_OK);
    CHECK(strcmp(buf, "mh") == 0 && n == 2);
    CHECK_RC(lbcore_sched_name(99, buf, sizeof buf, &n), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_sched_name(LBCORE_SCHED_LBLCR, buf, 3, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
    CHECK(n == 6);

    CHECK_RC(lbcore_drop_reason_name(0, buf, sizeof buf, &n), LBCORE_RESULT_OK);
    CHECK(strcmp(buf, "truncated") == 0);
    CHECK_RC(lbcore_drop_reason_name(LBCORE_DROP_REASON_COUNT, buf, sizeof buf, &n), LBCORE_RESULT_INVALID_PARAMETER);
    {
        /* Every reason has a distinct, non-empty name. */
        uint32_t i, j;
        char names[LBCORE_DROP_REASON_COUNT][40];
        int ok = 1;
        for (i = 0; i < LBCORE_DROP_REASON_COUNT; i++) {
            if (lbcore_drop_reason_name(i, names[i], sizeof names[i], &n) != LBCORE_RESULT_OK || n == 0) ok = 0;
            for (j = 0; ok && j < i; j++)
                if (strcmp(names[i], names[j]) == 0) ok = 0;
        }
        CHECK(ok);
    }
    CHECK_RC(lbcore_vrrp_reject_name(11, buf, sizeof buf, &n), LBCORE_RESULT_OK);
    CHECK(strcmp(buf, "vrid_mismatch") == 0);
    CHECK_RC(lbcore_vrrp_reject_name(LBCORE_VRRP_REJECT_COUNT, buf, sizeof buf, &n), LBCORE_RESULT_INVALID_PARAMETER);
}

/* ---------------------------------------------------------------------------------------- */
/* Balancer configuration                                                                    */

static void test_balancer_config(void) {
    lbcore_balancer_config *cfg = NULL;
    lbcore_balancer *lb = NULL;
    lbcore_addr a = addr4(10, 9, 0, 1);
    int i;
    lbcore_result last = LBCORE_RESULT_OK;

    CHECK_RC(lbcore_balancer_config_new(NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_config_new(&cfg), LBCORE_RESULT_OK);
    CHECK(cfg != NULL);
    CHECK_RC(lbcore_balancer_config_set_mac(cfg, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_config_set_mac(cfg, LB_MAC), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_config_set_gateway_mac(cfg, GW_MAC), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_config_set_gateway_mac(cfg, NULL), LBCORE_RESULT_OK); /* NULL removes it */
    CHECK_RC(lbcore_balancer_config_set_local_ports(cfg, 2000, 1000), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_balancer_config_set_local_ports(cfg, 1000, 2000), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_config_set_conn_reuse_mode(cfg, 4), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_balancer_config_set_conn_reuse_mode(cfg, 3), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_config_set_tunnel_source(cfg, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_config_set_tunnel_source(cfg, &a), LBCORE_RESULT_OK);
    a.family = 5;
    CHECK_RC(lbcore_balancer_config_add_local_addr(cfg, &a), LBCORE_RESULT_INVALID_PARAMETER);
    a.family = LBCORE_FAMILY_IPV4;
    for (i = 0; i <= (int)LBCORE_MAX_LOCAL_ADDRS; i++) {
        a.bytes[3] = (uint8_t)(10 + i);
        last = lbcore_balancer_config_add_local_addr(cfg, &a);
        if (i < (int)LBCORE_MAX_LOCAL_ADDRS) CHECK(last == LBCORE_RESULT_OK);
    }
    CHECK(last == LBCORE_RESULT_TOO_MANY);
    CHECK_RC(lbcore_balancer_config_set_seed(cfg, 42), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_config_set_max_services(cfg, 4), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_config_set_timeouts(cfg, 0, 0, 0), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_config_set_expire_nodest_conn(cfg, true), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_config_set_expire_quiescent_template(cfg, true), LBCORE_RESULT_OK);

    /* A zero capacity is refused by the balancer, and the out-parameter is left alone. */
    CHECK_RC(lbcore_balancer_config_set_conn_capacity(cfg, 0), LBCORE_RESULT_OK);
    lb = (lbcore_balancer *)&a; /* a sentinel that must survive */
    CHECK_RC(lbcore_balancer_new(cfg, &lb), LBCORE_RESULT_BAD_CAPACITY);
    CHECK(lb == (lbcore_balancer *)&a);
    CHECK_RC(lbcore_balancer_config_set_conn_capacity(cfg, 1024), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_new(NULL, &lb), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_new(cfg, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_new(cfg, &lb), LBCORE_RESULT_OK);
    lbcore_balancer_config_free(cfg); /* the balancer keeps its own copy */
    {
        uint64_t t = 0, f = 0, u = 0;
        CHECK_RC(lbcore_balancer_timeouts(lb, &t, &f, &u), LBCORE_RESULT_OK);
        CHECK(t == 900000000000ull && f == 120000000000ull && u == 300000000000ull);
        CHECK_RC(lbcore_balancer_set_timeouts(lb, 600000000000ull, 0, 30000000000ull), LBCORE_RESULT_OK);
        CHECK_RC(lbcore_balancer_timeouts(lb, &t, &f, &u), LBCORE_RESULT_OK);
        CHECK(t == 600000000000ull && f == 120000000000ull && u == 30000000000ull);
        CHECK_RC(lbcore_balancer_timeouts(lb, &t, NULL, &u), LBCORE_RESULT_NULL_PARAMETER);
    }
    lbcore_balancer_free(lb);
    lbcore_balancer_free(NULL);
    lbcore_balancer_config_free(NULL);
}

/* A balancer with our MAC and a gateway MAC, 4096 connections. */
static lbcore_balancer *new_balancer(void) {
    lbcore_balancer_config *cfg = NULL;
    lbcore_balancer *lb = NULL;
    lbcore_addr local = addr4(10, 0, 0, 250);
    lbcore_addr tun = addr4(172, 27, 9, 1);
    if (lbcore_balancer_config_new(&cfg) != LBCORE_RESULT_OK) return NULL;
    lbcore_balancer_config_set_mac(cfg, LB_MAC);
    lbcore_balancer_config_set_gateway_mac(cfg, GW_MAC);
    lbcore_balancer_config_set_conn_capacity(cfg, 4096);
    lbcore_balancer_config_add_local_addr(cfg, &local);
    lbcore_balancer_config_set_tunnel_source(cfg, &tun);
    if (lbcore_balancer_new(cfg, &lb) != LBCORE_RESULT_OK) lb = NULL;
    lbcore_balancer_config_free(cfg);
    return lb;
}

/* The LVS-DR tutorial: -A -t 172.27.9.100:81 -s wrr -p 50; two real servers -g -w 1. */
static uint16_t add_dr_tutorial(lbcore_balancer *lb, lbcore_dest_id ids[2]) {
    lbcore_service_spec svc = lbcore_service_spec_default();
    lbcore_dest_spec d = lbcore_dest_spec_default();
    uint16_t id = 0xffff;
    svc.vip = addr4(172, 27, 9, 100);
    svc.port = 81;
    svc.scheduler = LBCORE_SCHED_WRR;
    svc.persistence_timeout_ns = 50ull * 1000000000ull;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &id), LBCORE_RESULT_OK);
    d.port = 81;
    d.forward = LBCORE_FORWARD_DIRECT_ROUTING;
    d.has_mac = true;
    d.addr = addr4(172, 27, 9, 91);
    memcpy(d.mac, RS1_MAC, 6);
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &ids[0]), LBCORE_RESULT_OK);
    d.addr = addr4(172, 27, 9, 92);
    memcpy(d.mac, RS2_MAC, 6);
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &ids[1]), LBCORE_RESULT_OK);
    return id;
}

static void test_service_and_dest_errors(void) {
    lbcore_balancer *lb = new_balancer();
    lbcore_service_spec svc = lbcore_service_spec_default();
    lbcore_dest_spec d = lbcore_dest_spec_default();
    lbcore_dest_id ids[2], did;
    uint16_t id = 0, other = 0, list[8];
    size_t n = 0;
    lbcore_service_info si;
    lbcore_dest_info di;
    lbcore_addr rip = addr4(172, 27, 9, 91);

    CHECK(lb != NULL);
    if (lb == NULL) return;
    id = add_dr_tutorial(lb, ids);

    /* The same key again. */
    svc.vip = addr4(172, 27, 9, 100);
    svc.port = 81;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &other), LBCORE_RESULT_SERVICE_EXISTS);
    CHECK_RC(lbcore_balancer_add_service(lb, NULL, &other), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_add_service(NULL, &svc, &other), LBCORE_RESULT_NULL_PARAMETER);
    /* Bad enumeration values and flags. */
    svc.port = 82;
    svc.scheduler = 99;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &other), LBCORE_RESULT_INVALID_PARAMETER);
    svc.scheduler = LBCORE_SCHED_SH;
    svc.sched_flags = 8;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &other), LBCORE_RESULT_INVALID_PARAMETER);
    svc.sched_flags = LBCORE_SCHED_FLAG_FALLBACK | LBCORE_SCHED_FLAG_PORT;
    svc.protocol = 1;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &other), LBCORE_RESULT_INVALID_PARAMETER);
    svc.protocol = LBCORE_PROTOCOL_TCP;
    svc.vip.family = 0;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &other), LBCORE_RESULT_INVALID_PARAMETER);
    svc.vip.family = LBCORE_FAMILY_IPV4;
    /* Rules from the core. */
    svc.port = 0;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &other), LBCORE_RESULT_PORT_ZERO_NOT_PERSISTENT);
    svc.port = 82;
    svc.one_packet = true;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &other), LBCORE_RESULT_ONE_PACKET_NOT_UDP);
    svc.protocol = LBCORE_PROTOCOL_UDP;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &other), LBCORE_RESULT_OK);
    CHECK(other != id);
    /* Read it back. */
    CHECK_RC(lbcore_balancer_service_info(lb, other, &si), LBCORE_RESULT_OK);
    CHECK(si.spec.protocol == LBCORE_PROTOCOL_UDP && si.spec.port == 82 && si.spec.scheduler == LBCORE_SCHED_SH);
    CHECK(si.spec.sched_flags == 3 && si.spec.one_packet && si.dest_count == 0);
    CHECK_RC(lbcore_balancer_service_info(lb, 77, &si), LBCORE_RESULT_NO_SUCH_SERVICE);
    CHECK_RC(lbcore_balancer_find_service(lb, &svc, list), LBCORE_RESULT_OK);
    CHECK(list[0] == other);
    svc.port = 83;
    CHECK_RC(lbcore_balancer_find_service(lb, &svc, list), LBCORE_RESULT_NO_SUCH_SERVICE);
    /* Edit: the scheduler changes. */
    svc.port = 82;
    svc.scheduler = LBCORE_SCHED_MH;
    CHECK_RC(lbcore_balancer_edit_service(lb, other, &svc), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_service_info(lb, other, &si), LBCORE_RESULT_OK);
    CHECK(si.spec.scheduler == LBCORE_SCHED_MH);
    CHECK_RC(lbcore_balancer_edit_service(lb, 77, &svc), LBCORE_RESULT_NO_SUCH_SERVICE);

    /* Service ids: a too-small array reports the count. */
    CHECK_RC(lbcore_balancer_service_ids(lb, list, 1, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
    CHECK(n == 2);
    CHECK_RC(lbcore_balancer_service_ids(lb, NULL, 0, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
    CHECK_RC(lbcore_balancer_service_ids(lb, NULL, 4, &n), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_service_ids(lb, list, 8, &n), LBCORE_RESULT_OK);
    CHECK(n == 2 && ((list[0] == id && list[1] == other) || (list[0] == other && list[1] == id)));

    /* Destination errors. */
    d.addr = addr4(10, 0, 0, 5);
    d.port = 80;
    CHECK_RC(lbcore_balancer_add_dest(lb, 77, &d, &did), LBCORE_RESULT_NO_SUCH_SERVICE);
    d.forward = LBCORE_FORWARD_DIRECT_ROUTING;
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_DIRECT_ROUTING_NEEDS_MAC);
    d.forward = 17;
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_INVALID_PARAMETER);
    d.forward = LBCORE_FORWARD_TUNNEL;
    d.tunnel_type = 5;
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_INVALID_PARAMETER);
    d.tunnel_type = LBCORE_TUNNEL_TYPE_GUE;
    d.gue_port = 6080;
    d.addr.family = LBCORE_FAMILY_IPV6; /* 0a00:0005:: ... no IPv6 tunnel source configured */
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_NO_TUNNEL_SOURCE);
    d.forward = LBCORE_FORWARD_NAT;
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_FAMILY_MISMATCH);
    d.addr = addr4(10, 0, 0, 5);
    d.weight = -1;
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_BAD_WEIGHT);
    d.weight = 2;
    d.u_threshold = 10;
    d.l_threshold = 20;
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_BAD_WEIGHT);
    d.l_threshold = 5;
    d.forward = LBCORE_FORWARD_TUNNEL; /* IPv4 tunnel source is configured */
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_DEST_EXISTS);
    CHECK_RC(lbcore_balancer_add_dest(lb, id, NULL, &did), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_dest_info(lb, did, &di), LBCORE_RESULT_OK);
    CHECK(di.spec.forward == LBCORE_FORWARD_TUNNEL && di.spec.tunnel_type == LBCORE_TUNNEL_TYPE_GUE);
    CHECK(di.spec.gue_port == 6080 && di.spec.weight == 2 && di.spec.u_threshold == 10 && !di.removed);
    /* Edit the weight to 0 (quiesce), then remove. */
    d.weight = 0;
    CHECK_RC(lbcore_balancer_edit_dest(lb, did, &d), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_dest_info(lb, did, &di), LBCORE_RESULT_OK);
    CHECK(di.spec.weight == 0);
    CHECK_RC(lbcore_balancer_remove_dest(lb, did), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_remove_dest(lb, did), LBCORE_RESULT_NO_SUCH_DEST);
    did.slot = 999;
    CHECK_RC(lbcore_balancer_dest_info(lb, did, &di), LBCORE_RESULT_NO_SUCH_DEST);
    CHECK_RC(lbcore_balancer_edit_dest(lb, did, &d), LBCORE_RESULT_NO_SUCH_DEST);
    /* FULLNAT needs a local address of the family: an IPv6 service has none. */
    {
        lbcore_service_spec s6 = lbcore_service_spec_default();
        uint16_t id6 = 0;
        const char *v6 = "2001:db8::10";
        CHECK_RC(lbcore_addr_parse(v6, strlen(v6), &s6.vip), LBCORE_RESULT_OK);
        s6.port = 80;
        CHECK_RC(lbcore_balancer_add_service(lb, &s6, &id6), LBCORE_RESULT_OK);
        d = lbcore_dest_spec_default();
        CHECK_RC(lbcore_addr_parse("2001:db8::20", 12, &d.addr), LBCORE_RESULT_OK);
        d.forward = LBCORE_FORWARD_FULL_NAT;
        CHECK_RC(lbcore_balancer_add_dest(lb, id6, &d, &did), LBCORE_RESULT_NO_LOCAL_ADDRESS);
        CHECK_RC(lbcore_balancer_remove_service(lb, id6), LBCORE_RESULT_OK);
    }
    /* Destination listing and lookup. */
    {
        lbcore_dest_id dl[4];
        CHECK_RC(lbcore_balancer_dest_ids(lb, id, dl, 1, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
        CHECK(n == 2);
        CHECK_RC(lbcore_balancer_dest_ids(lb, id, dl, 4, &n), LBCORE_RESULT_OK);
        CHECK(n == 2);
        CHECK_RC(lbcore_balancer_dest_ids(lb, 77, dl, 4, &n), LBCORE_RESULT_NO_SUCH_SERVICE);
        CHECK_RC(lbcore_balancer_find_dest(lb, id, &rip, 81, &did), LBCORE_RESULT_OK);
        CHECK(did.service == ids[0].service && did.slot == ids[0].slot);
        CHECK_RC(lbcore_balancer_find_dest(lb, id, &rip, 82, &did), LBCORE_RESULT_NO_SUCH_DEST);
        CHECK_RC(lbcore_balancer_find_dest(lb, id, NULL, 81, &did), LBCORE_RESULT_NULL_PARAMETER);
    }
    CHECK_RC(lbcore_balancer_remove_service(lb, other), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_remove_service(lb, other), LBCORE_RESULT_NO_SUCH_SERVICE);
    lbcore_balancer_free(lb);
}

/* ---------------------------------------------------------------------------------------- */
/* Processing                                                                                */

static void test_direct_routing(void) {
    lbcore_balancer *lb = new_balancer();
    lbcore_dest_id ids[2];
    uint16_t id;
    uint8_t buf[LBCORE_HEADROOM + 128];
    uint8_t copy[54];
    uint8_t client[4], vip[4];
    lbcore_frame f;
    lbcore_verdict v;
    lbcore_counters c;
    lbcore_service_info si;
    lbcore_dest_info d0, d1;
    size_t len, n;
    const uint8_t *rs_mac;
    lbcore_dest_id first;

    CHECK(lb != NULL);
    if (lb == NULL) return;
    id = add_dr_tutorial(lb, ids);
    ip4(client, 198, 51, 100, 7);
    ip4(vip, 172, 27, 9, 100);

    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 40000, 81, TCP_SYN, 1000);
    memcpy(copy, buf + LBCORE_HEADROOM, len);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 1000000000ull, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_FORWARD);
    CHECK(v.link == LBCORE_LINK_ETHERNET);
    CHECK(v.next_hop.family == LBCORE_FAMILY_IPV4 && v.next_hop.bytes[0] == 172 && v.next_hop.bytes[2] == 9);
    CHECK(v.next_hop.bytes[3] == 91 || v.next_hop.bytes[3] == 92);
    CHECK(v.dest.service == id);
    CHECK(f.len == len && f.start == LBCORE_HEADROOM);
    rs_mac = v.next_hop.bytes[3] == 91 ? RS1_MAC : RS2_MAC;
    /* DR: destination MAC is the real server's, source MAC ours, the IP packet unchanged. */
    CHECK(memcmp(buf + f.start, rs_mac, 6) == 0);
    CHECK(memcmp(buf + f.start + 6, LB_MAC, 6) == 0);
    CHECK(memcmp(buf + f.start + 12, copy + 12, len - 12) == 0);
    first = v.dest;

    /* Persistence: another connection from the same client goes to the same server. */
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 40001, 81, TCP_SYN, 5000);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 2000000000ull, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_FORWARD && v.dest.slot == first.slot);
    CHECK(memcmp(buf + f.start, rs_mac, 6) == 0);
    /* The ACK of the first connection follows its connection. */
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 40000, 81, TCP_ACK, 1001);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 2500000000ull, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_FORWARD && v.dest.slot == first.slot);

    CHECK_RC(lbcore_balancer_counters(lb, &c), LBCORE_RESULT_OK);
    CHECK(c.rx == 3 && c.forwarded == 3 && c.dropped == 0 && c.passed == 0);
    CHECK(c.conns_created == 2 && c.templates_created == 1);
    CHECK_RC(lbcore_balancer_service_info(lb, id, &si), LBCORE_RESULT_OK);
    CHECK(si.stats.conns == 2 && si.stats.inpkts == 3 && si.stats.inbytes == 3 * 40 && si.dest_count == 2);
    CHECK(si.spec.persistence_timeout_ns == 50000000000ull && si.spec.scheduler == LBCORE_SCHED_WRR);
    CHECK_RC(lbcore_balancer_dest_info(lb, ids[0], &d0), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_dest_info(lb, ids[1], &d1), LBCORE_RESULT_OK);
    CHECK(d0.stats.conns + d1.stats.conns == 2 && d0.persistent + d1.persistent == 1);
    CHECK(d0.active + d0.inactive + d1.active + d1.inactive == 2);
    CHECK(d0.spec.has_mac && memcmp(d0.spec.mac, RS1_MAC, 6) == 0 && d0.spec.forward == LBCORE_FORWARD_DIRECT_ROUTING);

    /* ipvsadm -Ln: size query, too small, exact. */
    CHECK_RC(lbcore_balancer_ipvsadm(lb, 0, NULL, 0, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
    {
        size_t need = n;
        char *text = (char *)malloc(need);
        CHECK(text != NULL);
        if (text != NULL) {
            CHECK_RC(lbcore_balancer_ipvsadm(lb, 0, text, need - 1, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
            CHECK(n == need);
            CHECK_RC(lbcore_balancer_ipvsadm(lb, 0, text, need, &n), LBCORE_RESULT_OK);
            CHECK(n == need - 1 && strlen(text) == n);
            CHECK(strncmp(text, "IP Virtual Server version 1.2.1 (size=", 38) == 0);
            CHECK(strstr(text, "Prot LocalAddress:Port Scheduler Flags\n") != NULL);
            CHECK(strstr(text, "TCP  172.27.9.100:81 wrr persistent 50\n") != NULL);
            CHECK(strstr(text, "  -> 172.27.9.91:81               Route   1      ") != NULL);
            CHECK(strstr(text, "  -> 172.27.9.92:81               Route   1      ") != NULL);
            free(text);
        }
    }
    {
        char text[4096];
        CHECK_RC(lbcore_balancer_ipvsadm(lb, LBCORE_IPVSADM_STATS | LBCORE_IPVSADM_EXACT, text, sizeof text, &n),
                 LBCORE_RESULT_OK);
        CHECK(strstr(text, "Conns   InPkts  OutPkts  InBytes OutBytes") != NULL);
        CHECK(strstr(text, "TCP  172.27.9.100:81                     2        3        0      120        0\n") != NULL);
        CHECK_RC(lbcore_balancer_ipvsadm(lb, LBCORE_IPVSADM_RATE, text, sizeof text, &n), LBCORE_RESULT_OK);
        CHECK(strstr(text, "CPS    InPPS   OutPPS    InBPS   OutBPS") != NULL);
        CHECK_RC(lbcore_balancer_ipvsadm(lb, 1u << 10, text, sizeof text, &n), LBCORE_RESULT_INVALID_PARAMETER);
        CHECK_RC(lbcore_balancer_ipvsadm(lb, 0, text, sizeof text, NULL), LBCORE_RESULT_NULL_PARAMETER);
        CHECK_RC(lbcore_balancer_ipvsadm_conns(lb, 3000000000ull, text, sizeof text, &n), LBCORE_RESULT_OK);
        CHECK(strncmp(text, "IPVS connection entries\n", 24) == 0);
        CHECK(strstr(text, "198.51.100.7:40000") != NULL && strstr(text, "ESTABLISHED") != NULL);
        CHECK(strstr(text, "SYN_RECV") != NULL); /* the second connection saw only its SYN */
        CHECK(strstr(text, "NONE") != NULL);     /* the persistence template */
        CHECK_RC(lbcore_balancer_ipvsadm_conns(lb, 3000000000ull, text, 10, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
        CHECK(n > 10);
    }
    lbcore_balancer_free(lb);
}

static void test_nat_both_ways(void) {
    lbcore_balancer *lb = new_balancer();
    lbcore_service_spec svc = lbcore_service_spec_default();
    lbcore_dest_spec d = lbcore_dest_spec_default();
    uint16_t id;
    lbcore_dest_id did;
    uint8_t buf[LBCORE_HEADROOM + 128];
    uint8_t client[4], vip[4], rip[4];
    lbcore_frame f;
    lbcore_verdict v;
    lbcore_service_info si;
    size_t len;
    const uint8_t *ip, *tcp;

    CHECK(lb != NULL);
    if (lb == NULL) return;
    ip4(client, 203, 0, 113, 5);
    ip4(vip, 192, 0, 2, 10);
    ip4(rip, 10, 0, 0, 2);
    svc.vip = addr4(192, 0, 2, 10);
    svc.port = 80;
    svc.scheduler = LBCORE_SCHED_RR;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &id), LBCORE_RESULT_OK);
    d.addr = addr4(10, 0, 0, 2);
    d.port = 8080;
    d.forward = LBCORE_FORWARD_NAT;
    d.has_mac = true;
    memcpy(d.mac, RS1_MAC, 6);
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_OK);

    /* Client -> VIP:80 becomes client -> 10.0.0.2:8080, checksums still right. */
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 51000, 80, TCP_SYN, 7);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 1000000000ull, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_FORWARD && v.link == LBCORE_LINK_ETHERNET);
    CHECK(memcmp(v.next_hop.bytes, rip, 4) == 0);
    CHECK(memcmp(buf + f.start, RS1_MAC, 6) == 0);
    ip = buf + f.start + 14;
    tcp = ip + 20;
    CHECK(memcmp(ip + 12, client, 4) == 0 && memcmp(ip + 16, rip, 4) == 0);
    CHECK(get16(tcp) == 51000 && get16(tcp + 2) == 8080);
    CHECK(ipv4_tcp_checksums_ok(ip));

    /* The reply 10.0.0.2:8080 -> client comes back as VIP:80 -> client, to the gateway MAC. */
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, RS1_MAC, rip, client, 8080, 51000, TCP_SYN | TCP_ACK, 99);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 1100000000ull, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_FORWARD && v.link == LBCORE_LINK_ETHERNET);
    CHECK(memcmp(v.next_hop.bytes, client, 4) == 0);
    CHECK(memcmp(buf + f.start, GW_MAC, 6) == 0 && memcmp(buf + f.start + 6, LB_MAC, 6) == 0);
    ip = buf + f.start + 14;
    tcp = ip + 20;
    CHECK(memcmp(ip + 12, vip, 4) == 0 && memcmp(ip + 16, client, 4) == 0);
    CHECK(get16(tcp) == 80 && get16(tcp + 2) == 51000);
    CHECK(ipv4_tcp_checksums_ok(ip));

    CHECK_RC(lbcore_balancer_service_info(lb, id, &si), LBCORE_RESULT_OK);
    CHECK(si.stats.inpkts == 1 && si.stats.outpkts == 1 && si.stats.conns == 1);
    {
        char text[1024];
        size_t n;
        CHECK_RC(lbcore_balancer_ipvsadm(lb, 0, text, sizeof text, &n), LBCORE_RESULT_OK);
        CHECK(strstr(text, "TCP  192.0.2.10:80 rr\n  -> 10.0.0.2:8080                Masq    1      1          0         \n") != NULL);
    }
    lbcore_balancer_free(lb);
}

/* IPIP tunnel: the packet is encapsulated in the headroom; without headroom it is dropped.
 * Also a firewall-mark service, matched by the mark given with the frame. */
static void test_tunnel_and_fwmark(void) {
    lbcore_balancer *lb = new_balancer();
    lbcore_service_spec svc = lbcore_service_spec_default();
    lbcore_dest_spec d = lbcore_dest_spec_default();
    uint16_t id, fw;
    lbcore_dest_id did;
    uint8_t buf[LBCORE_HEADROOM + 128];
    uint8_t copy[54];
    uint8_t client[4], vip[4], rip[4], tsrc[4];
    lbcore_frame f;
    lbcore_verdict v;
    char name[64];
    size_t len, n;
    const uint8_t *outer;

    CHECK(lb != NULL);
    if (lb == NULL) return;
    ip4(client, 198, 51, 100, 20);
    ip4(vip, 192, 0, 2, 40);
    ip4(rip, 10, 0, 0, 9);
    ip4(tsrc, 172, 27, 9, 1);
    svc.vip = addr4(192, 0, 2, 40);
    svc.port = 80;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &id), LBCORE_RESULT_OK);
    d.addr = addr4(10, 0, 0, 9);
    d.port = 80;
    d.forward = LBCORE_FORWARD_TUNNEL;
    d.tunnel_type = LBCORE_TUNNEL_TYPE_IPIP;
    d.has_mac = true;
    memcpy(d.mac, RS2_MAC, 6);
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_OK);

    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 3333, 80, TCP_SYN, 1);
    memcpy(copy, buf + LBCORE_HEADROOM, len);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 1, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_FORWARD && memcmp(v.next_hop.bytes, rip, 4) == 0);
    /* Ethernet + outer IPv4 (protocol 4) + the original IP packet: 20 bytes more, moved back. */
    CHECK(f.len == len + 20 && f.start == LBCORE_HEADROOM - 20);
    CHECK(memcmp(buf + f.start, RS2_MAC, 6) == 0 && get16(buf + f.start + 12) == 0x0800);
    outer = buf + f.start + 14;
    CHECK(outer[0] == 0x45 && outer[9] == 4 && get16(outer + 2) == 60);
    CHECK(memcmp(outer + 12, tsrc, 4) == 0 && memcmp(outer + 16, rip, 4) == 0);
    CHECK(fold(sum16(outer, 20, 0)) == 0);
    CHECK(memcmp(outer + 20, copy + 14, len - 14) == 0);

    /* No headroom: the encapsulation cannot be written. */
    len = build_tcp(buf, LB_MAC, ROUTER_MAC, client, vip, 3334, 80, TCP_SYN, 1);
    f = frame_at(buf, len, len);
    f.start = 0;
    CHECK_RC(lbcore_balancer_process(lb, 2, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_DROP);
    CHECK_RC(lbcore_drop_reason_name(v.drop_reason, name, sizeof name, &n), LBCORE_RESULT_OK);
    CHECK(strcmp(name, "no_headroom") == 0);

    /* -f 7: matched by mark whatever the address; DR to RS1. */
    svc = lbcore_service_spec_default();
    svc.fwmark = 7;
    svc.scheduler = LBCORE_SCHED_RR;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &fw), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &fw), LBCORE_RESULT_SERVICE_EXISTS);
    d = lbcore_dest_spec_default();
    d.addr = addr4(10, 0, 0, 10);
    d.forward = LBCORE_FORWARD_DIRECT_ROUTING;
    d.has_mac = true;
    memcpy(d.mac, RS1_MAC, 6);
    CHECK_RC(lbcore_balancer_add_dest(lb, fw, &d, &did), LBCORE_RESULT_OK);
    ip4(vip, 203, 0, 113, 77);
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 4444, 5555, TCP_SYN, 1);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 3, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_PASS); /* no mark: not ours */
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 4444, 5555, TCP_SYN, 1);
    f = frame_at(buf, sizeof buf, len);
    f.fwmark = 7;
    CHECK_RC(lbcore_balancer_process(lb, 4, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_FORWARD && v.dest.service == fw);
    CHECK(memcmp(buf + f.start, RS1_MAC, 6) == 0);
    {
        char text[2048];
        CHECK_RC(lbcore_balancer_ipvsadm(lb, LBCORE_IPVSADM_TUN_INFO, text, sizeof text, &n), LBCORE_RESULT_OK);
        CHECK(strstr(text, "FWM  7 rr\n") != NULL);
        CHECK(strstr(text, "Tunnel") != NULL && strstr(text, "ipip") != NULL);
    }
    lbcore_balancer_free(lb);
}

static void test_drops_pass_and_frame_errors(void) {
    lbcore_balancer *lb = new_balancer();
    lbcore_service_spec svc = lbcore_service_spec_default();
    uint16_t id;
    uint8_t buf[LBCORE_HEADROOM + 128];
    uint8_t client[4], vip[4];
    lbcore_frame f;
    lbcore_verdict v;
    lbcore_counters c, c2;
    uint64_t drops = 0;
    char name[64];
    size_t len, n;

    CHECK(lb != NULL);
    if (lb == NULL) return;
    ip4(client, 203, 0, 113, 9);
    ip4(vip, 192, 0, 2, 20);
    svc.vip = addr4(192, 0, 2, 20);
    svc.port = 443;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &id), LBCORE_RESULT_OK);

    /* A service without destinations: no_destination. */
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 1234, 443, TCP_SYN, 1);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 1, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_DROP);
    CHECK_RC(lbcore_drop_reason_name(v.drop_reason, name, sizeof name, &n), LBCORE_RESULT_OK);
    CHECK(strcmp(name, "no_destination") == 0);
    CHECK_RC(lbcore_balancer_drops(lb, v.drop_reason, &drops), LBCORE_RESULT_OK);
    CHECK(drops == 1);
    CHECK_RC(lbcore_balancer_drops(lb, LBCORE_DROP_REASON_COUNT, &drops), LBCORE_RESULT_INVALID_PARAMETER);

    /* A truncated frame: dropped as truncated. */
    f = frame_at(buf, sizeof buf, 20);
    CHECK_RC(lbcore_balancer_process(lb, 2, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_DROP && v.drop_reason == 0);
    /* A broken IPv4 header checksum. */
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 1234, 443, TCP_SYN, 1);
    buf[LBCORE_HEADROOM + 14 + 10] ^= 0xff;
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 3, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_DROP);
    CHECK_RC(lbcore_drop_reason_name(v.drop_reason, name, sizeof name, &n), LBCORE_RESULT_OK);
    CHECK(strcmp(name, "bad_ipv4_checksum") == 0);
    /* ARP: not ours, passed. */
    memset(buf + LBCORE_HEADROOM, 0, 42);
    put16(buf + LBCORE_HEADROOM + 12, 0x0806);
    f = frame_at(buf, sizeof buf, 42);
    CHECK_RC(lbcore_balancer_process(lb, 4, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_PASS);
    /* Traffic to another address: passed. */
    ip4(vip, 192, 0, 2, 21);
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 1234, 443, TCP_SYN, 1);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 5, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_PASS);
    /* A bare IP packet given as IP. */
    f = frame_at(buf, sizeof buf, len - 14);
    f.start += 14;
    f.link = LBCORE_LINK_IP;
    CHECK_RC(lbcore_balancer_process(lb, 6, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_PASS);

    CHECK_RC(lbcore_balancer_counters(lb, &c), LBCORE_RESULT_OK);
    CHECK(c.rx == 6 && c.dropped == 3 && c.passed == 3 && c.forwarded == 0);

    /* Frame errors: refused before anything happens (not even counted). */
    f = frame_at(buf, sizeof buf, len);
    f.start = sizeof buf - 10;
    CHECK_RC(lbcore_balancer_process(lb, 7, &f, &v), LBCORE_RESULT_INVALID_PARAMETER);
    f = frame_at(buf, sizeof buf, len);
    f.start = sizeof buf + 1;
    f.len = 0;
    CHECK_RC(lbcore_balancer_process(lb, 7, &f, &v), LBCORE_RESULT_INVALID_PARAMETER);
    f = frame_at(buf, sizeof buf, len);
    f.link = 9;
    CHECK_RC(lbcore_balancer_process(lb, 7, &f, &v), LBCORE_RESULT_INVALID_PARAMETER);
    f = frame_at(NULL, 100, 0);
    CHECK_RC(lbcore_balancer_process(lb, 7, &f, &v), LBCORE_RESULT_NULL_PARAMETER);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 7, NULL, &v), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_process(lb, 7, &f, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_process(NULL, 7, &f, &v), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_counters(lb, &c2), LBCORE_RESULT_OK);
    CHECK(c2.rx == c.rx);
    /* An empty frame (NULL buffer, length 0) is valid input: dropped as truncated. */
    f = frame_at(NULL, 0, 0);
    f.start = 0;
    CHECK_RC(lbcore_balancer_process(lb, 8, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_DROP && v.drop_reason == 0);
    lbcore_balancer_free(lb);
}

#define BATCH 100

static void test_batch_matches_single(void) {
    lbcore_balancer *one = new_balancer();
    lbcore_balancer *many = new_balancer();
    lbcore_dest_id ids[2];
    static uint8_t bufs[BATCH][LBCORE_HEADROOM + 64];
    static uint8_t singles[BATCH][LBCORE_HEADROOM + 64];
    lbcore_frame frames[BATCH];
    lbcore_verdict verdicts[BATCH], v;
    uint8_t client[4], vip[4];
    lbcore_counters c1, c2;
    int i, same = 1;

    CHECK(one != NULL && many != NULL);
    if (one == NULL || many == NULL) {
        lbcore_balancer_free(one);
        lbcore_balancer_free(many);
        return;
    }
    add_dr_tutorial(one, ids);
    add_dr_tutorial(many, ids);
    ip4(vip, 172, 27, 9, 100);
    for (i = 0; i < BATCH; i++) {
        size_t len;
        ip4(client, 198, 18, (unsigned)(i / 50), (unsigned)(1 + i % 50));
        /* Every 10th frame is ARP (passed). */
        len = build_tcp(bufs[i] + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 30000 + (unsigned)i, 81, TCP_SYN,
                        (uint32_t)i);
        if (i % 10 == 9) put16(bufs[i] + LBCORE_HEADROOM + 12, 0x0806);
        memcpy(singles[i], bufs[i], sizeof bufs[i]);
        frames[i] = frame_at(bufs[i], sizeof bufs[i], len);
    }
    /* An invalid frame anywhere refuses the whole batch, processing none. */
    frames[BATCH - 1].len = 1000;
    CHECK_RC(lbcore_balancer_process_batch(many, 5, frames, BATCH, verdicts), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_balancer_counters(many, &c2), LBCORE_RESULT_OK);
    CHECK(c2.rx == 0);
    frames[BATCH - 1].len = 54;
    CHECK_RC(lbcore_balancer_process_batch(many, 5, NULL, BATCH, verdicts), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_process_batch(many, 5, frames, BATCH, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_process_batch(many, 5, NULL, 0, NULL), LBCORE_RESULT_OK);

    CHECK_RC(lbcore_balancer_process_batch(many, 5, frames, BATCH, verdicts), LBCORE_RESULT_OK);
    for (i = 0; i < BATCH; i++) {
        lbcore_frame f = frame_at(singles[i], sizeof singles[i], 54);
        if (lbcore_balancer_process(one, 5, &f, &v) != LBCORE_RESULT_OK) same = 0;
        if (v.kind != verdicts[i].kind || v.dest.slot != verdicts[i].dest.slot) same = 0;
        if (f.start != frames[i].start || f.len != frames[i].len) same = 0;
        if (memcmp(singles[i], bufs[i], sizeof bufs[i]) != 0) same = 0;
        if (i % 10 == 9 ? v.kind != LBCORE_VERDICT_KIND_PASS : v.kind != LBCORE_VERDICT_KIND_FORWARD) same = 0;
    }
    CHECK(same);
    CHECK_RC(lbcore_balancer_counters(one, &c1), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_counters(many, &c2), LBCORE_RESULT_OK);
    CHECK(c1.rx == BATCH && c2.rx == BATCH && c1.forwarded == c2.forwarded && c2.forwarded == BATCH - BATCH / 10);
    CHECK(c2.passed == BATCH / 10 && c2.conns_created == c1.conns_created);
    lbcore_balancer_free(one);
    lbcore_balancer_free(many);
}

static void test_expire(void) {
    lbcore_balancer *lb = new_balancer();
    lbcore_service_spec svc = lbcore_service_spec_default();
    lbcore_dest_spec d = lbcore_dest_spec_default();
    uint16_t id;
    lbcore_dest_id did;
    uint8_t buf[LBCORE_HEADROOM + 64];
    uint8_t client[4], vip[4];
    lbcore_frame f;
    lbcore_verdict v;
    lbcore_counters c;
    uint64_t next = 0;
    size_t removed = 99, len;

    CHECK(lb != NULL);
    if (lb == NULL) return;
    svc.vip = addr4(192, 0, 2, 30);
    svc.port = 80;
    CHECK_RC(lbcore_balancer_add_service(lb, &svc, &id), LBCORE_RESULT_OK);
    d.addr = addr4(10, 0, 0, 3);
    d.port = 80;
    CHECK_RC(lbcore_balancer_add_dest(lb, id, &d, &did), LBCORE_RESULT_OK);
    ip4(client, 203, 0, 113, 1);
    ip4(vip, 192, 0, 2, 30);
    len = build_tcp(buf + LBCORE_HEADROOM, LB_MAC, ROUTER_MAC, client, vip, 999, 80, TCP_SYN, 1);
    f = frame_at(buf, sizeof buf, len);
    CHECK_RC(lbcore_balancer_process(lb, 1000000000ull, &f, &v), LBCORE_RESULT_OK);
    CHECK(v.kind == LBCORE_VERDICT_KIND_FORWARD);
    CHECK_RC(lbcore_balancer_poll_timeout(lb, &next), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_poll_timeout(lb, NULL), LBCORE_RESULT_NULL_PARAMETER);
    /* Nothing expires after 1 s; SYN_RECV (60 s) has passed after 100 s. */
    CHECK_RC(lbcore_balancer_expire(lb, 2000000000ull, 4096, &removed), LBCORE_RESULT_OK);
    CHECK(removed == 0);
    CHECK_RC(lbcore_balancer_expire(lb, 100000000000ull, 4096, &removed), LBCORE_RESULT_OK);
    CHECK(removed == 1);
    CHECK_RC(lbcore_balancer_expire(lb, 100000000000ull, 4096, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_counters(lb, &c), LBCORE_RESULT_OK);
    CHECK(c.conns_expired == 1);
    CHECK_RC(lbcore_balancer_poll_timeout(lb, &next), LBCORE_RESULT_OK);
    CHECK(next > 100000000000ull);
    lbcore_balancer_free(lb);
}

/* ---------------------------------------------------------------------------------------- */
/* VRRP                                                                                      */

typedef struct {
    int state_changes, add_vip, remove_vip, adverts, garps;
    lbcore_vrrp_state last_to;
    uint8_t advert[LBCORE_VRRP_PACKET_MAX];
    size_t advert_len;
    int advert_ok;
} drained;

/* Drains every action, first trying a small buffer (kept action must come back). */
static void drain(lbcore_vrrp_router *r, drained *out) {
    uint8_t small[16];
    uint8_t big[LBCORE_VRRP_PACKET_MAX];
    lbcore_vrrp_action a;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    for (;;) {
        lbcore_result rc = lbcore_vrrp_router_poll_action(r, &a, small, sizeof small, &n);
        if (rc == LBCORE_RESULT_BUFFER_TOO_SMALL) {
            size_t need = n;
            CHECK(need > sizeof small && need <= LBCORE_VRRP_PACKET_MAX);
            CHECK_RC(lbcore_vrrp_router_poll_action(r, &a, big, sizeof big, &n), LBCORE_RESULT_OK);
            CHECK(n == need);
        } else {
            CHECK(rc == LBCORE_RESULT_OK);
            if (rc != LBCORE_RESULT_OK) return;
            memcpy(big, small, n);
        }
        switch (a.kind) {
            case LBCORE_VRRP_ACTION_KIND_NONE:
                CHECK(n == 0);
                return;
            case LBCORE_VRRP_ACTION_KIND_STATE_CHANGED:
                out->state_changes++;
                out->last_to = a.to;
                CHECK(n == 0);
                break;
            case LBCORE_VRRP_ACTION_KIND_ADD_VIP:
                out->add_vip++;
                CHECK(a.prefix_len == 24 && a.addr.bytes[3] == 100);
                break;
            case LBCORE_VRRP_ACTION_KIND_REMOVE_VIP:
                out->remove_vip++;
                break;
            case LBCORE_VRRP_ACTION_KIND_SEND_ADVERT:
                out->adverts++;
                /* Multicast to 224.0.0.18 from the virtual MAC 00:00:5e:00:01:33 (VRID 51). */
                out->advert_ok = a.link == LBCORE_LINK_ETHERNET && a.ip_offset == 14 && a.vrrp_offset == 34 &&
                                 big[0] == 0x01 && big[1] == 0x00 && big[2] == 0x5e && big[5] == 0x12 &&
                                 big[6] == 0x00 && big[10] == 0x01 && big[11] == 51 && get16(big + 12) == 0x0800 &&
                                 big[14 + 9] == 112 && big[14 + 8] == 255 && big[34] == 0x31 && big[35] == 51 &&
                                 a.addr.bytes[0] == 224 && a.addr.bytes[3] == 18;
                memcpy(out->advert, big, n);
                out->advert_len = n;
                break;
            case LBCORE_VRRP_ACTION_KIND_SEND_GRATUITOUS:
                out->garps++;
                CHECK(n == 42 && get16(big + 12) == 0x0806 && a.addr.bytes[3] == 100);
                break;
            default:
                CHECK(!"unknown action kind");
                return;
        }
    }
}

static lbcore_vrrp_router *new_router(unsigned last_octet, uint8_t priority) {
    lbcore_vrrp_config *cfg = NULL;
    lbcore_vrrp_router *r = NULL;
    lbcore_addr me = addr4(10, 201, 0, last_octet);
    lbcore_addr vip = addr4(10, 201, 0, 100);
    if (lbcore_vrrp_config_new(LBCORE_VRRP_VERSION_V3, 51, &me, &cfg) != LBCORE_RESULT_OK) return NULL;
    lbcore_vrrp_config_set_priority(cfg, priority);
    lbcore_vrrp_config_add_vip(cfg, &vip, 24);
    if (lbcore_vrrp_router_new(cfg, &r) != LBCORE_RESULT_OK) r = NULL;
    lbcore_vrrp_config_free(cfg);
    return r;
}

static void test_vrrp_failover(void) {
    lbcore_vrrp_router *a = new_router(11, 150);
    lbcore_vrrp_router *b = new_router(12, 200);
    drained d;
    uint64_t t = 0;
    lbcore_vrrp_status st;
    lbcore_vrrp_counters c;
    uint8_t junk[60];
    uint64_t rejected = 0;
    int i;

    CHECK(a != NULL && b != NULL);
    if (a == NULL || b == NULL) {
        lbcore_vrrp_router_free(a);
        lbcore_vrrp_router_free(b);
        return;
    }
    CHECK_RC(lbcore_vrrp_router_poll_timeout(a, &t), LBCORE_RESULT_OK);
    CHECK(t == LBCORE_VRRP_NO_TIMEOUT); /* Initialize: no timer */
    CHECK_RC(lbcore_vrrp_router_start(a, 0), LBCORE_RESULT_OK);
    drain(a, &d);
    CHECK(d.state_changes == 1 && d.last_to == LBCORE_VRRP_STATE_BACKUP);
    /* Alone, A takes over after 3 x 1 s + skew (256 - 150) / 256 s. */
    CHECK_RC(lbcore_vrrp_router_poll_timeout(a, &t), LBCORE_RESULT_OK);
    CHECK(t > 3414000000ull && t < 3415000000ull); /* 3 s + 106/256 s, in whole microseconds */
    CHECK_RC(lbcore_vrrp_router_handle_timeout(a, t - 1), LBCORE_RESULT_OK); /* early: harmless */
    drain(a, &d);
    CHECK(d.state_changes == 0);
    CHECK_RC(lbcore_vrrp_router_handle_timeout(a, t), LBCORE_RESULT_OK);
    drain(a, &d);
    CHECK(d.state_changes == 1 && d.last_to == LBCORE_VRRP_STATE_MASTER);
    CHECK(d.add_vip == 1 && d.adverts == 1 && d.advert_ok && d.garps == 5);
    CHECK_RC(lbcore_vrrp_router_status(a, &st), LBCORE_RESULT_OK);
    CHECK(st.state == LBCORE_VRRP_STATE_MASTER && st.priority == 150 && st.accepts_vip_traffic && !st.fault);
    CHECK(st.advert_interval_ns == 1000000000ull);

    /* B (priority 200) starts as master at once by state MASTER? No: as backup; it hears A. */
    CHECK_RC(lbcore_vrrp_router_start(b, t), LBCORE_RESULT_OK);
    drain(b, &d);
    /* Make B master on its own timer, then feed its advert to A: A steps down. */
    CHECK_RC(lbcore_vrrp_router_poll_timeout(b, &t), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_router_handle_timeout(b, t), LBCORE_RESULT_OK);
    drain(b, &d);
    CHECK(d.last_to == LBCORE_VRRP_STATE_MASTER && d.adverts == 1 && d.advert_len > 34);
    CHECK_RC(lbcore_vrrp_router_handle_packet(a, t, d.advert, d.advert_len, LBCORE_VRRP_RX_ETHERNET),
             LBCORE_RESULT_OK);
    drain(a, &d);
    CHECK(d.state_changes == 1 && d.last_to == LBCORE_VRRP_STATE_BACKUP && d.remove_vip == 1);
    CHECK_RC(lbcore_vrrp_router_status(a, &st), LBCORE_RESULT_OK);
    CHECK(st.state == LBCORE_VRRP_STATE_BACKUP && st.has_master && st.master_priority == 200);
    CHECK(st.master.bytes[3] == 12);

    /* Junk is counted, never fatal. */
    for (i = 0; i < (int)sizeof junk; i++) junk[i] = (uint8_t)(i * 7);
    CHECK_RC(lbcore_vrrp_router_handle_packet(a, t, junk, sizeof junk, LBCORE_VRRP_RX_ETHERNET), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_router_handle_packet(a, t, junk, 3, LBCORE_VRRP_RX_IP), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_router_handle_packet(a, t, NULL, 0, LBCORE_VRRP_RX_IP), LBCORE_RESULT_OK);
    {
        lbcore_addr src = addr4(10, 201, 0, 12), dst = addr4(224, 0, 0, 18);
        CHECK_RC(lbcore_vrrp_router_handle_payload(a, t, junk, 8, &src, &dst, 255), LBCORE_RESULT_OK);
        CHECK_RC(lbcore_vrrp_router_handle_payload(a, t, junk, 8, &src, &dst, 256), LBCORE_RESULT_INVALID_PARAMETER);
        CHECK_RC(lbcore_vrrp_router_handle_payload(a, t, junk, 8, NULL, &dst, -1), LBCORE_RESULT_NULL_PARAMETER);
    }
    CHECK_RC(lbcore_vrrp_router_handle_packet(a, t, junk, sizeof junk, 7), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_vrrp_router_handle_packet(a, t, NULL, 5, LBCORE_VRRP_RX_IP), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_vrrp_router_counters(a, &c), LBCORE_RESULT_OK);
    for (i = 0; i < (int)LBCORE_VRRP_REJECT_COUNT; i++) rejected += c.rejected[i];
    CHECK(c.adverts_received == 1 && rejected == 4 && c.became_master == 1 && c.released_master == 1);
    CHECK(c.adverts_sent == 1 && c.gratuitous_sent == 5);

    /* Interface down: Fault; up again: Backup. */
    CHECK_RC(lbcore_vrrp_router_set_interface(a, t, false), LBCORE_RESULT_OK);
    drain(a, &d);
    CHECK(d.last_to == LBCORE_VRRP_STATE_FAULT);
    CHECK_RC(lbcore_vrrp_router_set_interface(a, t, true), LBCORE_RESULT_OK);
    drain(a, &d);
    CHECK(d.last_to == LBCORE_VRRP_STATE_BACKUP);
    CHECK_RC(lbcore_vrrp_router_set_priority_delta(a, t, -20), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_router_status(a, &st), LBCORE_RESULT_OK);
    CHECK(st.priority == 130 && st.base_priority == 150);
    CHECK_RC(lbcore_vrrp_router_set_track(a, t, 0, false), LBCORE_RESULT_INVALID_PARAMETER);

    /* Shutdown of the master B: a priority-0 advert and the VIP removed. */
    CHECK_RC(lbcore_vrrp_router_shutdown(b, t + 1), LBCORE_RESULT_OK);
    drain(b, &d);
    CHECK(d.last_to == LBCORE_VRRP_STATE_INITIALIZE && d.adverts == 1 && d.remove_vip == 1);
    CHECK(d.advert[34 + 2] == 0); /* priority 0 */
    lbcore_vrrp_router_free(a);
    lbcore_vrrp_router_free(b);
}

static void test_vrrp_config_errors(void) {
    lbcore_vrrp_config *cfg = NULL;
    lbcore_vrrp_router *r = NULL;
    lbcore_addr me = addr4(10, 0, 0, 1);
    lbcore_addr v6;
    lbcore_addr vip = addr4(10, 0, 0, 100);
    lbcore_vrrp_garp g = lbcore_vrrp_garp_default();
    uint8_t track = 0xff;
    int i;
    lbcore_result last = LBCORE_RESULT_OK;

    CHECK(g.master_repeat == 5 && g.master_delay_ns == 5000000000ull && g.master_refresh_ns == 0);
    CHECK_RC(lbcore_vrrp_config_new(4, 1, &me, &cfg), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_vrrp_config_new(LBCORE_VRRP_VERSION_V2, 1, NULL, &cfg), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_vrrp_config_new(LBCORE_VRRP_VERSION_V2, 1, &me, NULL), LBCORE_RESULT_NULL_PARAMETER);

    /* VRID 0 is refused when the router is built. */
    CHECK_RC(lbcore_vrrp_config_new(LBCORE_VRRP_VERSION_V2, 0, &me, &cfg), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_router_new(cfg, &r), LBCORE_RESULT_VRRP_VRID_ZERO);
    CHECK(r == NULL);
    lbcore_vrrp_config_free(cfg);

    CHECK_RC(lbcore_vrrp_config_new(LBCORE_VRRP_VERSION_V2, 7, &me, &cfg), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_priority(cfg, 0), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_router_new(cfg, &r), LBCORE_RESULT_VRRP_PRIORITY_ZERO);
    CHECK_RC(lbcore_vrrp_config_set_priority(cfg, 100), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_advert_interval(cfg, 1500000000ull), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_router_new(cfg, &r), LBCORE_RESULT_VRRP_BAD_INTERVAL);
    CHECK_RC(lbcore_vrrp_config_set_advert_interval(cfg, 2000000000ull), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_add_vip(cfg, &vip, 33), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_vrrp_config_add_vip(cfg, NULL, 24), LBCORE_RESULT_NULL_PARAMETER);
    for (i = 0; i <= (int)LBCORE_VRRP_MAX_VIPS; i++) {
        vip.bytes[3] = (uint8_t)(100 + i);
        last = lbcore_vrrp_config_add_vip(cfg, &vip, 24);
    }
    CHECK(last == LBCORE_RESULT_VRRP_TOO_MANY);
    CHECK_RC(lbcore_vrrp_config_set_auth_pass(cfg, (const uint8_t *)"secret99", 8), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_auth_pass(cfg, NULL, 8), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_vrrp_config_set_start_state(cfg, 2), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_vrrp_config_set_start_state(cfg, LBCORE_VRRP_START_STATE_MASTER), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_nopreempt(cfg, true), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_preempt_delay(cfg, 0), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_accept(cfg, false), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_check_unicast_src(cfg, true), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_source_mac(cfg, LB_MAC), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_source_mac(cfg, NULL), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_down_timer_adverts(cfg, 3), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_garp(cfg, &g), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_garp(cfg, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_vrrp_config_set_advert_policy(cfg, true, false), LBCORE_RESULT_OK);
    for (i = 0; i <= (int)LBCORE_VRRP_MAX_PEERS; i++) {
        lbcore_addr peer = addr4(10, 0, 0, 200 + (unsigned)i);
        last = lbcore_vrrp_config_add_unicast_peer(cfg, &peer, i % 2 ? RS1_MAC : NULL);
    }
    CHECK(last == LBCORE_RESULT_VRRP_TOO_MANY);
    CHECK_RC(lbcore_vrrp_config_add_track(cfg, 10, &track), LBCORE_RESULT_OK);
    CHECK(track == 0);
    CHECK_RC(lbcore_vrrp_config_add_track(cfg, 0, &track), LBCORE_RESULT_OK);
    CHECK(track == 1);
    CHECK_RC(lbcore_vrrp_config_add_track(cfg, 0, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_vrrp_router_new(cfg, &r), LBCORE_RESULT_OK);
    lbcore_vrrp_config_free(cfg);
    if (r != NULL) {
        drained d;
        CHECK_RC(lbcore_vrrp_router_set_track(r, 0, 1, false), LBCORE_RESULT_OK);
        CHECK_RC(lbcore_vrrp_router_start(r, 0), LBCORE_RESULT_OK);
        drain(r, &d);
        CHECK(d.last_to == LBCORE_VRRP_STATE_FAULT); /* a weight-0 track is down */
        CHECK_RC(lbcore_vrrp_router_set_track(r, 1, 1, true), LBCORE_RESULT_OK);
        drain(r, &d);
        CHECK(d.last_to == LBCORE_VRRP_STATE_BACKUP);
        CHECK_RC(lbcore_vrrp_router_set_track(r, 1, 2, true), LBCORE_RESULT_INVALID_PARAMETER);
        lbcore_vrrp_router_free(r);
    }

    /* IPv6 needs VRRPv3; authentication only VRRPv2; families must agree. */
    CHECK_RC(lbcore_addr_parse("fe80::1", 7, &v6), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_new(LBCORE_VRRP_VERSION_V2, 9, &v6, &cfg), LBCORE_RESULT_OK);
    r = NULL;
    CHECK_RC(lbcore_vrrp_router_new(cfg, &r), LBCORE_RESULT_VRRP_IPV6_NEEDS_V3);
    lbcore_vrrp_config_free(cfg);
    CHECK_RC(lbcore_vrrp_config_new(LBCORE_VRRP_VERSION_V3, 9, &v6, &cfg), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_add_vip(cfg, &me, 24), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_router_new(cfg, &r), LBCORE_RESULT_VRRP_FAMILY_MISMATCH);
    lbcore_vrrp_config_free(cfg);
    CHECK_RC(lbcore_vrrp_config_new(LBCORE_VRRP_VERSION_V3, 9, &me, &cfg), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_config_set_auth_pass(cfg, (const uint8_t *)"pw", 2), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_vrrp_router_new(cfg, &r), LBCORE_RESULT_VRRP_AUTH_NEEDS_V2);
    CHECK_RC(lbcore_vrrp_router_new(cfg, NULL), LBCORE_RESULT_NULL_PARAMETER);
    lbcore_vrrp_config_free(cfg);
    CHECK(r == NULL);
    lbcore_vrrp_config_free(NULL);
    lbcore_vrrp_router_free(NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Configuration text                                                                        */

static const char KEEPALIVED_CONF[] =
    "global_defs {\n"
    "    router_id LB1\n"
    "}\n"
    "vrrp_script chk_nginx {\n"
    "    script \"/usr/bin/pgrep nginx\"\n"
    "    interval 2\n"
    "    weight -20\n"
    "}\n"
    "vrrp_instance VI_1 {\n"
    "    state MASTER\n"
    "    interface eth0\n"
    "    virtual_router_id 51\n"
    "    priority 150\n"
    "    advert_int 1\n"
    "    authentication {\n"
    "        auth_type PASS\n"
    "        auth_pass secret\n"
    "    }\n"
    "    virtual_ipaddress {\n"
    "        172.27.9.100/24\n"
    "    }\n"
    "    track_script {\n"
    "        chk_nginx\n"
    "    }\n"
    "}\n"
    "virtual_server 172.27.9.100 81 {\n"
    "    delay_loop 6\n"
    "    lb_algo wrr\n"
    "    lb_kind DR\n"
    "    persistence_timeout 50\n"
    "    protocol TCP\n"
    "    real_server 172.27.9.91 81 {\n"
    "        weight 1\n"
    "        TCP_CHECK {\n"
    "            connect_timeout 3\n"
    "        }\n"
    "    }\n"
    "    real_server 172.27.9.92 81 {\n"
    "        weight 1\n"
    "    }\n"
    "}\n";

static const char IPVSADM_RULES[] =
    "-A -t 192.0.2.10:80 -s rr\n"
    "-a -t 192.0.2.10:80 -r 10.0.0.2:8080 -m -w 3\n"
    "-A -u 192.0.2.10:53 -s wlc\n"
    "-a -u 192.0.2.10:53 -r 10.0.0.3:53 -m -w 1\n";

static void test_config_errors(void) {
    lbcore_config *cfg = NULL;
    char diag[256];
    size_t n = 0;
    lbcore_config_counts sum;
    lbcore_balancer *lb = new_balancer();
    const char bad_utf8[] = "\xff\xfe";

    CHECK_RC(lbcore_config_parse_keepalived("k", 1, NULL, 5, &cfg, diag, sizeof diag, &n),
             LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_config_parse_keepalived("k", 1, "x", 1, NULL, diag, sizeof diag, &n),
             LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_config_parse_keepalived("k", 1, bad_utf8, 2, &cfg, diag, sizeof diag, &n),
             LBCORE_RESULT_INVALID_PARAMETER);
    CHECK_RC(lbcore_config_parse_ipvsadm(bad_utf8, 2, "", 0, &cfg, NULL, 0, NULL), LBCORE_RESULT_INVALID_PARAMETER);
    CHECK(cfg == NULL);
    /* Empty text is a valid, empty configuration (diagnostics pointers are optional). */
    CHECK_RC(lbcore_config_parse_ipvsadm("empty", 5, NULL, 0, &cfg, NULL, 0, NULL), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_config_summary(cfg, &sum), LBCORE_RESULT_OK);
    CHECK(sum.virtual_servers == 0 && sum.real_servers == 0 && sum.vrrp_instances == 0 && sum.warnings == 0);
    CHECK_RC(lbcore_config_warnings(cfg, diag, sizeof diag, &n), LBCORE_RESULT_OK);
    CHECK(n == 0 && diag[0] == '\0');
    CHECK_RC(lbcore_balancer_apply_config(lb, cfg, NULL, 0, NULL), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_apply_config(NULL, cfg, NULL, 0, NULL), LBCORE_RESULT_NULL_PARAMETER);
    CHECK_RC(lbcore_balancer_apply_config(lb, NULL, NULL, 0, NULL), LBCORE_RESULT_NULL_PARAMETER);
    {
        lbcore_vrrp_instance_info vi;
        lbcore_vrrp_track_info ti;
        lbcore_vrrp_config *vc = NULL;
        CHECK_RC(lbcore_config_vrrp_instance(cfg, 0, &vi), LBCORE_RESULT_INVALID_PARAMETER);
        CHECK_RC(lbcore_config_vrrp_instance_name(cfg, 0, diag, sizeof diag, &n), LBCORE_RESULT_INVALID_PARAMETER);
        CHECK_RC(lbcore_config_vrrp_track(cfg, 0, 0, &ti, diag, sizeof diag, &n), LBCORE_RESULT_INVALID_PARAMETER);
        CHECK_RC(lbcore_config_vrrp_config_new(cfg, 0, NULL, NULL, &vc, NULL, 0, NULL), LBCORE_RESULT_INVALID_PARAMETER);
        CHECK(vc == NULL);
    }
    CHECK_RC(lbcore_config_set_mac(cfg, NULL, LB_MAC), LBCORE_RESULT_NULL_PARAMETER);
    lbcore_config_free(cfg);
    lbcore_config_free(NULL);
    lbcore_balancer_free(lb);
}

static void test_config_text(void) {
    lbcore_config *cfg = NULL;
    lbcore_balancer *lb = new_balancer();
    char diag[512];
    char text[4096];
    size_t n = 0;
    lbcore_config_counts sum;
    lbcore_addr rip;

    /* keepalived.conf: DR needs the real servers' MACs. */
    CHECK_RC(lbcore_config_parse_keepalived("keepalived.conf", 15, KEEPALIVED_CONF, strlen(KEEPALIVED_CONF), &cfg,
                                            diag, sizeof diag, &n),
             LBCORE_RESULT_OK);
    if (cfg == NULL || lb == NULL) {
        lbcore_balancer_free(lb);
        return;
    }
    CHECK_RC(lbcore_config_summary(cfg, &sum), LBCORE_RESULT_OK);
    CHECK(sum.virtual_servers == 1 && sum.real_servers == 2 && sum.vrrp_instances == 1 && sum.scripts == 1);
    n = 0;
    CHECK_RC(lbcore_balancer_apply_config(lb, cfg, diag, sizeof diag, &n), LBCORE_RESULT_DIRECT_ROUTING_NEEDS_MAC);
    CHECK(n > 0 && strstr(diag, "keepalived.conf:") == diag && strstr(diag, "real_server 172.27.9.91 81") != NULL);
    CHECK_RC(lbcore_balancer_service_ids(lb, NULL, 0, &n), LBCORE_RESULT_OK); /* rolled back: no services */
    CHECK(n == 0);
    rip = addr4(172, 27, 9, 91);
    CHECK_RC(lbcore_config_set_mac(cfg, &rip, RS1_MAC), LBCORE_RESULT_OK);
    rip.bytes[3] = 92;
    CHECK_RC(lbcore_config_set_mac(cfg, &rip, RS2_MAC), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_apply_config(lb, cfg, diag, sizeof diag, &n), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_ipvsadm(lb, 0, text, sizeof text, &n), LBCORE_RESULT_OK);
    CHECK(strstr(text, "TCP  172.27.9.100:81 wrr persistent 50\n") != NULL);
    CHECK(strstr(text, "  -> 172.27.9.91:81               Route   1      0          0") != NULL);
    CHECK(strstr(text, "  -> 172.27.9.92:81               Route   1      0          0") != NULL);
    /* Applying twice: the service exists; nothing changes. */
    CHECK_RC(lbcore_balancer_apply_config(lb, cfg, diag, sizeof diag, &n), LBCORE_RESULT_SERVICE_EXISTS);
    CHECK(strstr(diag, "virtual_server 172.27.9.100 81") != NULL);

    /* The VRRP instance, its track, and a router built from it. */
    {
        lbcore_vrrp_instance_info vi;
        lbcore_vrrp_track_info ti;
        lbcore_vrrp_config *vc = NULL;
        lbcore_vrrp_router *r = NULL;
        lbcore_addr primary = addr4(172, 27, 9, 10);
        lbcore_vrrp_status st;
        drained d;
        uint64_t t = 0;
        CHECK_RC(lbcore_config_vrrp_instance(cfg, 0, &vi), LBCORE_RESULT_OK);
        CHECK(vi.vrid == 51 && vi.priority == 150 && vi.version == LBCORE_VRRP_VERSION_V2);
        CHECK(vi.start_state == LBCORE_VRRP_START_STATE_MASTER && vi.family == LBCORE_FAMILY_IPV4);
        CHECK(vi.advert_interval_ns == 1000000000ull && vi.vip_count == 1 && vi.track_count == 1 && !vi.has_unicast_src);
        CHECK_RC(lbcore_config_vrrp_instance_name(cfg, 0, text, sizeof text, &n), LBCORE_RESULT_OK);
        CHECK(strcmp(text, "VI_1") == 0);
        CHECK_RC(lbcore_config_vrrp_instance_interface(cfg, 0, text, sizeof text, &n), LBCORE_RESULT_OK);
        CHECK(strcmp(text, "eth0") == 0);
        CHECK_RC(lbcore_config_vrrp_track(cfg, 0, 0, &ti, text, 4, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
        CHECK(n == 10);
        CHECK_RC(lbcore_config_vrrp_track(cfg, 0, 0, &ti, text, sizeof text, &n), LBCORE_RESULT_OK);
        CHECK(strcmp(text, "chk_nginx") == 0 && ti.kind == LBCORE_TRACK_KIND_SCRIPT && ti.weight == -20 && !ti.invert);
        CHECK_RC(lbcore_config_vrrp_track(cfg, 0, 1, &ti, text, sizeof text, &n), LBCORE_RESULT_INVALID_PARAMETER);
        /* No primary address and no unicast_src_ip: refused, with the reason. */
        CHECK_RC(lbcore_config_vrrp_config_new(cfg, 0, NULL, NULL, &vc, diag, sizeof diag, &n),
                 LBCORE_RESULT_CONFIG_INVALID);
        CHECK(strstr(diag, "VI_1") != NULL && strstr(diag, "eth0") != NULL && n == strlen(diag));
        CHECK_RC(lbcore_config_vrrp_config_new(cfg, 0, &primary, LB_MAC, &vc, diag, sizeof diag, &n), LBCORE_RESULT_OK);
        CHECK_RC(lbcore_vrrp_router_new(vc, &r), LBCORE_RESULT_OK);
        lbcore_vrrp_config_free(vc);
        CHECK_RC(lbcore_vrrp_router_start(r, 0), LBCORE_RESULT_OK);
        drain(r, &d);
        CHECK_RC(lbcore_vrrp_router_poll_timeout(r, &t), LBCORE_RESULT_OK);
        CHECK(t < 2000000000ull); /* state MASTER: one advert interval plus the minimum skew */
        CHECK_RC(lbcore_vrrp_router_handle_timeout(r, t), LBCORE_RESULT_OK);
        memset(&d, 0, sizeof d);
        {
            lbcore_vrrp_action a;
            uint8_t pkt[LBCORE_VRRP_PACKET_MAX];
            int adverts = 0;
            while (lbcore_vrrp_router_poll_action(r, &a, pkt, sizeof pkt, &n) == LBCORE_RESULT_OK &&
                   a.kind != LBCORE_VRRP_ACTION_KIND_NONE) {
                if (a.kind == LBCORE_VRRP_ACTION_KIND_SEND_ADVERT) {
                    adverts++;
                    /* VRRPv2 from our interface MAC, authentication type 1 with the password. */
                    CHECK(memcmp(pkt + 6, LB_MAC, 6) == 0 && pkt[34] == 0x21 && pkt[34 + 4] == 1);
                    CHECK(memcmp(pkt + 34 + 12, "secret\0\0", 8) == 0);
                }
            }
            CHECK(adverts == 1);
        }
        CHECK_RC(lbcore_vrrp_router_status(r, &st), LBCORE_RESULT_OK);
        CHECK(st.state == LBCORE_VRRP_STATE_MASTER);
        lbcore_vrrp_router_free(r);
    }
    lbcore_config_free(cfg);
    cfg = NULL;

    /* ipvsadm rules: NAT needs no MAC. */
    CHECK_RC(lbcore_config_parse_ipvsadm("rules", 5, IPVSADM_RULES, strlen(IPVSADM_RULES), &cfg, diag, sizeof diag, &n),
             LBCORE_RESULT_OK);
    CHECK_RC(lbcore_config_summary(cfg, &sum), LBCORE_RESULT_OK);
    CHECK(sum.virtual_servers == 2 && sum.real_servers == 2 && sum.vrrp_instances == 0);
    lbcore_balancer_free(lb);
    lb = new_balancer();
    CHECK_RC(lbcore_balancer_apply_config(lb, cfg, diag, sizeof diag, &n), LBCORE_RESULT_OK);
    CHECK_RC(lbcore_balancer_ipvsadm(lb, 0, text, sizeof text, &n), LBCORE_RESULT_OK);
    CHECK(strstr(text, "TCP  192.0.2.10:80 rr\n  -> 10.0.0.2:8080                Masq    3      0          0") != NULL);
    CHECK(strstr(text, "UDP  192.0.2.10:53 wlc\n  -> 10.0.0.3:53                  Masq    1      0          0") != NULL);
    lbcore_config_free(cfg);
    cfg = NULL;

    /* Warnings: the configuration loads, the warnings say what was ignored. */
    {
        const char *odd = "global_defs {\n    bogus_keyword 1\n}\n";
        CHECK_RC(lbcore_config_parse_keepalived("w.conf", 6, odd, strlen(odd), &cfg, diag, sizeof diag, &n),
                 LBCORE_RESULT_OK);
        CHECK_RC(lbcore_config_summary(cfg, &sum), LBCORE_RESULT_OK);
        CHECK(sum.warnings == 1);
        CHECK_RC(lbcore_config_warnings(cfg, NULL, 0, &n), LBCORE_RESULT_BUFFER_TOO_SMALL);
        CHECK_RC(lbcore_config_warnings(cfg, text, sizeof text, &n), LBCORE_RESULT_OK);
        CHECK(strncmp(text, "w.conf:2: warning: ", 19) == 0 && strstr(text, "bogus_keyword") != NULL);
        CHECK(n == strlen(text) && text[n - 1] == '\n');
        lbcore_config_free(cfg);
        cfg = NULL;
    }

    /* Errors name file and line; no configuration comes out. */
    {
        const char *bad = "virtual_server 172.27.9.100 81 {\n    lb_algo nonsense\n}\n";
        const char *bad_rules = "-A -t 192.0.2.10:80 -s rr\n-A -t 192.0.2.300:80\n";
        const char *inc = "include /etc/keepalived/other.conf\n";
        n = 0;
        CHECK_RC(lbcore_config_parse_keepalived("bad.conf", 8, bad, strlen(bad), &cfg, diag, sizeof diag, &n),
                 LBCORE_RESULT_CONFIG_INVALID);
        CHECK(cfg == NULL && n > 0 && strncmp(diag, "bad.conf:2: ", 12) == 0);
        lbcore_config_free(cfg); /* NULL unless the check above failed */
        cfg = NULL;
        /* A small diagnostics buffer gets the start, NUL-terminated; n is the full length. */
        {
            char small[10];
            size_t full = n;
            CHECK_RC(lbcore_config_parse_keepalived("bad.conf", 8, bad, strlen(bad), &cfg, small, sizeof small, &n),
                     LBCORE_RESULT_CONFIG_INVALID);
            CHECK(n == full && small[9] == '\0' && strncmp(small, "bad.conf:", 9) == 0);
            lbcore_config_free(cfg);
            cfg = NULL;
        }
        CHECK_RC(lbcore_config_parse_ipvsadm("rules", 5, bad_rules, strlen(bad_rules), &cfg, diag, sizeof diag, &n),
                 LBCORE_RESULT_CONFIG_INVALID);
        CHECK(cfg == NULL && strncmp(diag, "rules:2: ", 9) == 0);
        lbcore_config_free(cfg);
        cfg = NULL;
        CHECK_RC(lbcore_config_parse_keepalived("k.conf", 6, inc, strlen(inc), &cfg, diag, sizeof diag, &n),
                 LBCORE_RESULT_CONFIG_INVALID);
        CHECK(cfg == NULL && strstr(diag, "k.conf:1:") == diag);
        lbcore_config_free(cfg);
    }
    lbcore_balancer_free(lb);
}

/* ---------------------------------------------------------------------------------------- */
/* NULL handles everywhere                                                                   */

static void test_null_handles(void) {
    const lbcore_result N = LBCORE_RESULT_NULL_PARAMETER;
    lbcore_service_spec s = lbcore_service_spec_default();
    lbcore_dest_spec d = lbcore_dest_spec_default();
    lbcore_dest_id did;
    lbcore_addr a = addr4(1, 2, 3, 4);
    lbcore_frame f = frame_at(NULL, 0, 0);
    lbcore_verdict v;
    lbcore_counters c;
    lbcore_service_info si;
    lbcore_dest_info di;
    lbcore_vrrp_action act;
    lbcore_vrrp_status st;
    lbcore_vrrp_counters vc;
    lbcore_vrrp_garp g = lbcore_vrrp_garp_default();
    uint16_t id;
    uint64_t u64;
    size_t n;
    uint8_t u8;
    char text[8];

    memset(&did, 0, sizeof did);
    CHECK_RC(lbcore_balancer_config_set_conn_capacity(NULL, 1), N);
    CHECK_RC(lbcore_balancer_config_set_max_services(NULL, 1), N);
    CHECK_RC(lbcore_balancer_config_set_seed(NULL, 1), N);
    CHECK_RC(lbcore_balancer_config_set_mac(NULL, LB_MAC), N);
    CHECK_RC(lbcore_balancer_config_set_gateway_mac(NULL, LB_MAC), N);
    CHECK_RC(lbcore_balancer_config_set_tunnel_source(NULL, &a), N);
    CHECK_RC(lbcore_balancer_config_add_local_addr(NULL, &a), N);
    CHECK_RC(lbcore_balancer_config_set_local_ports(NULL, 1, 2), N);
    CHECK_RC(lbcore_balancer_config_set_timeouts(NULL, 1, 2, 3), N);
    CHECK_RC(lbcore_balancer_config_set_expire_nodest_conn(NULL, true), N);
    CHECK_RC(lbcore_balancer_config_set_expire_quiescent_template(NULL, true), N);
    CHECK_RC(lbcore_balancer_config_set_conn_reuse_mode(NULL, 1), N);
    CHECK_RC(lbcore_balancer_add_service(NULL, &s, &id), N);
    CHECK_RC(lbcore_balancer_edit_service(NULL, 0, &s), N);
    CHECK_RC(lbcore_balancer_remove_service(NULL, 0), N);
    CHECK_RC(lbcore_balancer_find_service(NULL, &s, &id), N);
    CHECK_RC(lbcore_balancer_service_ids(NULL, &id, 1, &n), N);
    CHECK_RC(lbcore_balancer_service_info(NULL, 0, &si), N);
    CHECK_RC(lbcore_balancer_add_dest(NULL, 0, &d, &did), N);
    CHECK_RC(lbcore_balancer_edit_dest(NULL, did, &d), N);
    CHECK_RC(lbcore_balancer_remove_dest(NULL, did), N);
    CHECK_RC(lbcore_balancer_find_dest(NULL, 0, &a, 1, &did), N);
    CHECK_RC(lbcore_balancer_dest_ids(NULL, 0, &did, 1, &n), N);
    CHECK_RC(lbcore_balancer_dest_info(NULL, did, &di), N);
    CHECK_RC(lbcore_balancer_process(NULL, 0, &f, &v), N);
    CHECK_RC(lbcore_balancer_process_batch(NULL, 0, &f, 1, &v), N);
    CHECK_RC(lbcore_balancer_expire(NULL, 0, 1, &n), N);
    CHECK_RC(lbcore_balancer_poll_timeout(NULL, &u64), N);
    CHECK_RC(lbcore_balancer_set_timeouts(NULL, 1, 1, 1), N);
    CHECK_RC(lbcore_balancer_timeouts(NULL, &u64, &u64, &u64), N);
    CHECK_RC(lbcore_balancer_counters(NULL, &c), N);
    CHECK_RC(lbcore_balancer_drops(NULL, 0, &u64), N);
    CHECK_RC(lbcore_balancer_ipvsadm(NULL, 0, text, sizeof text, &n), N);
    CHECK_RC(lbcore_balancer_ipvsadm_conns(NULL, 0, text, sizeof text, &n), N);
    CHECK_RC(lbcore_sched_from_name(NULL, 3, (uint32_t *)&u64), N);
    CHECK_RC(lbcore_sched_name(0, text, sizeof text, NULL), N);
    CHECK_RC(lbcore_drop_reason_name(0, text, sizeof text, NULL), N);
    CHECK_RC(lbcore_vrrp_reject_name(0, text, sizeof text, NULL), N);
    CHECK_RC(lbcore_vrrp_config_set_priority(NULL, 1), N);
    CHECK_RC(lbcore_vrrp_config_set_advert_interval(NULL, 1), N);
    CHECK_RC(lbcore_vrrp_config_add_vip(NULL, &a, 24), N);
    CHECK_RC(lbcore_vrrp_config_set_auth_pass(NULL, (const uint8_t *)"x", 1), N);
    CHECK_RC(lbcore_vrrp_config_set_start_state(NULL, 0), N);
    CHECK_RC(lbcore_vrrp_config_set_nopreempt(NULL, true), N);
    CHECK_RC(lbcore_vrrp_config_set_preempt_delay(NULL, 1), N);
    CHECK_RC(lbcore_vrrp_config_set_accept(NULL, true), N);
    CHECK_RC(lbcore_vrrp_config_add_unicast_peer(NULL, &a, NULL), N);
    CHECK_RC(lbcore_vrrp_config_set_check_unicast_src(NULL, true), N);
    CHECK_RC(lbcore_vrrp_config_add_track(NULL, 1, &u8), N);
    CHECK_RC(lbcore_vrrp_config_set_source_mac(NULL, NULL), N);
    CHECK_RC(lbcore_vrrp_config_set_down_timer_adverts(NULL, 3), N);
    CHECK_RC(lbcore_vrrp_config_set_garp(NULL, &g), N);
    CHECK_RC(lbcore_vrrp_config_set_advert_policy(NULL, true, true), N);
    CHECK_RC(lbcore_vrrp_router_new(NULL, NULL), N);
    CHECK_RC(lbcore_vrrp_router_start(NULL, 0), N);
    CHECK_RC(lbcore_vrrp_router_shutdown(NULL, 0), N);
    CHECK_RC(lbcore_vrrp_router_handle_packet(NULL, 0, NULL, 0, 0), N);
    CHECK_RC(lbcore_vrrp_router_handle_payload(NULL, 0, NULL, 0, &a, &a, -1), N);
    CHECK_RC(lbcore_vrrp_router_handle_timeout(NULL, 0), N);
    CHECK_RC(lbcore_vrrp_router_poll_timeout(NULL, &u64), N);
    CHECK_RC(lbcore_vrrp_router_set_priority_delta(NULL, 0, 1), N);
    CHECK_RC(lbcore_vrrp_router_set_track(NULL, 0, 0, true), N);
    CHECK_RC(lbcore_vrrp_router_set_interface(NULL, 0, true), N);
    CHECK_RC(lbcore_vrrp_router_status(NULL, &st), N);
    CHECK_RC(lbcore_vrrp_router_counters(NULL, &vc), N);
    CHECK_RC(lbcore_vrrp_router_poll_action(NULL, &act, NULL, 0, &n), N);
    {
        lbcore_config_counts sum;
        lbcore_vrrp_instance_info vi;
        lbcore_vrrp_track_info ti;
        lbcore_vrrp_config *vc;
        CHECK_RC(lbcore_config_warnings(NULL, text, sizeof text, &n), N);
        CHECK_RC(lbcore_config_summary(NULL, &sum), N);
        CHECK_RC(lbcore_config_set_mac(NULL, &a, LB_MAC), N);
        CHECK_RC(lbcore_config_vrrp_instance(NULL, 0, &vi), N);
        CHECK_RC(lbcore_config_vrrp_instance_name(NULL, 0, text, sizeof text, &n), N);
        CHECK_RC(lbcore_config_vrrp_instance_interface(NULL, 0, text, sizeof text, &n), N);
        CHECK_RC(lbcore_config_vrrp_track(NULL, 0, 0, &ti, text, sizeof text, &n), N);
        CHECK_RC(lbcore_config_vrrp_config_new(NULL, 0, &a, NULL, &vc, NULL, 0, NULL), N);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The pcap for the example                                                                  */

static void le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Writes `count` SYNs from distinct clients to 172.27.9.100:81, then one ARP frame. */
static int write_pcap(const char *path, int count) {
    FILE *out = fopen(path, "wb");
    uint8_t hdr[24], rec[16], frame[64];
    uint8_t client[4], vip[4];
    int i;
    if (out == NULL) {
        perror(path);
        return 1;
    }
    le32(hdr, 0xa1b2c3d4u); /* microsecond timestamps, little-endian */
    hdr[4] = 2;
    hdr[5] = 0;
    hdr[6] = 4;
    hdr[7] = 0;
    le32(hdr + 8, 0);
    le32(hdr + 12, 0);
    le32(hdr + 16, 65535);
    le32(hdr + 20, 1); /* LINKTYPE_ETHERNET */
    fwrite(hdr, 1, sizeof hdr, out);
    ip4(vip, 172, 27, 9, 100);
    for (i = 0; i <= count; i++) {
        size_t len;
        if (i < count) {
            ip4(client, 198, 18, (unsigned)(i / 200), (unsigned)(1 + i % 200));
            len = build_tcp(frame, LB_MAC, ROUTER_MAC, client, vip, 20000 + (unsigned)i, 81, TCP_SYN, (uint32_t)i);
        } else {
            memset(frame, 0, 42);
            memset(frame, 0xff, 6);
            memcpy(frame + 6, ROUTER_MAC, 6);
            put16(frame + 12, 0x0806);
            len = 42;
        }
        le32(rec, (uint32_t)(1700000000 + i / 100));
        le32(rec + 4, (uint32_t)((i % 100) * 10000));
        le32(rec + 8, (uint32_t)len);
        le32(rec + 12, (uint32_t)len);
        fwrite(rec, 1, sizeof rec, out);
        fwrite(frame, 1, len, out);
    }
    if (fclose(out) != 0) {
        perror(path);
        return 1;
    }
    printf("wrote %d frames to %s\n", count + 1, path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--write-pcap") == 0) {
        return write_pcap(argv[2], argc >= 4 ? atoi(argv[3]) : 200);
    }
    test_version();
    test_result_messages();
    test_addr_and_names();
    test_balancer_config();
    test_service_and_dest_errors();
    test_direct_routing();
    test_nat_both_ways();
    test_tunnel_and_fwmark();
    test_drops_pass_and_frame_errors();
    test_batch_matches_single();
    test_expire();
    test_vrrp_failover();
    test_vrrp_config_errors();
    test_config_errors();
    test_config_text();
    test_null_handles();
    printf("lbcore_c_tests: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
