/* SPDX-License-Identifier: MIT */
/*
 * DESIGN: processes that share a cgroup.  Every libshrinker process measures
 * the same cgroup usage against the same limit, so without knowing of each
 * other each asks its caches for the whole deficit, and about twice what is
 * needed is freed; and growth is first come, first served between them.
 * Nothing here needs a daemon: each process publishes its resident size in
 * a slot of a small shared file, one per user and binding cgroup
 * (/dev/shm/libshrinker-<uid>-<dev>-<inode of the cgroup directory>), and
 * reads the others'.  A process then takes its part of a deficit in
 * proportion to its share of the peers' resident memory (on hard pressure
 * at least what brings the headroom back to the hard watermark, which
 * nobody else may be quick enough to free).  The processes above an equal
 * share pay first, in proportion to their excess, so that the others are
 * not made to free what they are owed.  A process below an equal
 * share of it may grow through the band that the others keep free to a
 * quarter of the soft watermark below it, and is not held back after a
 * shrink: the deficit it makes is the others' to pay, and their shrinks are
 * what make its room (room.c, shrinker__room_left()).  Each also
 * publishes the soft watermark it sized for its view of the growth, and
 * all use the largest that a peer published within the last second
 * (measure.c): with a watermark each, one process freed its parts of
 * deficits that the others did not see, in small requests every few
 * milliseconds, while another grew back into what it freed.  And each
 * publishes what it is freeing until its request ends: the usage shows a
 * peer's part only once its memory is back, and a process that measured
 * in between took its part of the same deficit again (two processes gave
 * 16-23 MiB for a deficit that one alone paid with 9).  So is what it
 * gave back, and when: a measurement that began before the request still
 * holds all of it, one that began while it ran perhaps some (counted as
 * under way).
 * A request counts for half a second at most, so that a peer that stops
 * in its callbacks is not waited for.  And each publishes when it last
 * asked for room to grow: the processes that did within the last second
 * share the room (room.c), each its part, so that what they are granted
 * together before their next measurements is the room once, not once
 * for each of them.
 * Processes that do not use the library are not peers: their part of a
 * deficit is ours to free.
 *
 * The table holds 64 slots at first (the layout version 1 shares) and
 * grows by 64 as processes come, up to 4096: a new process past the slots
 * ever claimed moves their high-water mark, grows the file with
 * fallocate() (which never shrinks it, whoever grows it at the same time)
 * and maps it anew; the others map the new slots at their next update.
 * An update looks at the slots up to the mark only, and asks whether a
 * peer lives (kill(pid, 0)) only when it has been silent for a while.
 *
 * The file is created 0600 with O_NOFOLLOW and used only if it is a
 * regular file of ours with no other permission bits; anything else (no
 * /dev/shm, another user's file, a symlink) means no peers, the behaviour
 * of a process alone.  Figures read from it are clamped, never trusted.
 * A slot is claimed by compare-and-swap of its pid and is taken over when
 * its process is gone or has not written for a minute.  The last process
 * to leave (at exit or dlclose()) removes the file, so that cgroups come
 * and go without leaving one each in /dev/shm; the tables of cgroups whose
 * processes were all killed are removed by the next process that creates
 * a table (sweep()).  A process that attached to a table just as it was
 * removed finds out at its next update and attaches anew.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "2-kernel/peers.h"
#include "internal.h"

/* The table: a header and FIRST_SLOTS slots (the layout of version 1,
 * whose processes still share it), then chunks of CHUNK_SLOTS appended as
 * more processes come, up to MAX_SLOTS. */
#define FIRST_SLOTS 64
#define CHUNK_SLOTS 64
#define MAX_SLOTS 4096
#define STALE_NS 60000000000ull  /* a slot not written for this long is free */
#define ALIVE_NS 250000000ull    /* a peer that wrote this recently lives */
#define RECENT_NS 30000000000ull /* a peer counts if it wrote this recently */
#define SOFT_RECENT_NS 1000000000ull /* its watermark, if it wrote this recently */
#define PAYING_RECENT_NS 500000000ull /* what it pays, if it began this recently */
#define GROWING_RECENT_NS 1000000000ull /* growing, if it asked this recently */
#define SWEEP_MAX 32   /* other tables looked at when we create one */
#define SWEEP_AGE_S 60 /* and removed only if older than this, seconds */

struct slot {
	_Atomic int32_t pid;
	uint32_t pad;
	_Atomic uint64_t rss, written_ns;
	_Atomic uint64_t soft;  /* its own soft watermark; 0 (older versions,
				   which left it spare): not known */
	/* Its last request: what it frees (or, once paid_ns is set, gave
	 * back), since when, and when it ended (0: under way).  0 (older
	 * versions, which left them spare): none. */
	_Atomic uint64_t paying, paying_ns, paid_ns;
	_Atomic uint64_t asked_ns; /* when it last asked for room to grow; 0
				      (older versions, which left it spare):
				      not known, not growing */
};

struct table {
	uint32_t magic, version;
	/* Slots ever claimed, the high-water mark: scans stop there (0 in a
	 * table of version 1, whose processes claim only the first 64). */
	_Atomic uint32_t used;
	uint32_t pad;
	uint64_t spare[6];
	struct slot slot[FIRST_SLOTS];
	/* ... and, when the file is larger, more slots after these. */
};

#define TABLE_BYTES(slots) (sizeof(struct table) + \
			    ((size_t)(slots) - FIRST_SLOTS) * sizeof(struct slot))

#define MAGIC 0x6b6e7273u /* "srnk" */

/* The table this process is attached to, and its slot in it (mon lock
 * held: every function here runs under it, from measure.c or monitor.c,
 * or after fork() in the only thread). */
static struct {
	struct table *table;  /* mapped, NULL if none */
	unsigned slots;       /* how many slots the mapping holds */
	int fd;               /* the file, kept open to map more of it */
	dev_t dev;            /* the cgroup directory it is for */
	ino_t ino;
	int slot;             /* ours, -1 if none */
	pid_t pid;            /* who claimed it (fork() gives a new one) */
	char path[96];        /* the file, to remove when the last one leaves */
	dev_t file_dev;       /* and which file it was */
	ino_t file_ino;
} attached = { .slot = -1, .fd = -1 };

/* Whether a file of size bytes is a table: the first slots and whole
 * slots after them, at most MAX_SLOTS; and how many slots it holds. */
static bool table_size_ok(off_t size)
{
	return size >= (off_t)TABLE_BYTES(FIRST_SLOTS) && size <= (off_t)TABLE_BYTES(MAX_SLOTS) &&
	       ((size_t)size - TABLE_BYTES(FIRST_SLOTS)) % sizeof(struct slot) == 0;
}

static unsigned table_slots(off_t size)
{
	return FIRST_SLOTS + (unsigned)(((size_t)size - TABLE_BYTES(FIRST_SLOTS)) /
					sizeof(struct slot));
}

/* Slot i of table t (the first 64 in struct table, the others after it in
 * the file), and of the table we are attached to (i < attached.slots). */
static struct slot *slot_of(const struct table *t, unsigned i)
{
	return (struct slot *)((const char *)t + offsetof(struct table, slot) +
			       (size_t)i * sizeof(struct slot));
}

static struct slot *slot_at(unsigned i)
{
	return slot_of(attached.table, i);
}

/* How many slots to look at: those ever claimed, and at least the first
 * 64 (a process of version 1 may hold any of them), within our mapping. */
static unsigned slots_in_use(void)
{
	unsigned used = atomic_load(&attached.table->used);

	if (used < FIRST_SLOTS)
		used = FIRST_SLOTS;
	return used < attached.slots ? used : attached.slots;
}

static void unmap(void)
{
	if (attached.table)
		munmap(attached.table, TABLE_BYTES(attached.slots));
	if (attached.fd >= 0)
		close(attached.fd);
	attached.table = NULL;
	attached.slots = 0;
	attached.fd = -1;
	attached.slot = -1;
}

/* Map the file as it is now, if it holds more slots than our mapping (a
 * process grew it): false if it could not be. */
static bool map_more(void)
{
	struct stat st;
	unsigned slots;
	void *map;

	if (fstat(attached.fd, &st) < 0 || !table_size_ok(st.st_size))
		return false;
	slots = table_slots(st.st_size);
	if (slots <= attached.slots)
		return true;
	map = mmap(NULL, TABLE_BYTES(slots), PROT_READ | PROT_WRITE, MAP_SHARED, attached.fd, 0);
	if (map == MAP_FAILED)
		return false;
	munmap(attached.table, TABLE_BYTES(attached.slots));
	attached.table = map;
	attached.slots = slots;
	return true;
}

/* Whether no live process but us holds a slot. */
static bool alone_in_table(void)
{
	int i, saved = errno;
	bool alone = true;

	for (i = 0; i < (int)attached.slots && alone; i++) {
		int32_t pid = atomic_load(&slot_at((unsigned)i)->pid);

		if (pid > 0 && pid != (int32_t)getpid() &&
		    !(kill(pid, 0) < 0 && errno == ESRCH))
			alone = false;
	}
	errno = saved;
	return alone;
}

static void detach(void)
{
	if (attached.table) {
		if (attached.slot >= 0 && attached.pid == getpid()) {
			int32_t me = (int32_t)attached.pid;

			atomic_store(&slot_at((unsigned)attached.slot)->rss, 0);
			atomic_compare_exchange_strong(&slot_at((unsigned)attached.slot)->pid, &me, 0);
			/* The last one out removes the file: one per cgroup
			 * ever limited would pile up in /dev/shm.  (One that
			 * attaches meanwhile keeps an unlinked table and acts
			 * alone until its cgroup is looked at anew: safe.) */
			if (alone_in_table())
				unlink(attached.path);
		}
	}
	unmap();
}

/* Whether no process of table t is alive: every slot free or its process
 * gone.  A live process that is only silent keeps its table. */
static bool table_dead(const struct table *t, unsigned slots)
{
	int i, saved = errno;
	bool dead = t->magic == MAGIC;

	for (i = 0; i < (int)slots && dead; i++) {
		int32_t pid = atomic_load(&slot_of(t, (unsigned)i)->pid);

		if (pid > 0 && !(kill(pid, 0) < 0 && errno == ESRCH))
			dead = false;
	}
	errno = saved;
	return dead;
}

/* Tables whose processes were all killed.  One that is SIGKILLed or
 * OOM-killed, or crashes, cannot remove its table, and with the last of a
 * cgroup's processes gone nobody does: make bench left 1378 of them in
 * /dev/shm here (4 KiB of memory each), one per cgroup it made.  When we
 * create a table we look at up to SWEEP_MAX other tables of our user and
 * remove those last modified more than a minute ago (so not one being set
 * up: writes through the mapping leave the time as ftruncate() set it)
 * whose every slot is free or held by a process that is gone. */
static void sweep(const char *mine)
{
	/* getdents64() into the stack, not opendir(): the measuring path
	 * must not allocate (tests/test-nomalloc.c). */
	char prefix[32], buf[2048];
	struct timespec rt;
	unsigned looked = 0;
	size_t len;
	ssize_t n;
	int dfd;

	len = (size_t)snprintf(prefix, sizeof(prefix), "libshrinker-%u-", (unsigned)geteuid());
	dfd = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &rt);
	while (looked < SWEEP_MAX && (n = getdents64(dfd, buf, sizeof(buf))) > 0) {
		ssize_t off;

		for (off = 0; off < n && looked < SWEEP_MAX;) {
			const struct dirent64 *e = (const struct dirent64 *)(buf + off);
			struct stat st;
			void *map;
			int fd;

			off += e->d_reclen;
			if (strncmp(e->d_name, prefix, len) != 0 || strcmp(e->d_name, mine) == 0)
				continue;
			looked++;
			fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
			if (fd < 0)
				continue;
			if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
			    !(st.st_mode & 077) && table_size_ok(st.st_size) &&
			    rt.tv_sec - st.st_mtim.tv_sec > SWEEP_AGE_S) {
				map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
				if (map != MAP_FAILED) {
					if (table_dead(map, table_slots(st.st_size)) &&
					    unlinkat(dfd, e->d_name, 0) == 0)
						shrinker__debug("peers: removed %s, whose "
								"processes are all gone", e->d_name);
					munmap(map, (size_t)st.st_size);
				}
			}
			close(fd);
		}
	}
	close(dfd);
}

static void attach(const struct stat *cg)
{
	char path[96];
	struct stat st;
	void *map;
	int fd, saved = errno;
	bool created;

	snprintf(path, sizeof(path), "/dev/shm/libshrinker-%u-%llx-%llx",
		 (unsigned)geteuid(), (unsigned long long)cg->st_dev,
		 (unsigned long long)cg->st_ino);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) || (st.st_size != 0 && !table_size_ok(st.st_size)) ||
	    ((created = st.st_size == 0) && ftruncate(fd, sizeof(struct table)) < 0)) {
		shrinker__debug("peers: not using %s (not a private file of ours)", path);
		close(fd);
		goto out;
	}
	if (created)
		st.st_size = sizeof(struct table);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		close(fd);
		goto out;
	}
	attached.table = map;
	attached.slots = table_slots(st.st_size);
	attached.fd = fd;
	memcpy(attached.path, path, sizeof(attached.path));
	attached.file_dev = st.st_dev;
	attached.file_ino = st.st_ino;
	attached.dev = cg->st_dev;
	attached.ino = cg->st_ino;
	if (attached.table->magic != MAGIC) {
		attached.table->version = 1;
		attached.table->magic = MAGIC;
	}
	if (created)
		sweep(strrchr(path, '/') + 1);
out:
	errno = saved;
}

/* A slot past those ever claimed: the high-water mark moved by one, the
 * file grown by a chunk (never shrunk: fallocate(), not ftruncate(), so
 * that two processes growing it at once cannot cut it) and mapped.  -1 if
 * the table is full or could not grow. */
static int claim_new(void)
{
	uint32_t used = atomic_load(&attached.table->used);
	int saved = errno;

	if (used < FIRST_SLOTS)
		used = FIRST_SLOTS;
	for (;;) {
		uint32_t seen = atomic_load(&attached.table->used);

		if (used >= MAX_SLOTS)
			return -1;
		if (atomic_compare_exchange_strong(&attached.table->used, &seen, used + 1))
			break;
		used = seen < FIRST_SLOTS ? FIRST_SLOTS : seen;
	}
	if (used >= attached.slots) {
		unsigned want = (used / CHUNK_SLOTS + 1) * CHUNK_SLOTS;

		if (want > MAX_SLOTS)
			want = MAX_SLOTS;
		if (posix_fallocate(attached.fd, 0, (off_t)TABLE_BYTES(want)) != 0 ||
		    !map_more() || used >= attached.slots) {
			errno = saved;
			return -1;
		}
	}
	errno = saved;
	return (int)used;
}

/* Take slot i for us if its pid is still seen (0: free, or a process gone
 * or silent).  Never with a time that makes it look silent: a slot taken
 * over is freed first, and the time of a free slot (which means nothing)
 * is set before our pid, or another process, seeing our pid beside a new
 * slot's 0 or a dead one's old time, took it from us as gone (a child of
 * 150 under valgrind went unseen so). */
static bool take(int i, int32_t seen, uint64_t now)
{
	struct slot *s = slot_at((unsigned)i);
	int32_t none = 0;

	if (seen != 0 && !atomic_compare_exchange_strong(&s->pid, &seen, 0))
		return false;
	atomic_store(&s->written_ns, now);
	if (!atomic_compare_exchange_strong(&s->pid, &none, (int32_t)getpid()))
		return false;
	attached.slot = i;
	attached.pid = getpid();
	return true;
}

/* Claim a slot: a free one, or one whose process is gone or silent, or a
 * new one past them.  A new slot is in the others' scans as soon as the
 * high-water mark moves, and one of them may take it first: then look
 * again.  Each such loss is another process's claim, so this ends, at the
 * latest when the table is full (under valgrind, 150 processes at once
 * made one lose four times in a row). */
static void claim(uint64_t now)
{
	int32_t me = (int32_t)getpid();
	unsigned n;
	int i;

	for (;;) {
		n = slots_in_use();
		for (i = 0; i < (int)n; i++) {
			struct slot *s = slot_at((unsigned)i);
			int32_t pid = atomic_load(&s->pid);
			uint64_t w = atomic_load(&s->written_ns);
			int saved = errno;
			bool gone = pid != 0 && ((now > w && now - w > STALE_NS) ||
						 (kill(pid, 0) < 0 && errno == ESRCH));

			errno = saved;
			if ((pid != 0 && !gone) || pid == me)
				continue;
			if (take(i, pid, now))
				return;
		}
		i = claim_new();
		if (i < 0 || take(i, 0, now))
			return;
	}
}

/* Whether a process that asked for room at asked_ns (0: never) is growing
 * at now. */
static bool growing(uint64_t asked_ns, uint64_t now)
{
	return asked_ns && asked_ns <= now && now - asked_ns <= GROWING_RECENT_NS;
}

void shrinker__peers_update(const char *bind_dir, uint64_t rss, uint64_t soft_own,
			    uint64_t asked_ns, struct shrinker__peers *out)
{
	/* Mon lock held: one caller at a time. */
	static uint64_t size[MAX_SLOTS];
	uint64_t now = shrinker__now_ns(), total = 0, soft_max = 0;
	unsigned n = 0, slots, grow;
	struct stat cg, shm;
	int i, saved = errno;

	*out = (struct shrinker__peers){ .n = 1, .self = rss, .total = rss, .growing = 1 };
	if (!bind_dir || !bind_dir[0] || stat(bind_dir, &cg) < 0) {
		errno = saved;
		detach();
		return;
	}
	if (attached.table && (attached.dev != cg.st_dev || attached.ino != cg.st_ino || attached.pid != getpid()))
		detach();
	/* Our table was unlinked as we attached to it (by the last process
	 * to leave, or by a sweep that found its processes all gone): it is
	 * nobody's file now, and later peers meet in a new one.  Drop it
	 * without removing what the path names now. */
	if (attached.table && (stat(attached.path, &shm) < 0 || shm.st_dev != attached.file_dev ||
		    shm.st_ino != attached.file_ino)) {
		errno = saved;
		shrinker__debug("peers: %s was removed under us; attaching anew", attached.path);
		unmap();
	}
	if (!attached.table)
		attach(&cg);
	if (!attached.table)
		return;
	/* Another process grew the table: map the slots it added. */
	if (atomic_load(&attached.table->used) > attached.slots && !map_more())
		shrinker__debug("peers: could not map the slots other processes added");
	if (attached.slot < 0 || atomic_load(&slot_at((unsigned)attached.slot)->pid) != (int32_t)getpid())
		claim(now);
	if (attached.slot >= 0) {
		struct slot *me = slot_at((unsigned)attached.slot);

		atomic_store(&me->rss, rss);
		atomic_store(&me->soft, soft_own);
		atomic_store(&me->asked_ns, asked_ns);
		atomic_store(&me->written_ns, now);
	}
	grow = growing(asked_ns, now);
	slots = slots_in_use();
	for (i = 0; i < (int)slots; i++) {
		struct slot *s = slot_at((unsigned)i);
		int32_t pid = atomic_load(&s->pid);
		uint64_t w = atomic_load(&s->written_ns);

		size[i] = 0;
		if (pid <= 0 || (now > w && now - w > RECENT_NS))
			continue;
		/* Whether it lives, only for a peer silent for a while: one
		 * system call a peer and an update was 128 x 128 of them a
		 * round with 128 processes measuring. */
		if (i != attached.slot && now > w && now - w > ALIVE_NS &&
		    kill(pid, 0) < 0 && errno == ESRCH)
			continue;
		size[i] = i == attached.slot ? rss : atomic_load(&s->rss);
		shrinker__sat_add(&total, size[i]);
		n++;
		if (i != attached.slot && growing(atomic_load(&s->asked_ns), now))
			grow++;
		/* A busy peer's watermark: one that measured lately. */
		if (i != attached.slot && now >= w && now - w <= SOFT_RECENT_NS) {
			uint64_t soft = atomic_load(&s->soft);

			if (soft > soft_max)
				soft_max = soft;
		}
	}
	errno = saved;
	if (attached.slot < 0 || n < 2 || total < rss)
		return;
	out->n = n;
	out->total = total;
	out->soft_max = soft_max;
	out->growing = grow ? grow : 1;
	/* What each holds above an equal share: those pay first. */
	for (i = 0; i < (int)slots; i++)
		if (size[i] > total / n)
			shrinker__sat_add(&out->excess_total, size[i] - total / n);
	out->excess_self = rss > total / n ? rss - total / n : 0;
}

/* Our slot in the table, if this process attached to one and claimed it
 * (not the parent's, after fork()); NULL otherwise. */
static struct slot *my_slot(void)
{
	if (!attached.table || attached.slot < 0 || attached.pid != getpid())
		return NULL;
	return slot_at((unsigned)attached.slot);
}

void shrinker__peers_paying(uint64_t bytes)
{
	struct slot *me = my_slot();

	if (!me)
		return;
	atomic_store(&me->paid_ns, 0);
	atomic_store(&me->paying_ns, shrinker__now_ns());
	atomic_store(&me->paying, bytes);
}

void shrinker__peers_paid(uint64_t bytes)
{
	struct slot *me = my_slot();

	if (!me)
		return;
	atomic_store(&me->paying, bytes);
	atomic_store(&me->paid_ns, shrinker__now_ns());
}

void shrinker__peers_others(uint64_t measured_ns, uint64_t *under_way, uint64_t *back)
{
	uint64_t now = shrinker__now_ns(), way = 0, got = 0;
	struct slot *me = my_slot();
	int i;

	for (i = 0; me && i < (int)slots_in_use(); i++) {
		struct slot *s = slot_at((unsigned)i);
		uint64_t bytes = atomic_load(&s->paying);
		uint64_t at = atomic_load(&s->paying_ns);
		uint64_t paid = atomic_load(&s->paid_ns);
		uint64_t rss = atomic_load(&s->rss);

		if (s == me || !bytes || atomic_load(&s->pid) <= 0 || at > now ||
		    now - at > PAYING_RECENT_NS)
			continue;
		/* Under way: never more than the peer holds (a figure read
		 * from a shared file; the caller bounds what came back by
		 * what the peers hold).  Given back after our reading began:
		 * none of it showed in what we read; while it ran, some may
		 * have, and it counts as under way. */
		if (!paid)
			shrinker__sat_add(&way, bytes < rss ? bytes : rss);
		else if (paid > now || paid <= measured_ns)
			continue;
		else if (at > measured_ns)
			shrinker__sat_add(&got, bytes);
		else
			shrinker__sat_add(&way, bytes);
	}
	*under_way = way;
	*back = got;
}

void shrinker__peers_forget(void)
{
	/* After fork(): the slot is the parent's; the mapping is ours to
	 * drop (the parent keeps its own). */
	unmap();
}

void shrinker__peers_release(void)
{
	detach();
}

uint64_t shrinker__peers_part(const struct shrinker__peers *p, uint64_t target)
{
	unsigned __int128 part = 0;
	uint64_t first, rest;

	if (p->n < 2 || p->total == 0 || p->self >= p->total)
		return target;
	/* Water-filling: the first bytes come from the processes above an
	 * equal share, in proportion to their excess; the rest from all, in
	 * proportion to what they hold.  The parts add up to the target. */
	first = target < p->excess_total ? target : p->excess_total;
	rest = target - first;
	if (first)
		part = ((unsigned __int128)first * p->excess_self +
			p->excess_total - 1) / p->excess_total;
	part += ((unsigned __int128)rest * p->self + p->total - 1) / p->total;
	return part > target ? target : (uint64_t)part;
}

bool shrinker__peers_below_share(const struct shrinker__peers *p)
{
	/* Below nine tenths of an equal share: room to take. */
	return p->n >= 2 && p->self < p->total / p->n / 10 * 9;
}
