/* pcap_balance: balance the frames of a pcap file with lbcore's C API and write the frames it
 * forwards, rewritten, to another pcap file.
 *
 *   pcap_balance [-c CONFIG] [-m IP=MAC]... IN.pcap OUT.pcap
 *
 * The balancer's MAC is 02:00:00:00:00:01. Without -c it is configured through the service
 * API as the classic LVS-DR tutorial (the same setup as the Rust quickstart):
 *
 *   ipvsadm -A -t 172.27.9.100:81 -s wrr -p 50
 *   ipvsadm -a -t 172.27.9.100:81 -r 172.27.9.91:81 -g -w 1     (MAC 02:00:00:00:00:91)
 *   ipvsadm -a -t 172.27.9.100:81 -r 172.27.9.92:81 -g -w 1     (MAC 02:00:00:00:00:92)
 *
 * With -c, from a configuration file instead: keepalived.conf when the name ends in ".conf",
 * else `ipvsadm-save` rules (examples/c/lvs-dr.conf and examples/c/lvs-dr.rules hold the same
 * tutorial). Direct routing needs each real server's MAC: give them with -m IP=MAC.
 *
 * Each packet's capture time is the balancer's clock. Frames that are forwarded go to OUT.pcap
 * with their new bytes (direct routing: the destination MAC becomes the real server's); frames
 * passed to the host or dropped are counted. At the end it prints the counts and
 * `ipvsadm -Ln --stats`.
 *
 * The pcap format is read and written by hand (classic libpcap files: either byte order,
 * microsecond or nanosecond timestamps, link types Ethernet (1) or raw IP (101)); there is no
 * libpcap dependency. Build (from the repository root, after `cargo build -p lbcore-ffi --release`):
 *
 *   gcc -std=c11 -Wall -Wextra -Werror -I ffi/include examples/c/pcap_balance.c \
 *       target/release/liblbcore_ffi.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o pcap_balance
 *
 * or, against an installed lbcore (ffi/install.sh):
 *
 *   gcc -std=c11 examples/c/pcap_balance.c $(pkg-config --cflags --libs lbcore) -o pcap_balance
 *
 * A test input: `test_lbcore --write-pcap in.pcap` (ffi/tests/c/test_lbcore.c) writes SYNs from
 * 200 clients to the VIP and one ARP frame. */
#include "lbcore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAPLEN 65535
#define LINKTYPE_ETHERNET 1
#define LINKTYPE_RAW 101

static const uint8_t LB_MAC[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t RS_MACS[2][6] = {{0x02, 0x00, 0x00, 0x00, 0x00, 0x91}, {0x02, 0x00, 0x00, 0x00, 0x00, 0x92}};

/* ---- pcap file format ------------------------------------------------------------------- */

typedef struct {
    int swapped; /* file byte order differs from ours */
    int nanos;   /* nanosecond timestamps */
    uint32_t linktype;
} pcap_info;

static uint32_t swap32(uint32_t v) {
    return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

static uint32_t rd32(const uint8_t *p, int swapped) {
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? swap32(v) : v;
}

static void wr32(uint8_t *p, uint32_t v) {
    memcpy(p, &v, 4);
}

/* Reads the 24-byte global header. */
static int pcap_read_header(FILE *in, pcap_info *info) {
    uint8_t h[24];
    uint32_t magic;
    if (fread(h, 1, sizeof h, in) != sizeof h) return -1;
    memcpy(&magic, h, 4);
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du) {
        info->swapped = 0;
    } else if (swap32(magic) == 0xa1b2c3d4u || swap32(magic) == 0xa1b23c4du) {
        info->swapped = 1;
        magic = swap32(magic);
    } else {
        return -1;
    }
    info->nanos = magic == 0xa1b23c4du;
    info->linktype = rd32(h + 20, info->swapped) & 0x0fffffffu;
    return 0;
}

/* Writes a global header in our byte order with the input's timestamp precision. */
static int pcap_write_header(FILE *out, const pcap_info *info) {
    uint8_t h[24];
    uint16_t major = 2, minor = 4;
    wr32(h, info->nanos ? 0xa1b23c4du : 0xa1b2c3d4u);
    memcpy(h + 4, &major, 2);
    memcpy(h + 6, &minor, 2);
    wr32(h + 8, 0);
    wr32(h + 12, 0);
    wr32(h + 16, SNAPLEN);
    wr32(h + 20, info->linktype);
    return fwrite(h, 1, sizeof h, out) == sizeof h ? 0 : -1;
}

/* ---- the balancer ----------------------------------------------------------------------- */

static const char *msg(lbcore_result rc) {
    static char buf[128];
    size_t n;
    if (lbcore_result_message((uint32_t)rc, buf, sizeof buf, &n) != LBCORE_RESULT_OK) return "?";
    return buf;
}

#define TRY(call)                                                                          \
    do {                                                                                   \
        lbcore_result rc_ = (call);                                                        \
        if (rc_ != LBCORE_RESULT_OK) {                                                     \
            fprintf(stderr, "pcap_balance: %s: %s (%u)\n", #call, msg(rc_), (unsigned)rc_); \
            goto fail;                                                                     \
        }                                                                                  \
    } while (0)

static lbcore_balancer *lvs_dr_tutorial(void) {
    lbcore_balancer_config *cfg = NULL;
    lbcore_balancer *lb = NULL;
    lbcore_service_spec svc = lbcore_service_spec_default();
    lbcore_dest_spec rs = lbcore_dest_spec_default();
    lbcore_dest_id id;
    uint16_t svc_id;
    int i;

    TRY(lbcore_balancer_config_new(&cfg));
    TRY(lbcore_balancer_config_set_mac(cfg, LB_MAC));
    TRY(lbcore_balancer_new(cfg, &lb));
    lbcore_balancer_config_free(cfg);
    cfg = NULL;

    TRY(lbcore_addr_parse("172.27.9.100", 12, &svc.vip));
    svc.protocol = LBCORE_PROTOCOL_TCP;
    svc.port = 81;
    svc.scheduler = LBCORE_SCHED_WRR;
    svc.persistence_timeout_ns = 50ull * 1000000000ull;
    TRY(lbcore_balancer_add_service(lb, &svc, &svc_id));
    for (i = 0; i < 2; i++) {
        TRY(lbcore_addr_parse(i == 0 ? "172.27.9.91" : "172.27.9.92", 11, &rs.addr));
        rs.port = 81;
        rs.weight = 1;
        rs.forward = LBCORE_FORWARD_DIRECT_ROUTING;
        rs.has_mac = true;
        memcpy(rs.mac, RS_MACS[i], 6);
        TRY(lbcore_balancer_add_dest(lb, svc_id, &rs, &id));
    }
    return lb;
fail:
    lbcore_balancer_config_free(cfg);
    lbcore_balancer_free(lb);
    return NULL;
}

/* Reads a whole file into a fresh buffer; *len gets its size. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long size;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        text = (char *)malloc((size_t)size + 1);
        if (text != NULL && fread(text, 1, (size_t)size, f) != (size_t)size) {
            free(text);
            text = NULL;
        }
        *len = (size_t)size;
    }
    fclose(f);
    return text;
}

/* Parses "IP=aa:bb:cc:dd:ee:ff". */
static int parse_mac_arg(const char *arg, lbcore_addr *addr, uint8_t mac[6]) {
    const char *eq = strchr(arg, '=');
    unsigned m[6];
    int i;
    if (eq == NULL || lbcore_addr_parse(arg, (size_t)(eq - arg), addr) != LBCORE_RESULT_OK) return -1;
    if (sscanf(eq + 1, "%2x:%2x:%2x:%2x:%2x:%2x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) return -1;
    for (i = 0; i < 6; i++) mac[i] = (uint8_t)m[i];
    return 0;
}

/* A balancer configured from keepalived.conf or ipvsadm rules, with the MACs given by -m. */
static lbcore_balancer *from_config(const char *path, char **mac_args, int n_macs) {
    lbcore_balancer_config *bcfg = NULL;
    lbcore_balancer *lb = NULL;
    lbcore_config *cfg = NULL;
    char diag[1024];
    size_t diag_n = 0, len = 0, plen = strlen(path);
    char *text = read_file(path, &len);
    lbcore_result rc;
    int i;

    if (text == NULL) {
        perror(path);
        return NULL;
    }
    if (plen > 5 && strcmp(path + plen - 5, ".conf") == 0)
        rc = lbcore_config_parse_keepalived(path, plen, text, len, &cfg, diag, sizeof diag, &diag_n);
    else
        rc = lbcore_config_parse_ipvsadm(path, plen, text, len, &cfg, diag, sizeof diag, &diag_n);
    free(text);
    if (rc != LBCORE_RESULT_OK) {
        fprintf(stderr, "pcap_balance: %s: %s\n%s", path, msg(rc), rc == LBCORE_RESULT_CONFIG_INVALID ? diag : "");
        return NULL;
    }
    for (i = 0; i < n_macs; i++) {
        lbcore_addr addr;
        uint8_t mac[6];
        if (parse_mac_arg(mac_args[i], &addr, mac) != 0) {
            fprintf(stderr, "pcap_balance: -m %s: expected IP=aa:bb:cc:dd:ee:ff\n", mac_args[i]);
            goto fail;
        }
        TRY(lbcore_config_set_mac(cfg, &addr, mac));
    }
    TRY(lbcore_balancer_config_new(&bcfg));
    TRY(lbcore_balancer_config_set_mac(bcfg, LB_MAC));
    TRY(lbcore_balancer_new(bcfg, &lb));
    rc = lbcore_balancer_apply_config(lb, cfg, diag, sizeof diag, &diag_n);
    if (rc != LBCORE_RESULT_OK) {
        fprintf(stderr, "pcap_balance: %s\n", diag);
        goto fail;
    }
    lbcore_balancer_config_free(bcfg);
    lbcore_config_free(cfg);
    return lb;
fail:
    lbcore_balancer_config_free(bcfg);
    lbcore_balancer_free(lb);
    lbcore_config_free(cfg);
    return NULL;
}

int main(int argc, char **argv) {
    FILE *in = NULL, *out = NULL;
    lbcore_balancer *lb = NULL;
    pcap_info info;
    uint8_t *buf = NULL;
    size_t buf_len = LBCORE_HEADROOM + SNAPLEN;
    unsigned long frames = 0, forwarded = 0, passed = 0, dropped = 0, skipped = 0;
    uint64_t next_expire = 0;
    size_t n;
    char *text = NULL;
    int status = 1;
    const char *config_path = NULL, *in_path, *out_path;
    char *mac_args[64];
    int n_macs = 0, arg = 1;

    while (arg + 1 < argc && argv[arg][0] == '-') {
        if (strcmp(argv[arg], "-c") == 0) {
            config_path = argv[arg + 1];
        } else if (strcmp(argv[arg], "-m") == 0 && n_macs < 64) {
            mac_args[n_macs++] = argv[arg + 1];
        } else {
            break;
        }
        arg += 2;
    }
    if (argc - arg != 2 || (n_macs > 0 && config_path == NULL)) {
        fprintf(stderr, "usage: %s [-c CONFIG] [-m IP=MAC]... IN.pcap OUT.pcap\n", argv[0]);
        return 2;
    }
    in_path = argv[arg];
    out_path = argv[arg + 1];
    in = fopen(in_path, "rb");
    if (in == NULL) {
        perror(in_path);
        goto fail;
    }
    if (pcap_read_header(in, &info) != 0) {
        fprintf(stderr, "pcap_balance: %s: not a pcap file\n", in_path);
        goto fail;
    }
    if (info.linktype != LINKTYPE_ETHERNET && info.linktype != LINKTYPE_RAW) {
        fprintf(stderr, "pcap_balance: link type %u not supported (Ethernet or raw IP only)\n",
                (unsigned)info.linktype);
        goto fail;
    }
    out = fopen(out_path, "wb");
    if (out == NULL) {
        perror(out_path);
        goto fail;
    }
    if (pcap_write_header(out, &info) != 0) goto write_error;
    buf = (uint8_t *)malloc(buf_len);
    lb = config_path != NULL ? from_config(config_path, mac_args, n_macs) : lvs_dr_tutorial();
    if (buf == NULL || lb == NULL) goto fail;

    for (;;) {
        uint8_t rec[16];
        uint32_t sec, frac, caplen, origlen;
        uint64_t now;
        lbcore_frame f;
        lbcore_verdict v;
        size_t got = fread(rec, 1, sizeof rec, in);
        if (got == 0) break;
        if (got != sizeof rec) {
            fprintf(stderr, "pcap_balance: truncated record header\n");
            goto fail;
        }
        sec = rd32(rec, info.swapped);
        frac = rd32(rec + 4, info.swapped);
        caplen = rd32(rec + 8, info.swapped);
        origlen = rd32(rec + 12, info.swapped);
        if (caplen > SNAPLEN || fread(buf + LBCORE_HEADROOM, 1, caplen, in) != caplen) {
            fprintf(stderr, "pcap_balance: bad or truncated record %lu\n", frames + 1);
            goto fail;
        }
        frames++;
        if (caplen != origlen) { /* a cut-off capture cannot be forwarded faithfully */
            skipped++;
            continue;
        }
        now = (uint64_t)sec * 1000000000ull + (uint64_t)frac * (info.nanos ? 1u : 1000u);

        f.buf = buf;
        f.buf_len = buf_len;
        f.start = LBCORE_HEADROOM;
        f.len = caplen;
        f.link = info.linktype == LINKTYPE_ETHERNET ? LBCORE_LINK_ETHERNET : LBCORE_LINK_IP;
        f.fwmark = 0;
        TRY(lbcore_balancer_process(lb, now, &f, &v));
        switch (v.kind) {
            case LBCORE_VERDICT_KIND_FORWARD:
                if ((v.link == LBCORE_LINK_ETHERNET) != (info.linktype == LINKTYPE_ETHERNET)) {
                    skipped++; /* the output's link type differs from the file's */
                    break;
                }
                /* The output file is in our byte order. */
                wr32(rec, sec);
                wr32(rec + 4, frac);
                wr32(rec + 8, (uint32_t)f.len);
                wr32(rec + 12, (uint32_t)f.len);
                if (fwrite(rec, 1, sizeof rec, out) != sizeof rec || fwrite(buf + f.start, 1, f.len, out) != f.len)
                    goto write_error;
                forwarded++;
                break;
            case LBCORE_VERDICT_KIND_PASS:
                passed++;
                break;
            case LBCORE_VERDICT_KIND_DROP: {
                char reason[64];
                if (lbcore_drop_reason_name(v.drop_reason, reason, sizeof reason, &n) != LBCORE_RESULT_OK)
                    strcpy(reason, "?");
                fprintf(stderr, "frame %lu dropped: %s\n", frames, reason);
                dropped++;
                break;
            }
            default:
                break;
        }
        /* Timer work, as a driver would do it: at most every poll_timeout. */
        if (now >= next_expire) {
            size_t removed;
            TRY(lbcore_balancer_expire(lb, now, 1024, &removed));
            TRY(lbcore_balancer_poll_timeout(lb, &next_expire));
        }
    }
    if (fclose(out) != 0) {
        out = NULL;
        goto write_error;
    }
    out = NULL;

    printf("%lu frames: %lu forwarded, %lu passed, %lu dropped, %lu skipped\n", frames, forwarded, passed, dropped,
           skipped);
    /* ipvsadm -Ln --stats, sized with a (NULL, 0) query first. */
    if (lbcore_balancer_ipvsadm(lb, LBCORE_IPVSADM_STATS, NULL, 0, &n) != LBCORE_RESULT_BUFFER_TOO_SMALL) goto fail;
    text = (char *)malloc(n);
    if (text == NULL) goto fail;
    TRY(lbcore_balancer_ipvsadm(lb, LBCORE_IPVSADM_STATS, text, n, &n));
    fputs(text, stdout);
    status = 0;
    goto done;

write_error:
    perror(out_path);
fail:
    status = 1;
done:
    free(text);
    free(buf);
    lbcore_balancer_free(lb);
    if (in != NULL) fclose(in);
    if (out != NULL) fclose(out);
    return status;
}
