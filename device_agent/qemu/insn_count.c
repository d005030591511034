/*
 * lab's instruction-counting plugin for QEMU user-mode emulation (plugin API version 1, QEMU 7.2+).
 *
 * Counts the guest instructions executed between two marker syscalls of the device agent's runner
 * (device_agent/qemu/counter.py) and writes each region's count, as one decimal line, to the file
 * descriptor the marker names. A marker is posix_fadvise(fd, MAGIC, 0, POSIX_FADV_NORMAL): the
 * plugin sees it before the syscall runs (which then does nothing harmful), and in user mode the
 * guest's file descriptors are the host's, so the plugin can write to the runner's counts file.
 *
 * Counting is inline (QEMU adds each translation block's instruction count to a counter as the
 * block starts), the cheapest exact method: a syscall instruction always ends its block, so a
 * region's count does not depend on timing. With several guest threads the one counter sums all
 * threads and concurrent adds may race; the runner counts exactly with one thread.
 *
 * Per-block counts (the runner's --enable_op_profiling): after a "kernels on" marker, every block
 * translated from then on also gets a counter of its own (its start address and the instructions
 * it executed). A "reset" marker zeroes them; a "dump" marker writes one "ADDRESS INSNS" line
 * (hex address, decimal count) per block that ran since, to the descriptor it names. The runner
 * maps the addresses to the functions of LiteRT's library (device_agent/qemu/kernels.py). Blocks
 * translated before the "on" marker (the Python interpreter's start-up) are never counted per
 * block, so a run without op profiling pays nothing for them.
 *
 * Debian ships no plugin headers, so this file declares the few API functions it uses, as
 * include/qemu/qemu-plugin.h of QEMU 7.2 defines them. Build: gcc -shared -fPIC -O2 -o X.so this.c
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;

typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    /* a union follows in QEMU's definition; this plugin never reads it */
} qemu_info_t;

struct qemu_plugin_tb;

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
};

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                                              uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_outs(const char *string);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* "LAB_STAR", "LAB_STOP", "LAB_KRON", "LAB_KRST", "LAB_KDMP": keep in step with device_agent/qemu/counter.py */
#define MAGIC_START UINT64_C(0x4C41425F53544152)
#define MAGIC_STOP UINT64_C(0x4C41425F53544F50)
#define MAGIC_KERNELS_ON UINT64_C(0x4C41425F4B524F4E)
#define MAGIC_KERNELS_RESET UINT64_C(0x4C41425F4B525354)
#define MAGIC_KERNELS_DUMP UINT64_C(0x4C41425F4B444D50)

static uint64_t executed;      /* guest instructions since the start */
static uint64_t region_start;  /* `executed` at the last start marker */
static bool in_region;

struct block {
    uint64_t vaddr;
    uint64_t insns; /* executed since the last reset */
    struct block *next;
};

static bool kernels_on;
static struct block *blocks; /* every block translated since "kernels on", newest first */
static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    if (!kernels_on) {
        return;
    }
    struct block *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return;
    }
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->insns, n);
    pthread_mutex_lock(&blocks_lock);
    b->next = blocks;
    blocks = b;
    pthread_mutex_unlock(&blocks_lock);
}

static void dump_blocks(int fd)
{
    char buf[1 << 16];
    size_t used = 0;
    bool failed = false;
    pthread_mutex_lock(&blocks_lock);
    for (struct block *b = blocks; b != NULL; b = b->next) {
        if (b->insns == 0) {
            continue;
        }
        if (sizeof buf - used < 64) {
            failed |= write(fd, buf, used) != (ssize_t)used;
            used = 0;
        }
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%" PRIx64 " %" PRIu64 "\n", b->vaddr, b->insns);
    }
    pthread_mutex_unlock(&blocks_lock);
    failed |= (used && write(fd, buf, used) != (ssize_t)used) || write(fd, "end\n", 4) != 4;
    if (failed) {
        qemu_plugin_outs("lab insn_count: could not write the block counts to the runner's file\n");
    }
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id, (void)vcpu_index, (void)num, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (a3 != 0) {
        return; /* markers pass len=0 */
    }
    if (a2 == MAGIC_KERNELS_ON) {
        kernels_on = true;
    } else if (a2 == MAGIC_KERNELS_RESET) {
        pthread_mutex_lock(&blocks_lock);
        for (struct block *b = blocks; b != NULL; b = b->next) {
            b->insns = 0;
        }
        pthread_mutex_unlock(&blocks_lock);
    } else if (a2 == MAGIC_KERNELS_DUMP) {
        dump_blocks((int)a1);
    } else if (a2 == MAGIC_START) {
        region_start = executed;
        in_region = true;
    } else if (a2 == MAGIC_STOP && in_region) {
        char line[32];
        int n = snprintf(line, sizeof line, "%" PRIu64 "\n", executed - region_start);
        in_region = false;
        if (write((int)a1, line, (size_t)n) != n) {
            qemu_plugin_outs("lab insn_count: could not write a count to the runner's file\n");
        }
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)argv;
    if (info->system_emulation) {
        qemu_plugin_outs("lab insn_count: user-mode emulation only (qemu-aarch64, qemu-x86_64)\n");
        return 1;
    }
    if (argc != 0) {
        qemu_plugin_outs("lab insn_count: takes no arguments\n");
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    return 0;
}
