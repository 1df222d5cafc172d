// SPDX-License-Identifier: GPL-2.0-only
/*
 * quadrant_ffa_probe: a client of Linux's FF-A bus (drivers/firmware/arm_ffa)
 * for Quadrant's integration tests.  Bound to the UUIDs xtask passes in
 * QUADRANT_SP_UUIDS (our secure partitions), it makes for each SP one
 * FFA_MSG_SEND_DIRECT_REQ round trip and, for the SPs named by module
 * parameters, a memory share or lend that the SP retrieves, writes and
 * relinquishes, followed by the reclaim; and times a loop of direct
 * requests for `cargo xtask bench`.  Under pKVM every one of these calls
 * goes through pKVM's FF-A proxy (arch/arm64/kvm/hyp/nvhe/ffa.c).
 *
 * Each result is one console line "quadrant-ffa-probe: ..." that
 * ci/xtask/src/tests/pkvm.rs reads.  Built by xtask without kbuild
 * (ci/xtask/src/kmod.rs): this file carries its own module record.
 */
#include <linux/module.h>
#include <linux/arm_ffa.h>
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/ktime.h>
#include <linux/slab.h>
#include <linux/sort.h>

static ushort share_id;
module_param(share_id, ushort, 0444);
MODULE_PARM_DESC(share_id, "SP that gets a shared page (it must answer command 4: retrieve, write, relinquish)");
static ushort lend_id;
module_param(lend_id, ushort, 0444);
MODULE_PARM_DESC(lend_id, "SP that gets a lent page (command 4 as well)");
static ushort big_id;
module_param(big_id, ushort, 0444);
MODULE_PARM_DESC(big_id, "SP that gets big_pages pages shared, one constituent each, then reclaimed (no retrieval)");
static uint big_pages;
module_param(big_pages, uint, 0444);
MODULE_PARM_DESC(big_pages, "pages of the big share: past ~250 its descriptor takes more than one 4 KiB fragment");
static ushort own_id;
module_param(own_id, ushort, 0444);
MODULE_PARM_DESC(own_id, "this partition's FF-A id, the sender an SP names when it retrieves (0 without a hypervisor; a VM's id under ns-hyp)");
static ushort bench_id;
module_param(bench_id, ushort, 0444);
MODULE_PARM_DESC(bench_id, "SP whose direct requests are timed");
static uint bench_iters;
module_param(bench_iters, uint, 0444);
MODULE_PARM_DESC(bench_iters, "direct requests in the timed loop (0: none)");

static ushort notify_id;
module_param(notify_id, ushort, 0444);
MODULE_PARM_DESC(notify_id, "SP asked to notify this partition (it must answer command 16: make an FF-A call), through the driver's notifier ops");

/*
 * The notification the SP sets (any of the 64 would do), mp's command 16
 * (make FF-A call x4 with w1 = x5, w2 = x6, w3/w4 = x7; sps/mp) and
 * FFA_NOTIFICATION_SET's id and FFA_SUCCESS_32's (DEN0077 v1.2).
 */
#define NOTIFY_BIT 6
#define SP_CMD_FFA 16
#define FFA_NOTIFICATION_SET_ID 0x84000081UL
#define FFA_SUCCESS_32_ID 0x84000061UL

/* The SPs' command that retrieves a handle (sps/runtime memory::command). */
#define SP_CMD_MEM 4
#define PAGE_MAGIC 0x5155414452414e54ULL	/* "QUADRANT" */
#define SP_WRITES 0x0123456789abcdefULL

static inline u64 counter(void)
{
	u64 t;

	asm volatile("isb; mrs %0, cntvct_el0" : "=r"(t) : : "memory");
	return t;
}

static int direct(struct ffa_device *dev, struct ffa_send_direct_data *d)
{
	return dev->ops->msg_ops->sync_send_receive(dev, d);
}

static void round_trip(struct ffa_device *dev)
{
	struct ffa_send_direct_data d = { 0, 0x51, 0x52, 0x53, 0x54 };
	int ret = direct(dev, &d);

	/* Command 0: echo, isolation and irq echo it, mp answers [ctx, count, x5, x6, x7]. */
	if (ret || d.data2 != 0x52 || d.data3 != 0x53 || d.data4 != 0x54)
		pr_info("quadrant-ffa-probe: %#06x direct: FAIL ret %d x3..x7 %lx %lx %lx %lx %lx\n",
			dev->vm_id, ret, d.data0, d.data1, d.data2, d.data3, d.data4);
	else
		pr_info("quadrant-ffa-probe: %#06x direct: ok x3..x7 %lx %lx %lx %lx %lx\n",
			dev->vm_id, d.data0, d.data1, d.data2, d.data3, d.data4);
}

/* Share (lend = false) or lend one page to dev, have it retrieve, check and reclaim. */
static void memory(struct ffa_device *dev, bool lend)
{
	const char *op = lend ? "lend" : "share";
	struct ffa_mem_region_attributes attr = { .receiver = dev->vm_id, .attrs = FFA_MEM_RW };
	struct ffa_mem_ops_args args = { .use_txbuf = true, .nattrs = 1, .attrs = &attr };
	struct ffa_send_direct_data d;
	struct scatterlist sg;
	struct page *page;
	u64 *p, after;
	int ret, rec;

	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!page) {
		pr_info("quadrant-ffa-probe: %#06x %s: FAIL no page\n", dev->vm_id, op);
		return;
	}
	p = page_address(page);
	*p = PAGE_MAGIC;
	sg_init_table(&sg, 1);
	sg_set_page(&sg, page, PAGE_SIZE, 0);
	args.sg = &sg;
	ret = lend ? dev->ops->mem_ops->memory_lend(&args) : dev->ops->mem_ops->memory_share(&args);
	if (ret) {
		pr_info("quadrant-ffa-probe: %#06x %s: FAIL memory_%s %d\n", dev->vm_id, op, op, ret);
		__free_page(page);
		return;
	}
	d = (struct ffa_send_direct_data){ SP_CMD_MEM, args.g_handle, own_id, 0, SP_WRITES };
	ret = direct(dev, &d);
	rec = dev->ops->mem_ops->memory_reclaim(args.g_handle, 0);
	after = READ_ONCE(*p);
	if (ret || d.data0 || d.data1 != PAGE_MAGIC || after != SP_WRITES || rec)
		pr_info("quadrant-ffa-probe: %#06x %s: FAIL handle %#llx req %d x3 %lx read %lx page %llx reclaim %d\n",
			dev->vm_id, op, args.g_handle, ret, d.data0, d.data1, after, rec);
	else
		pr_info("quadrant-ffa-probe: %#06x %s: ok handle %#llx sp read %lx, wrote %llx; reclaimed\n",
			dev->vm_id, op, args.g_handle, d.data1, after);
	/* A page we could not reclaim is the SP's still: leak it. */
	if (!rec)
		__free_page(page);
}

/*
 * A share whose descriptor and retrieve response do not fit one 4 KiB
 * buffer: sent in fragments (FFA_MEM_FRAG_TX), and under pKVM the reclaim's
 * hypervisor retrieve request is answered in fragments (FFA_MEM_FRAG_RX).
 */
static void big_share(struct ffa_device *dev)
{
	struct ffa_mem_region_attributes attr = { .receiver = dev->vm_id, .attrs = FFA_MEM_RW };
	struct ffa_mem_ops_args args = { .use_txbuf = true, .nattrs = 1, .attrs = &attr };
	struct sg_table table;
	struct scatterlist *sg;
	struct page **pages;
	uint i, got = 0;
	int ret = -1, rec = -1;

	pages = kcalloc(big_pages, sizeof(*pages), GFP_KERNEL);
	if (!pages || sg_alloc_table(&table, big_pages, GFP_KERNEL)) {
		pr_info("quadrant-ffa-probe: %#06x big share: FAIL no memory\n", dev->vm_id);
		kfree(pages);
		return;
	}
	/* Every other page, so that no two constituents are adjacent. */
	for_each_sg(table.sgl, sg, big_pages, i) {
		pages[i] = alloc_pages(GFP_KERNEL | __GFP_ZERO, 1);
		if (!pages[i])
			break;
		got++;
		sg_set_page(sg, pages[i], PAGE_SIZE, 0);
	}
	if (got < big_pages) {
		pr_info("quadrant-ffa-probe: %#06x big share: FAIL no pages\n", dev->vm_id);
		goto out;
	}
	args.sg = table.sgl;
	ret = dev->ops->mem_ops->memory_share(&args);
	if (!ret)
		rec = dev->ops->mem_ops->memory_reclaim(args.g_handle, 0);
	if (ret || rec)
		pr_info("quadrant-ffa-probe: %#06x big share: FAIL %u pages share %d reclaim %d\n", dev->vm_id, big_pages, ret, rec);
	else
		pr_info("quadrant-ffa-probe: %#06x big share: ok %u pages handle %#llx; reclaimed\n", dev->vm_id, big_pages, args.g_handle);
out:
	/* Pages we could not reclaim are the SP's still: leak them. */
	if (!ret && rec)
		got = 0;
	for (i = 0; i < got; i++)
		__free_pages(pages[i], 1);
	sg_free_table(&table);
	kfree(pages);
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/*
 * bench_iters direct requests, each timed with CNTVCT.  The median per call
 * is the figure: a call that a timer tick or the console's printing thread
 * interrupted counts in the total but not in the median (under QEMU's
 * -icount the counter advances with every instruction executed, theirs too).
 */
static void bench(struct ffa_device *dev)
{
	struct ffa_send_direct_data d;
	u64 t, total = 0, n0, n1, *each;
	uint i, bad = 0;

	each = kvmalloc_array(bench_iters, sizeof(*each), GFP_KERNEL);
	if (!each) {
		pr_info("quadrant-ffa-probe: bench direct_req %#06x: FAIL no memory\n", dev->vm_id);
		return;
	}
	/* Warm-up calls outside the timed loop (spmc logs its first 64 requests). */
	for (i = 0; i < 100; i++) {
		d = (struct ffa_send_direct_data){ 0, 1, 2, 3, 4 };
		direct(dev, &d);
	}
	n0 = ktime_get_ns();
	for (i = 0; i < bench_iters; i++) {
		d = (struct ffa_send_direct_data){ 0, i, 2, 3, 4 };
		t = counter();
		if (direct(dev, &d))
			bad++;
		each[i] = counter() - t;
		total += each[i];
	}
	n1 = ktime_get_ns();
	sort(each, bench_iters, sizeof(*each), cmp_u64, NULL);
	pr_info("quadrant-ffa-probe: bench direct_req %#06x %u calls median %llu min %llu total %llu ticks %llu ns %u failed\n",
		dev->vm_id, bench_iters, each[bench_iters / 2], each[0], total, n1 - n0, bad);
	kvfree(each);
}

static DECLARE_COMPLETION(notified);

static void notified_cb(int id, void *data)
{
	if (id == NOTIFY_BIT)
		complete(&notified);
}

/*
 * The driver binds NOTIFY_BIT to the SP (FFA_NOTIFICATION_BIND); the SP sets
 * it (FFA_NOTIFICATION_SET, asked by a direct request); the driver's
 * notification interrupt handler fetches it (FFA_NOTIFICATION_GET) and calls
 * back.  Under ns-hyp the interrupt is the NPI ns-hyp pends from the SPMC's
 * Schedule Receiver Interrupt; without a hypervisor, the SRI itself.
 */
static void notification(struct ffa_device *dev)
{
	const struct ffa_notifier_ops *n = dev->ops->notifier_ops;
	struct ffa_send_direct_data d = { SP_CMD_FFA, FFA_NOTIFICATION_SET_ID,
					  (unsigned long)dev->vm_id << 16 | own_id, 0, 1UL << NOTIFY_BIT };
	unsigned long left;
	int ret;

	reinit_completion(&notified);
	ret = n->notify_request(dev, false, notified_cb, NULL, NOTIFY_BIT);
	if (ret) {
		pr_info("quadrant-ffa-probe: %#06x notification: FAIL notify_request %d\n", dev->vm_id, ret);
		return;
	}
	ret = direct(dev, &d);
	left = wait_for_completion_timeout(&notified, msecs_to_jiffies(10000));
	if (ret || d.data0 != FFA_SUCCESS_32_ID || !left)
		pr_info("quadrant-ffa-probe: %#06x notification: FAIL direct %d set x0 %lx %s\n",
			dev->vm_id, ret, d.data0, left ? "called back" : "no callback in 10 s");
	else
		pr_info("quadrant-ffa-probe: %#06x notification: ok bit %d set by the SP, called back\n",
			dev->vm_id, NOTIFY_BIT);
	ret = n->notify_relinquish(dev, NOTIFY_BIT);
	if (ret)
		pr_info("quadrant-ffa-probe: %#06x notification: FAIL relinquish %d\n", dev->vm_id, ret);
}

static int probe(struct ffa_device *dev)
{
	round_trip(dev);
	if (share_id && dev->vm_id == share_id)
		memory(dev, false);
	if (lend_id && dev->vm_id == lend_id)
		memory(dev, true);
	if (big_pages && dev->vm_id == big_id)
		big_share(dev);
	if (notify_id && dev->vm_id == notify_id)
		notification(dev);
	if (bench_iters && dev->vm_id == bench_id)
		bench(dev);
	return 0;
}

static void remove(struct ffa_device *dev)
{
}

static const struct ffa_device_id ids[] = {
	QUADRANT_SP_UUIDS
	{}
};

static struct ffa_driver quadrant_ffa_probe = {
	.name = "quadrant_ffa_probe",
	.probe = probe,
	.remove = remove,
	.id_table = ids,
};
module_ffa_driver(quadrant_ffa_probe);

MODULE_DESCRIPTION("Quadrant: FF-A round trips from Linux to our SPs");
MODULE_LICENSE("GPL");

#ifndef QUADRANT_KBUILD
/*
 * What kbuild's modpost would generate for this module (its .mod.c): the
 * version magic the kernel compares on load and the module record.  Built
 * with kbuild instead (ccflags-y += -DQUADRANT_KBUILD), modpost makes them.
 */
#define INCLUDE_VERMAGIC
#include <linux/vermagic.h>
MODULE_INFO(vermagic, VERMAGIC_STRING);
MODULE_INFO(name, KBUILD_MODNAME);

__visible struct module __this_module __section(".gnu.linkonce.this_module") = {
	.name = KBUILD_MODNAME,
	.init = init_module,
	.exit = cleanup_module,
	.arch = MODULE_ARCH_INIT,
};
#endif
